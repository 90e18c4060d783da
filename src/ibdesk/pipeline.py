"""The fully automated run (`ibdesk run`): gateway -> qualify -> bars -> store -> signals.

A service: it wires the IB layer, the store and the pure signal rules, reports each stage
to a progress callback and returns a `RunSummary`. It places no orders. It stops only
what it started (a sim child, or a gateway it launched) and keeps going past one bad
symbol, naming it in the summary.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
from ib_async import Contract

from ibdesk.calendar import Session as MarketSession
from ibdesk.calendar import xnys
from ibdesk.config import Settings
from ibdesk.domain.bars import parse_bar_size, parse_duration
from ibdesk.domain.hours import ET
from ibdesk.errors import UserInputError
from ibdesk.ib.contracts import ContractCache, UnknownContractError, stock
from ibdesk.ib.requests import BarsRequest, HistoricalClient, HistoricalDataError
from ibdesk.ib.session import Session, open_session
from ibdesk.signals.indicators import (
    IndicatorConfig,
    compute_indicators,
    previous_closes,
    with_rvol,
)
from ibdesk.signals.rules import SignalConfig, signals_from_indicators, signals_to_table
from ibdesk.store import layout
from ibdesk.store.bars import et_days, store_bars
from ibdesk.store.parquet import write_json_atomic, write_table_atomic
from ibdesk.store.readers import DataKind, read_data

log = logging.getLogger(__name__)
perf_log = logging.getLogger("ibdesk.performance")

STAGES = ("gateway", "qualify", "bars", "store", "signals", "cleanup")
DAILY_BAR_SIZE = "1 day"
DAILY_DURATION = "10 D"


@dataclass(frozen=True, slots=True)
class RunConfig:
    symbols: tuple[str, ...] = ("TSLA",)
    duration: str = "1 D"
    bar_size: str = "1 min"
    live: bool = False
    save: bool = True
    sim: bool = False
    use_rth: bool = False
    port: int | None = None
    signals: SignalConfig = field(default_factory=SignalConfig)

    def validate(self) -> None:
        """Check every option before any I/O (bad input exits 2 with nothing done)."""
        if not self.symbols:
            raise UserInputError("--symbols: give at least one symbol")
        for symbol in self.symbols:
            if not symbol.replace(".", "").replace("-", "").isalnum():
                raise UserInputError(f"--symbols: {symbol!r} is not a ticker symbol")
        parse_duration(self.duration)
        parse_bar_size(self.bar_size)


@dataclass(slots=True)
class SymbolResult:
    symbol: str
    bars: int = 0
    first_ts: str | None = None
    last_ts: str | None = None
    last_close: float | None = None
    indicators: dict[str, float | None] = field(default_factory=dict)
    signals: list[dict[str, Any]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    error: str | None = None
    rvol_sessions_stored: int = 0
    rvol_sessions_fetched: int = 0
    rvol_note: str | None = None


@dataclass(slots=True)
class RunSummary:
    started: datetime
    finished: datetime | None = None
    source: str = ""
    gateway: str = ""
    live: bool = False
    duration: str = ""
    bar_size: str = ""
    saved: bool = True
    symbols: dict[str, SymbolResult] = field(default_factory=dict)
    summary_path: Path | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    historical_requests: int = 0

    @property
    def failed(self) -> list[str]:
        return [s for s, r in self.symbols.items() if r.error is not None]

    def to_json(self) -> dict[str, Any]:
        return {
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat() if self.finished else None,
            "source": self.source,
            "gateway": self.gateway,
            "live": self.live,
            "duration": self.duration,
            "bar_size": self.bar_size,
            "saved": self.saved,
            "failed": self.failed,
            "stage_seconds": self.stage_seconds,
            "historical_requests": self.historical_requests,
            "symbols": {
                s: {
                    "bars": r.bars,
                    "first_ts": r.first_ts,
                    "last_ts": r.last_ts,
                    "last_close": r.last_close,
                    "indicators": r.indicators,
                    "signals": r.signals,
                    "files": r.files,
                    "error": r.error,
                    "rvol_sessions": {
                        "stored": r.rvol_sessions_stored,
                        "fetched": r.rvol_sessions_fetched,
                    },
                    "rvol_note": r.rvol_note,
                }
                for s, r in self.symbols.items()
            },
        }


Progress = Callable[[str, str], None]


def _latest_indicators(frame: pl.DataFrame, cfg: SignalConfig) -> dict[str, float | None]:
    if frame.height == 0:
        return {}
    last = frame.tail(1).row(0, named=True)
    names = {
        "vwap": "vwap",
        "ema_fast": f"ema_{cfg.indicators.ema_fast}",
        "ema_slow": f"ema_{cfg.indicators.ema_slow}",
        "atr": f"atr_{cfg.indicators.atr_period}",
        "or_high": "or_high",
        "or_low": "or_low",
        "pm_high": "pm_high",
        "pm_low": "pm_low",
        "prev_close": "prev_close",
        "gap_pct": "gap_pct",
        "rvol": "rvol",
    }
    out: dict[str, float | None] = {}
    for key, column in names.items():
        value = last.get(column)
        out[key] = None if value is None else float(value)
    return out


async def run(
    settings: Settings,
    config: RunConfig,
    progress: Progress | None = None,
    *,
    ask: Callable[[str], str] | None = None,
) -> RunSummary:
    """Do the whole automated run; see the module docstring.

    `ask` prompts for the live confirmation on a terminal (None: unattended).
    """
    config.validate()
    report = progress or (lambda stage, text: None)
    summary = RunSummary(
        started=datetime.now(UTC),
        duration=config.duration,
        bar_size=config.bar_size,
        saved=config.save,
    )
    timer = time.perf_counter()

    def stage_done(name: str) -> None:
        nonlocal timer
        now = time.perf_counter()
        summary.stage_seconds[name] = round(now - timer, 6)
        timer = now

    try:
        async with open_session(
            settings,
            sim=config.sim,
            live=config.live,
            port=config.port,
            readonly=True,
            reconnect=False,
            ask=ask,
            on_status=lambda text: report("gateway", text),
        ) as session:
            try:
                summary.source = session.source.value
                summary.gateway = session.gateway
                summary.live = session.is_live
                stage_done("gateway")
                await session.until_stopped(
                    _fetch_and_analyse(settings, session, config, summary, report, stage_done)
                )
            finally:
                report("cleanup", "disconnecting")
    finally:
        stage_done("cleanup")
        summary.finished = datetime.now(UTC)
    if config.save:
        path = layout.run_summary_path(settings.data_root, summary.started)
        summary.summary_path = write_json_atomic(summary.to_json(), path)
    perf_log.info("run %s: %s", ",".join(config.symbols), summary.stage_seconds)
    return summary


async def _fetch_and_analyse(
    settings: Settings,
    session: Session,
    config: RunConfig,
    summary: RunSummary,
    report: Progress,
    stage_done: Callable[[str], None],
) -> None:
    """The stages after the gateway: qualify, bars, store, signals (see `run`)."""
    report("qualify", f"qualifying {len(config.symbols)} symbol(s)")
    contracts: dict[str, Contract] = {}
    qualified = await ContractCache().qualify(session.conn.ib, *(stock(s) for s in config.symbols))
    for symbol, result in zip(config.symbols, qualified, strict=True):
        summary.symbols[symbol] = SymbolResult(symbol)
        if isinstance(result, UnknownContractError):
            summary.symbols[symbol].error = result.message
            log.error("%s", result.message)
        else:
            contracts[symbol] = result
    stage_done("qualify")

    client = HistoricalClient(session.conn.ib)
    bars: dict[str, pa.Table] = {}
    daily: dict[str, pa.Table] = {}
    history: dict[str, pa.Table] = {}
    report("bars", f"{len(contracts)} symbol(s): {config.duration} of {config.bar_size} bars")
    done = 0

    async def fetch(symbol: str, contract: Contract) -> None:
        """One symbol's bars; symbols run concurrently through the one pacing scheduler."""
        nonlocal done
        try:
            intraday = await client.fetch_bars(
                BarsRequest(contract, config.duration, config.bar_size, "TRADES", config.use_rth)
            )
            daily[symbol] = await client.fetch_bars(
                BarsRequest(contract, DAILY_DURATION, DAILY_BAR_SIZE, "TRADES", True)
            )
            bars[symbol] = intraday
            history[symbol] = await _previous_sessions(
                settings, client, contract, intraday, config, summary.symbols[symbol]
            )
            text = f"{intraday.num_rows:,} bars"
        except HistoricalDataError as exc:
            summary.symbols[symbol].error = exc.message
            log.error("%s", exc.message)
            text = "failed"
        done += 1
        report("bars", f"{symbol}: {text} ({done}/{len(contracts)})")

    tasks = [asyncio.ensure_future(fetch(s, c)) for s, c in contracts.items()]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:  # one failed (e.g. the gateway went away): stop the others
            task.cancel()
    bars = {s: bars[s] for s in contracts if s in bars}  # the order the user gave
    summary.historical_requests = client.requests_sent
    stage_done("bars")

    report("store", "writing Parquet" if config.save else "not saving (--no-save)")
    for symbol, table in bars.items():
        result = summary.symbols[symbol]
        result.bars = table.num_rows
        if table.num_rows:
            ts = table.column("ts")
            result.first_ts = ts[0].as_py().isoformat()  # bars come sorted by ts
            result.last_ts = ts[-1].as_py().isoformat()
            result.last_close = float(table.column("close")[-1].as_py())
        if config.save and table.num_rows:
            meta = {"source": summary.source}
            writes = store_bars(settings.data_root, config.bar_size, table, meta)
            writes += store_bars(settings.data_root, DAILY_BAR_SIZE, daily[symbol], meta)
            if result.rvol_sessions_fetched:
                writes += store_bars(settings.data_root, config.bar_size, history[symbol], meta)
            result.files.extend(str(w.path) for w in writes)
    stage_done("store")

    report("signals", "indicators and signals")
    for symbol, table in bars.items():
        result = summary.symbols[symbol]
        if table.num_rows == 0:
            continue
        first_ts = table.column("ts")[0].as_py()
        previous_close = previous_closes(daily[symbol], first_ts.astimezone(ET).date()) or None
        frame = compute_indicators(table, config.signals.indicators, previous_close)
        frame = _with_history_rvol(frame, history.get(symbol), config.signals.indicators)
        if frame.height and frame.get_column("rvol").tail(1).null_count() and not result.rvol_note:
            result.rvol_note = "RVOL: no volume at this time of day in the previous sessions"
        result.indicators = _latest_indicators(frame, config.signals)
        signals = signals_from_indicators(frame, config.signals)
        result.signals = [
            {
                "ts": s.ts.isoformat(),
                "symbol": s.symbol,
                "signal": s.signal.value,
                "side": s.side.value,
                "price": s.price,
                "reason": s.reason,
            }
            for s in signals
        ]
        if config.save:
            result.files.extend(str(p) for p in _store_signals(settings.data_root, symbol, signals))
    stage_done("signals")


def needed_sessions(first_day: date, lookback: int) -> list[MarketSession]:
    """The `lookback` XNYS sessions before `first_day` (fewer at the calendar's start)."""
    calendar = xnys()
    first = calendar.first_on_or_after(first_day)
    return [calendar.session(i) for i in range(max(0, first - lookback), first)]


def covers_session(ts_ns: np.ndarray, session: MarketSession, bar_s: int, use_rth: bool) -> bool:
    """Whether stored bar starts `ts_ns` hold the whole session (regular hours from the open
    to the last bar before the close; with extended hours, some pre-market bar too)."""
    if ts_ns.size == 0:
        return False
    first, last = int(ts_ns.min()), int(ts_ns.max())
    covered = first <= session.open_ns and last >= session.close_ns - bar_s * 1_000_000_000
    return covered and (use_rth or first < session.open_ns)


async def _previous_sessions(
    settings: Settings,
    client: HistoricalClient,
    contract: Contract,
    intraday: pa.Table,
    config: RunConfig,
    result: SymbolResult,
) -> pa.Table:
    """The bars of the sessions before `intraday` that RVOL compares with.

    Sessions already complete in the store are read from it; the others are fetched once,
    in one paced request through `client` (stored with the run's bars when saving).
    """
    lookback = config.signals.indicators.rvol_lookback_days
    empty = intraday.schema.empty_table()
    bar = parse_bar_size(config.bar_size)
    if not bar.is_intraday:
        result.rvol_note = f"RVOL: needs intraday bars, not {config.bar_size}"
        return empty
    if intraday.num_rows == 0:
        return empty
    first_day = intraday.column("ts")[0].as_py().astimezone(ET).date()
    sessions = needed_sessions(first_day, lookback)
    stored: list[pa.Table] = []
    missing: list[MarketSession] = []
    for session in sessions:
        path = layout.bars_path(settings.data_root, contract.symbol, str(bar), session.day)
        table = read_data(path, DataKind.BARS) if path.exists() else None
        start_ns, end_ns = session.window(config.use_rth)
        if table is not None:
            ts = table.column("ts").cast(pa.int64()).to_numpy()
            table = table.filter(pa.array((ts >= start_ns) & (ts < end_ns)))
        if table is not None and covers_session(
            table.column("ts").cast(pa.int64()).to_numpy(), session, bar.seconds, config.use_rth
        ):
            stored.append(table.select(intraday.column_names).cast(intraday.schema))
        else:
            missing.append(session)
    result.rvol_sessions_stored = len(stored)
    fetched = empty
    if missing:
        first_missing = sessions.index(missing[0])
        count = len(sessions) - first_missing
        end_ns = sessions[-1].window(config.use_rth)[1]
        request = BarsRequest(
            contract,
            f"{count} D",
            config.bar_size,
            "TRADES",
            config.use_rth,
            datetime.fromtimestamp(end_ns / 1e9, UTC),
        )
        try:
            fetched = await client.fetch_bars(request)
        except HistoricalDataError as exc:
            result.rvol_note = f"RVOL: previous sessions could not be fetched: {exc.message}"
            fetched = empty
        if fetched.num_rows:
            days = {s.day for s in missing}
            keep = [d in days for d in et_days(fetched.column("ts")).to_pylist()]
            fetched = fetched.filter(pa.array(keep))
        result.rvol_sessions_fetched = len(
            set(et_days(fetched.column("ts")).to_pylist()) if fetched.num_rows else ()
        )
    if not sessions:
        result.rvol_note = "RVOL: no earlier sessions in the exchange calendar"
    return pa.concat_tables([*stored, fetched]) if stored or fetched.num_rows else empty


def _with_history_rvol(
    frame: pl.DataFrame, history: pa.Table | None, config: IndicatorConfig
) -> pl.DataFrame:
    """`frame` with `cum_volume`/`rvol` computed against the previous sessions too."""
    if history is None or history.num_rows == 0 or frame.height == 0:
        return frame
    bars = frame.select(history.column_names).to_arrow().cast(history.schema)
    combined = with_rvol(pa.concat_tables([history, bars]), config.rvol_lookback_days)
    values = combined.select("ts", "cum_volume", "rvol")
    return frame.drop("cum_volume", "rvol").join(values, on="ts", how="left", maintain_order="left")


def _store_signals(root: Path, symbol: str, signals: list[Any]) -> list[Path]:
    """One file per ET day, replaced by this run's signals for that day (deterministic)."""
    by_day: dict[date, list[Any]] = {}
    for signal in signals:
        by_day.setdefault(signal.ts.astimezone(ET).date(), []).append(signal)
    paths: list[Path] = []
    for day, day_signals in sorted(by_day.items()):
        path = layout.signals_path(root, symbol, day)
        write_table_atomic(signals_to_table(day_signals, {"source": "ibdesk run"}), path)
        paths.append(path)
    return paths
