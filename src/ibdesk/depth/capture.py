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

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from ibdesk.depth.book import DepthBook, DepthOperation, reset_messages
from ibdesk.store import layout
from ibdesk.store.parquet import compact_parts, logical_files, part_path, write_table_atomic
from ibdesk.store.schemas import (
    TS_TYPE,
    depth_messages_schema,
    l2_snapshot_schema,
    level_columns,
    trades_schema,
)


@dataclass(frozen=True, slots=True)
class TradePrint:
    ts_ns: int
    price: float
    size: float
    exchange: str = ""


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
        self._pending: deque[DepthOperation] = deque()
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
        self._msgs: list[DepthOperation] = []
        self._trades: list[tuple[int, float, float, str, str]] = []
        self._parts = 0

    # ---- input ------------------------------------------------------------------------------
    def on_depth(self, message: DepthOperation) -> None:
        """Queue one IB depth operation (applied when a snapshot at or after its ts is taken)."""
        self._pending.append(message)
        self._msgs.append(message)
        self.stats.updates += 1

    def on_depth_batch(self, messages: Sequence[DepthOperation]) -> None:
        """Queue several operations at once (same as `on_depth` for each, in order)."""
        self._pending.extend(messages)
        self._msgs.extend(messages)
        self.stats.updates += len(messages)

    def on_trade(self, trade: TradePrint) -> None:
        """Queue a trade; its side is inferred when the book reaches the trade's time."""
        self._pending_trades.append(trade)

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

    def reset_book(self, ts_ns: int) -> None:
        """Empty the book now, writing the emptying as marked deletes to the messages file."""
        self._apply_until(ts_ns)
        self._msgs.extend(reset_messages(self.book, ts_ns))
        self.book.clear()
        self.stats.resets += 1

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
            op_ts = pending[0].ts_ns if pending and pending[0].ts_ns <= ts_ns else None
            trade_ts = trades[0].ts_ns if trades and trades[0].ts_ns <= ts_ns else None
            if op_ts is None and trade_ts is None:
                return
            if trade_ts is not None and (op_ts is None or trade_ts < op_ts):
                trade = trades.popleft()
                side = infer_side(trade.price, book.best_bid, book.best_ask)
                self._trades.append((trade.ts_ns, trade.price, trade.size, side, trade.exchange))
                self.stats.trades += 1
            else:
                m = pending.popleft()
                book.apply(m.operation, m.side, m.position, m.price, m.size, m.market_maker)

    def snapshot(self, ts_ns: int) -> bool:
        """Record the book as of `ts_ns` unless in a gap; True when a row was written."""
        self._apply_until(ts_ns)
        if self.in_gap:
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

    def _messages_table(self) -> pa.Table:
        msgs = self._msgs
        data = {
            "ts": pa.array([m.ts_ns for m in msgs], pa.int64()).cast(TS_TYPE),
            "symbol": pa.array([self.symbol] * len(msgs), pa.string()),
            "position": pa.array([m.position for m in msgs], pa.int16()),
            "operation": pa.array([int(m.operation) for m in msgs], pa.int8()),
            "side": pa.array([int(m.side) for m in msgs], pa.int8()),
            "price": pa.array([m.price for m in msgs], pa.float64()),
            "size": pa.array([m.size for m in msgs], pa.float64()),
            "market_maker": pa.array([m.market_maker or None for m in msgs], pa.string()),
            "is_smart": pa.array([self.is_smart] * len(msgs), pa.bool_()),
        }
        return pa.table(data, schema=self._schemas["messages"])

    def _trades_table(self) -> pa.Table:
        rows = self._trades
        data = {
            "ts": pa.array([r[0] for r in rows], pa.int64()).cast(TS_TYPE),
            "symbol": pa.array([self.symbol] * len(rows), pa.string()),
            "price": pa.array([r[1] for r in rows], pa.float64()),
            "size": pa.array([r[2] for r in rows], pa.float64()),
            "side": pa.array([r[3] for r in rows], pa.string()),
            "exchange": pa.array([r[4] or None for r in rows], pa.string()),
        }
        return pa.table(data, schema=self._schemas["trades"])

    def flush(self) -> None:
        """Write what is buffered as one more part file per kind (atomic), then clear buffers."""
        tables = {
            "snapshots": self._snapshot_table() if self._snap_ts else None,
            "messages": self._messages_table() if self._msgs else None,
            "trades": self._trades_table() if self._trades else None,
        }
        if not any(t is not None for t in tables.values()):
            return
        for kind, table in tables.items():
            if table is not None:
                write_table_atomic(table, part_path(self.paths[kind], self._parts))
        self._parts += 1
        self._snap_ts.clear()
        self._snap_rows.clear()
        self._msgs.clear()
        self._trades.clear()

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
