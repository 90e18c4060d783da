"""One symbol's capture: its book, its buffers and its rolling part files (no sockets).

The recorder service feeds it depth operations and trades with receive times on one
monotonic-derived timeline, asks it for a snapshot at each grid time and to flush every
few seconds. Pending operations are applied only up to the snapshot's timestamp, so a
snapshot holds the book exactly as of its `ts` even when the timer fires late.

Files (names from `ibdesk.store.layout`): snapshots, raw depth messages and trades, each
written as atomic part files `{stem}.part-NNNN.parquet` at every flush and compacted into
the final file on a clean stop (or by the next run after a crash).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as _compute

from ibdesk.depth.book import DepthBook, DepthOperation, reset_messages
from ibdesk.ib.rowfeed import DepthUpdate
from ibdesk.store import layout
from ibdesk.store.parquet import compact_parts, logical_files, part_path, write_table_atomic
from ibdesk.store.schemas import (
    TS_TYPE,
    depth_messages_schema,
    l2_snapshot_schema,
    level_columns,
    trades_schema,
)


class TradePrint(Protocol):
    """A trade print with its receive time (`ibdesk.ib.rowfeed.TradeTick` is one)."""

    @property
    def ts_ns(self) -> int: ...
    @property
    def price(self) -> float: ...
    @property
    def size(self) -> float: ...
    @property
    def exchange(self) -> str: ...


pc: Any = _compute  # pyarrow.compute functions are generated at import time
_by_ts = attrgetter("ts_ns")
_TRADE_ROW = pa.struct(
    [
        ("ts", pa.int64()),
        ("price", pa.float64()),
        ("size", pa.float64()),
        ("side", pa.string()),
        ("exchange", pa.string()),
    ]
)
# Buffered messages are converted to Arrow this many at a time, so no single conversion
# (which holds the event loop) grows with the message rate times `--flush-seconds`.
MESSAGE_CHUNK_ROWS = 16_384
# The messages buffer holds DepthUpdate rows; as one Arrow struct they convert in one call.
_MESSAGE_ROW = pa.struct(
    [
        ("key", pa.string()),
        ("symbol", pa.string()),
        ("ts", pa.int64()),
        ("position", pa.int16()),
        ("operation", pa.int8()),
        ("side", pa.int8()),
        ("price", pa.float64()),
        ("size", pa.float64()),
        ("market_maker", pa.string()),
        ("is_smart", pa.bool_()),
    ]
)


@dataclass(slots=True)
class Gap:
    start_ns: int
    reason: str
    end_ns: int | None = None


def infer_side(price: float, best_bid: float | None, best_ask: float | None) -> str:
    """Quote rule: at or above the ask -> buyer-initiated (B); at or below the bid -> S; else N."""
    if best_ask is not None and price >= best_ask:
        return "B"
    if best_bid is not None and price <= best_bid:
        return "S"
    return "N"


@dataclass(slots=True)
class CaptureStats:
    updates: int = 0
    snapshots: int = 0
    trades: int = 0
    crossed_rows: int = 0
    resets: int = 0
    anomalies: int = 0
    messages_dropped: int = 0
    gaps: list[Gap] = field(default_factory=list)
    depth_unavailable: str | None = None


class SymbolCapture:
    """Book, buffers and files of one symbol for one recording session."""

    def __init__(
        self,
        symbol: str,
        *,
        level2_root: Path,
        session_start: datetime,
        levels: int,
        interval_ms: int,
        source: str,
        is_smart: bool,
    ) -> None:
        self.symbol = symbol
        self.levels = levels
        self.is_smart = is_smart
        self.book = DepthBook(levels)
        self.stats = CaptureStats()
        self.in_gap = False
        # The book holds no state for times before this (a reset or a gap's end): a sample
        # loop running late must not stamp a later book, or a gap's hole, with an older time.
        self._valid_from_ns = 0
        self._pending: deque[Sequence[DepthOperation]] = deque()  # batches, one ts each
        self._pending_trades: deque[TradePrint] = deque()
        day = session_start.date()
        self.paths = {
            kind: layout.capture_path(level2_root, symbol, day, kind, session_start)
            for kind in ("snapshots", "messages", "trades")
        }
        self.stats_path = layout.session_stats_path(level2_root, symbol, session_start)
        meta = {"source": source, "levels": str(levels), "interval_ms": str(interval_ms)}
        self._schemas = {
            "snapshots": l2_snapshot_schema(levels, meta),
            "messages": depth_messages_schema({"source": source}),
            "trades": trades_schema({"source": source}),
        }
        self._columns = level_columns(levels)
        self._snap_ts: list[int] = []
        self._snap_rows: list[list[float]] = []
        self._msgs: list[DepthUpdate] = []
        self._msg_chunks: list[pa.StructArray] = []  # converted part of the messages buffer
        self._trades: list[tuple[int, float, float, str, str]] = []
        self._parts = 0

    # ---- input ------------------------------------------------------------------------------
    def on_depth_batch(self, messages: Sequence[DepthUpdate]) -> None:
        """Queue operations in arrival order (applied when a snapshot at or after their ts
        is taken)."""
        if not messages:
            return
        if messages[0].ts_ns == messages[-1].ts_ns:  # one socket read: the usual case
            self._pending.append(messages)
        else:
            self._pending.extend(list(group) for _, group in itertools.groupby(messages, _by_ts))
        self._msgs.extend(messages)
        self.stats.updates += len(messages)
        if len(self._msgs) >= MESSAGE_CHUNK_ROWS:
            self._convert_messages()

    def on_trades(self, trades: Sequence[TradePrint]) -> None:
        """Queue trades; each one's side is inferred when the book reaches its time."""
        self._pending_trades.extend(trades)

    def start_gap(self, ts_ns: int, reason: str) -> None:
        """Data stopped being trustworthy: no snapshots until `end_gap`; the book restarts empty."""
        if not self.in_gap:
            self.in_gap = True
            self.stats.gaps.append(Gap(ts_ns, reason))
        self.reset_book(ts_ns)

    def end_gap(self, ts_ns: int) -> None:
        if self.in_gap:
            self.in_gap = False
            self.stats.gaps[-1].end_ns = ts_ns
            self._valid_from_ns = max(self._valid_from_ns, ts_ns)

    def reset_book(self, ts_ns: int) -> None:
        """Empty the book now, writing the emptying as marked deletes to the messages file."""
        self._apply_until(ts_ns)
        self._msgs.extend(
            DepthUpdate(
                "",
                self.symbol,
                m.ts_ns,
                m.position,
                m.operation,
                m.side,
                m.price,
                m.size,
                m.market_maker,
                self.is_smart,
            )
            for m in reset_messages(self.book, ts_ns)
        )
        self.book.clear()
        self.stats.resets += 1
        self._valid_from_ns = max(self._valid_from_ns, ts_ns)

    # ---- sampling and files --------------------------------------------------------------------
    def _apply_until(self, ts_ns: int) -> None:
        """Advance the book through every operation and trade with a time <= `ts_ns`.

        Trades are classified against the book as of their own time (operations received
        in the same socket read come first), never against a book from later.
        """
        pending = self._pending
        trades = self._pending_trades
        book = self.book
        while True:
            op_ts = pending[0][0].ts_ns if pending and pending[0][0].ts_ns <= ts_ns else None
            trade_ts = trades[0].ts_ns if trades and trades[0].ts_ns <= ts_ns else None
            if op_ts is None and trade_ts is None:
                return
            if trade_ts is not None and (op_ts is None or trade_ts < op_ts):
                trade = trades.popleft()
                side = infer_side(trade.price, book.best_bid, book.best_ask)
                self._trades.append((trade.ts_ns, trade.price, trade.size, side, trade.exchange))
                self.stats.trades += 1
            else:
                book.apply_all(pending.popleft())

    def snapshot(self, ts_ns: int) -> bool:
        """Record the book as of `ts_ns` unless in a gap; True when a row was written.

        A late sampler (its loop stalled on a flush) asks for grid times already passed;
        a time inside a gap, or before the book's last reset, has no book and is skipped.
        """
        self._apply_until(ts_ns)
        if self.in_gap or ts_ns < self._valid_from_ns:
            return False
        if self.book.is_crossed_or_locked():
            self.stats.crossed_rows += 1
        self._snap_ts.append(ts_ns)
        self._snap_rows.append(self.book.snapshot_row())
        self.stats.snapshots += 1
        return True

    def _snapshot_table(self) -> pa.Table:
        n = len(self._snap_ts)
        data: dict[str, Any] = {
            "ts": pa.array(self._snap_ts, pa.int64()).cast(TS_TYPE),
            "symbol": pa.array([self.symbol] * n, pa.string()),
        }
        for j, name in enumerate(self._columns):
            values = [row[j] for row in self._snap_rows]
            data[name] = pa.array(values, pa.float64(), mask=[math.isnan(v) for v in values])
        return pa.table(data, schema=self._schemas["snapshots"])

    def _convert_messages(self) -> None:
        if self._msgs:
            self._msg_chunks.append(pa.array(self._msgs, type=_MESSAGE_ROW))
            self._msgs.clear()

    def _messages_table(self) -> pa.Table:
        self._convert_messages()
        rows = pa.chunked_array(self._msg_chunks, type=_MESSAGE_ROW)
        self._msg_chunks = []
        market_maker = pc.struct_field(rows, "market_maker")
        data = {
            name: pc.struct_field(rows, name)
            for name in ("ts", "symbol", "position", "operation", "side", "price", "size")
        }
        data["ts"] = data["ts"].cast(TS_TYPE)
        data["market_maker"] = pc.if_else(pc.equal(market_maker, ""), None, market_maker)
        data["is_smart"] = pc.struct_field(rows, "is_smart")
        return pa.table(data, schema=self._schemas["messages"])

    def _trades_table(self) -> pa.Table:
        rows = pa.array(self._trades, type=_TRADE_ROW)
        exchange = rows.field("exchange")
        data = {
            "ts": rows.field("ts").cast(TS_TYPE),
            "symbol": pa.array([self.symbol] * len(rows), pa.string()),
            "price": rows.field("price"),
            "size": rows.field("size"),
            "side": rows.field("side"),
            "exchange": pc.if_else(pc.equal(exchange, ""), None, exchange),
        }
        return pa.table(data, schema=self._schemas["trades"])

    def take_parts(self) -> list[tuple[pa.Table, Path]]:
        """What is buffered as the next part file of each kind, buffers cleared (no I/O).

        Write them in order (`write_parts`) before the next `take_parts` is written.
        """
        tables = {
            "snapshots": self._snapshot_table() if self._snap_ts else None,
            "messages": self._messages_table() if self._msgs or self._msg_chunks else None,
            "trades": self._trades_table() if self._trades else None,
        }
        parts = [
            (table, part_path(self.paths[kind], self._parts))
            for kind, table in tables.items()
            if table is not None
        ]
        if parts:
            self._parts += 1
        self._snap_ts.clear()
        self._snap_rows.clear()
        self._trades.clear()
        return parts

    def flush(self) -> None:
        """Write what is buffered as one more part file per kind (atomic), then clear buffers."""
        write_parts(self.take_parts())

    def finalize(self) -> list[Path]:
        """Flush and compact every part into the final files; returns the final paths."""
        self._apply_until(2**63 - 1)  # classify the trades still waiting for their time
        self.flush()
        written: list[Path] = []
        for path in self.paths.values():
            final = compact_parts(path)
            if final is not None:
                written.append(final)
        return written

    def stats_json(self, start: datetime, end: datetime, reconnects: int) -> dict[str, Any]:
        s = self.stats
        return {
            "symbol": self.symbol,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "updates_received": s.updates,
            "snapshots_written": s.snapshots,
            "trades_written": s.trades,
            "reconnects": reconnects,
            "gaps": [
                {
                    "start": _iso_ns(g.start_ns),
                    "end": _iso_ns(g.end_ns) if g.end_ns is not None else None,
                    "reason": g.reason,
                }
                for g in s.gaps
            ],
            "crossed_book_rows": s.crossed_rows,
            "book_resets": s.resets,
            "position_anomalies": self.book.anomalies,
            "messages_dropped": s.messages_dropped,
            "depth_unavailable": s.depth_unavailable,
            "files": {kind: str(path) for kind, path in self.paths.items()},
        }


def write_parts(parts: Sequence[tuple[pa.Table, Path]]) -> None:
    """Write part files atomically (safe to run in a worker thread: no shared state)."""
    for table, path in parts:
        write_table_atomic(table, path)


def _iso_ns(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).isoformat()


def compact_leftovers(folder: Path) -> list[Path]:
    """Compact part files a crashed earlier session left in `folder` into their final files."""
    done: list[Path] = []
    if not folder.exists():
        return done
    for final, physical in logical_files(folder).items():
        if any(p != final for p in physical):
            compacted = compact_parts(final)
            if compacted is not None:
                done.append(compacted)
    return done
