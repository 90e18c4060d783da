"""`record-depth` service: hours of order book from IB, crash-safe, through disconnects.

Wires the IB layer (connection, reconnect/resubscribe, gap events) to one `SymbolCapture`
per symbol and runs the snapshot clock: snapshot k carries `ts_k = t0 + k * interval`
exactly, with the schedule taken from the monotonic clock so hours of recording do not
drift, and holds the book as of `ts_k`. Files are flushed every `flush_seconds` as part
files and compacted on a clean stop; leftovers of a crashed session are compacted at start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from ib_async import Contract

from ibdesk.config import Settings
from ibdesk.depth.capture import SymbolCapture, compact_leftovers, write_parts
from ibdesk.domain.hours import ET
from ibdesk.errors import UserInputError, WorkFailedError
from ibdesk.ib.connection import (
    ConnectionConfig,
    ConnectionEvent,
    DataEvent,
    DepthUpdate,
    GapEnded,
    GapStarted,
    IBConnection,
    Reconnected,
    Resubscribed,
    SubscriptionFailed,
    TradeTick,
)
from ibdesk.ib.contracts import ContractCache, UnknownContractError, stock
from ibdesk.store.layout import level2_dir
from ibdesk.store.parquet import write_json_atomic
from ibdesk.store.schemas import MAX_LEVELS

log = logging.getLogger(__name__)
MIN_INTERVAL_MS = 10


@dataclass(frozen=True, slots=True)
class RecordConfig:
    """What to record and where; validated before any I/O."""

    symbols: tuple[str, ...]
    output: Path
    levels: int = 10
    interval_ms: int = 100
    duration_s: float | None = None
    flush_seconds: float = 5.0
    smart_depth: bool = False
    exchange: str = "SMART"
    port: int | None = None
    client_id: int | None = None
    live: bool = False
    silent_after_s: float = 10.0

    def validate(self) -> None:
        if not self.symbols:
            raise UserInputError("--symbol: give at least one symbol")
        if not 1 <= self.levels <= MAX_LEVELS:
            raise UserInputError(f"--levels {self.levels}: expected 1..{MAX_LEVELS}")
        if self.interval_ms < MIN_INTERVAL_MS:
            raise UserInputError(
                f"--interval {self.interval_ms}: expected at least {MIN_INTERVAL_MS} ms"
            )
        if self.duration_s is not None and self.duration_s <= 0:
            raise UserInputError("--duration: expected a positive number of minutes")
        if self.flush_seconds <= 0:
            raise UserInputError("--flush-seconds: expected a positive number of seconds")


@dataclass(slots=True)
class SymbolProgress:
    symbol: str
    updates: int
    snapshots: int
    rate_per_s: float
    last_gap: str | None
    depth_unavailable: str | None


@dataclass(slots=True)
class RecordSummary:
    source: str
    start: datetime
    end: datetime
    reconnects: int
    stats_files: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    failed_symbols: dict[str, str] = field(default_factory=dict)
    per_symbol: dict[str, dict[str, Any]] = field(default_factory=dict)


class _Timeline:
    """Wall-clock nanoseconds derived from the monotonic clock (no jumps, no drift)."""

    def __init__(self) -> None:
        self.t0_mono_ns = 0
        self.t0_wall_ns = 0
        self.reset()

    def reset(self) -> None:
        """Start the timeline (and so the snapshot grid) now."""
        self.t0_mono_ns = time.monotonic_ns()
        self.t0_wall_ns = time.time_ns()

    def now_ns(self) -> int:
        return self.t0_wall_ns + (time.monotonic_ns() - self.t0_mono_ns)

    def mono_for(self, wall_ns: int) -> float:
        return (self.t0_mono_ns + (wall_ns - self.t0_wall_ns)) / 1e9


class Recorder:
    """One recording session over one IB connection."""

    def __init__(
        self,
        settings: Settings,
        config: RecordConfig,
        *,
        progress: Callable[[list[SymbolProgress]], None] | None = None,
        conn: IBConnection | None = None,
    ) -> None:
        """`conn`: record on the caller's connection (connected; the caller closes it)."""
        config.validate()
        self.settings = settings
        self.config = config
        self.progress = progress
        conn_config = ConnectionConfig.from_settings(
            settings,
            port=config.port,
            client_id=config.client_id,
            live=config.live,
            readonly=True,
            silent_after_s=config.silent_after_s,
        )
        self._timeline = _Timeline()
        self._owns_conn = conn is None
        self.conn = conn or IBConnection(conn_config, wall_ns=self._timeline.now_ns)
        self.captures: dict[str, SymbolCapture] = {}
        self._by_key: dict[str, SymbolCapture] = {}
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="ibdesk-parts")
        self._writing: asyncio.Future[None] | None = None

    # ---- event plumbing -------------------------------------------------------------------------
    def _on_connection_event(self, event: ConnectionEvent) -> None:
        if isinstance(event, Reconnected):
            return
        capture = self._by_key.get(event.key)
        if capture is None or not event.key.startswith("depth:"):
            return
        now = self._timeline.now_ns()
        if isinstance(event, GapStarted):
            capture.start_gap(now, event.reason.value)
        elif isinstance(event, Resubscribed):
            capture.reset_book(now)
        elif isinstance(event, GapEnded):
            capture.end_gap(now)
        elif isinstance(event, SubscriptionFailed):
            capture.stats.depth_unavailable = f"{event.error.code} {event.error.message}"
            capture.in_gap = True
            log.warning(
                "no depth for %s: %s %s", capture.symbol, event.error.code, event.error.message
            )

    def _on_data(self, events: Sequence[DataEvent]) -> None:
        """One subscription's ticks of one socket read (all of one symbol, one kind)."""
        first = events[0] if events else None
        capture = self.captures.get(first.symbol) if first is not None else None
        if capture is None:
            return
        if isinstance(first, DepthUpdate):
            # A batch holds one kind only; DepthUpdates are DepthOperations as they are.
            capture.on_depth_batch(cast(list[DepthUpdate], events))
        else:
            capture.on_trades(cast(Sequence[TradeTick], events))

    # ---- main loop ----------------------------------------------------------------------------
    async def _qualify(self) -> tuple[dict[str, Contract], dict[str, str]]:
        cache = ContractCache()
        asked = [stock(s, self.config.exchange) for s in self.config.symbols]
        results = await cache.qualify(self.conn.ib, *asked)
        good: dict[str, Contract] = {}
        failed: dict[str, str] = {}
        for symbol, result in zip(self.config.symbols, results, strict=True):
            if isinstance(result, UnknownContractError):
                failed[symbol] = result.message
                log.error("%s", result.message)
            else:
                good[symbol] = result
        return good, failed

    async def run(self, stop: asyncio.Event | None = None) -> RecordSummary:
        stop = stop or asyncio.Event()
        cfg = self.config
        for symbol in cfg.symbols:
            compacted = compact_leftovers(level2_dir(cfg.output, symbol))
            if compacted:
                log.info(
                    "compacted %d file(s) left by an earlier session of %s", len(compacted), symbol
                )
        if self._owns_conn:
            await self.conn.connect()
        source = "sim" if self.conn.is_sim else "ibkr"
        start = datetime.now(ET)
        summary = RecordSummary(source=source, start=start, end=start, reconnects=0)
        try:
            contracts, summary.failed_symbols = await self._qualify()
            if not contracts:
                raise WorkFailedError(
                    f"no symbol could be recorded: {', '.join(summary.failed_symbols)}"
                )
            for symbol in contracts:
                capture = SymbolCapture(
                    symbol,
                    level2_root=cfg.output,
                    session_start=start,
                    levels=cfg.levels,
                    interval_ms=cfg.interval_ms,
                    source=source,
                    is_smart=cfg.smart_depth,
                )
                self.captures[symbol] = capture
            self.conn.add_listener(self._on_connection_event)
            self.conn.add_data_listener(self._on_data)
            self._timeline.reset()
            for symbol, contract in contracts.items():
                depth = self.conn.subscribe_depth(contract, cfg.levels, is_smart=cfg.smart_depth)
                trades = self.conn.subscribe_tick_by_tick(contract, "AllLast")
                self._by_key[depth.key] = self.captures[symbol]
                self._by_key[trades.key] = self.captures[symbol]
            await self._sample_until_done(stop)
        finally:
            summary.end = datetime.now(ET)
            summary.reconnects = self.conn.reconnects
            try:
                try:
                    await self._wait_for_writes()
                finally:
                    self._writer.shutdown(wait=True)
                for capture in self.captures.values():
                    summary.files.extend(capture.finalize())
                    stats = capture.stats_json(summary.start, summary.end, self.conn.reconnects)
                    stats["source"] = source
                    stats["levels"] = cfg.levels
                    stats["interval_ms"] = cfg.interval_ms
                    summary.per_symbol[capture.symbol] = stats
                    summary.stats_files.append(write_json_atomic(stats, capture.stats_path))
            finally:
                if self._owns_conn:
                    await self.conn.close()
        return summary

    async def _sample_until_done(self, stop: asyncio.Event) -> None:
        cfg = self.config
        interval_ns = cfg.interval_ms * 1_000_000
        timeline = self._timeline
        t0 = timeline.t0_wall_ns
        total = None if cfg.duration_s is None else round(cfg.duration_s * 1e9 / interval_ns)
        next_flush = time.monotonic() + cfg.flush_seconds
        next_progress = time.monotonic() + 1.0
        k = 0
        while not stop.is_set() and (total is None or k < total):
            k += 1
            ts = t0 + k * interval_ns
            delay = timeline.mono_for(ts) - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                    break
                except TimeoutError:
                    pass
            for capture in self.captures.values():
                if capture.stats.depth_unavailable is None:
                    capture.snapshot(ts)
            mono = time.monotonic()
            if mono >= next_flush:
                await self._flush_in_background()
                next_flush = mono + cfg.flush_seconds
            if self.progress is not None and mono >= next_progress:
                self.progress(self._progress())
                next_progress = mono + 1.0

    async def _flush_in_background(self) -> None:
        """Hand the buffered rows to the writer thread as part files; the event loop goes on
        reading the socket while they are compressed and fsynced. Parts are written in
        order: the previous flush is waited for first (and its error raised, if any)."""
        await self._wait_for_writes()
        parts = [part for capture in self.captures.values() for part in capture.take_parts()]
        if parts:
            loop = asyncio.get_running_loop()
            self._writing = loop.run_in_executor(self._writer, write_parts, parts)

    async def _wait_for_writes(self) -> None:
        writing, self._writing = self._writing, None
        if writing is not None:
            await writing

    def _progress(self) -> list[SymbolProgress]:
        elapsed = max(1e-9, (self._timeline.now_ns() - self._timeline.t0_wall_ns) / 1e9)
        rows: list[SymbolProgress] = []
        for capture in self.captures.values():
            gaps = capture.stats.gaps
            last_gap = (
                f"{gaps[-1].reason} ({'open' if gaps[-1].end_ns is None else 'closed'})"
                if gaps
                else None
            )
            rows.append(
                SymbolProgress(
                    capture.symbol,
                    capture.stats.updates,
                    capture.stats.snapshots,
                    capture.stats.updates / elapsed,
                    last_gap,
                    capture.stats.depth_unavailable,
                )
            )
        return rows
