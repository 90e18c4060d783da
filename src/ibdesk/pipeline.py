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

import polars as pl
import pyarrow as pa
from ib_async import Contract

from ibdesk.config import Settings
from ibdesk.domain.bars import parse_bar_size, parse_duration
from ibdesk.domain.hours import ET
from ibdesk.errors import UserInputError
from ibdesk.ib import gateway as lifecycle
from ibdesk.ib.connection import ConnectionConfig, IBConnection
from ibdesk.ib.contracts import ContractCache, UnknownContractError, stock
from ibdesk.ib.requests import BarsRequest, HistoricalClient, HistoricalDataError
from ibdesk.signals.indicators import compute_indicators, previous_closes
from ibdesk.signals.rules import SignalConfig, signals_from_indicators, signals_to_table
from ibdesk.store import layout
from ibdesk.store.bars import store_bars
from ibdesk.store.parquet import write_json_atomic, write_table_atomic

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


@dataclass(slots=True)
class RunSummary:
    started: datetime
    finished: datetime | None = None
    source: str = ""
    gateway: str = ""
    duration: str = ""
    bar_size: str = ""
    saved: bool = True
    symbols: dict[str, SymbolResult] = field(default_factory=dict)
    summary_path: Path | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        return [s for s, r in self.symbols.items() if r.error is not None]

    def to_json(self) -> dict[str, Any]:
        return {
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat() if self.finished else None,
            "source": self.source,
            "gateway": self.gateway,
            "duration": self.duration,
            "bar_size": self.bar_size,
            "saved": self.saved,
            "failed": self.failed,
            "stage_seconds": self.stage_seconds,
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
    settings: Settings, config: RunConfig, progress: Progress | None = None
) -> RunSummary:
    """Do the whole automated run; see the module docstring."""
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

    sim_process: lifecycle.SimProcess | None = None
    started_gateway = False
    conn: IBConnection | None = None
    try:
        report("gateway", "starting the simulator" if config.sim else "finding a gateway")
        port = config.port
        host_settings = settings
        if config.sim:
            sim_process = await lifecycle.start_sim_process(settings)
            host_settings = settings.model_copy(update={"ib_host": sim_process.host})
            port = sim_process.port
            summary.gateway = f"sim {sim_process.host}:{sim_process.port} (started)"
        elif settings.ib_gateway_mode != "attach":
            state = await lifecycle.start(settings, port=port, live=config.live)
            started_gateway = state.started_by_ibdesk
            port = state.port
            summary.gateway = f"{state.mode} {state.host}:{state.port}"
        conn = IBConnection(
            ConnectionConfig.from_settings(
                host_settings, port=port, live=config.live, readonly=True, reconnect=False
            )
        )
        await conn.connect()
        summary.source = "sim" if conn.is_sim else "ibkr"
        if not summary.gateway:
            summary.gateway = f"attached {conn.config.host}:{conn.port}"
        stage_done("gateway")

        report("qualify", f"qualifying {len(config.symbols)} symbol(s)")
        contracts: dict[str, Contract] = {}
        qualified = await ContractCache().qualify(conn.ib, *(stock(s) for s in config.symbols))
        for symbol, result in zip(config.symbols, qualified, strict=True):
            summary.symbols[symbol] = SymbolResult(symbol)
            if isinstance(result, UnknownContractError):
                summary.symbols[symbol].error = result.message
                log.error("%s", result.message)
            else:
                contracts[symbol] = result
        stage_done("qualify")

        client = HistoricalClient(conn.ib)
        bars: dict[str, pa.Table] = {}
        daily: dict[str, pa.Table] = {}
        report("bars", f"{len(contracts)} symbol(s): {config.duration} of {config.bar_size} bars")
        done = 0

        async def fetch(symbol: str, contract: Contract) -> None:
            """One symbol's bars; symbols run concurrently through the one pacing scheduler."""
            nonlocal done
            try:
                intraday = await client.fetch_bars(
                    BarsRequest(
                        contract, config.duration, config.bar_size, "TRADES", config.use_rth
                    )
                )
                daily[symbol] = await client.fetch_bars(
                    BarsRequest(contract, DAILY_DURATION, DAILY_BAR_SIZE, "TRADES", True)
                )
                bars[symbol] = intraday
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
                result.files.extend(
                    str(p) for p in _store_signals(settings.data_root, symbol, signals)
                )
        stage_done("signals")
    finally:
        report("cleanup", "disconnecting")
        if conn is not None:
            await conn.close()
        if sim_process is not None:
            sim_process.stop()
        if started_gateway:
            lifecycle.stop(settings)
        stage_done("cleanup")
        summary.finished = datetime.now(UTC)
    if config.save:
        path = layout.run_summary_path(settings.data_root, summary.started)
        summary.summary_path = write_json_atomic(summary.to_json(), path)
    perf_log.info("run %s: %s", ",".join(config.symbols), summary.stage_seconds)
    return summary


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
