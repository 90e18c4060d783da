"""The JSON report of `ibdesk analyze-depth`: its shape, its JSON Schema, and the service
that loads a symbol-day, analyses it and builds the report.

The schema here is the command's `output_schema`, and the key paths are a contract that
scripts read (`rows`, `spread.mean`, `ofi.total`, `ofi.beta`, `volume_profile.vpoc`,
`price_impact.kyle_lambda`, ...). Numbers are not rounded; NaN and infinities become null,
so the JSON is strict. Rendering to a terminal or plots lives elsewhere.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ibdesk.depth import loading
from ibdesk.depth.analysis import BookAccumulator, complete_analysis
from ibdesk.depth.results import AnalysisParams, DepthAnalysis
from ibdesk.depth.stats import Fit
from ibdesk.depth.tape import IMPACT_HORIZONS_S, mark_trades, trade_tape
from ibdesk.store.layout import Source

log = logging.getLogger("ibdesk.depth")
perf_log = logging.getLogger("ibdesk.performance")

NUMBER_OR_NULL: dict[str, Any] = {"type": ["number", "null"]}
INTEGER: dict[str, Any] = {"type": "integer", "minimum": 0}
NUMBERS: dict[str, Any] = {"type": "array", "items": NUMBER_OR_NULL}
MATRIX: dict[str, Any] = {"type": "array", "items": NUMBERS}


@dataclass(frozen=True, slots=True)
class DayReport:
    """What one analysis produced: the files chosen, the numbers, and the JSON report."""

    selection: loading.DaySelection
    analysis: DepthAnalysis
    report: dict[str, Any]


def analyze_day(
    level2_root: Path,
    symbol: str,
    day: date | None,
    choice: loading.SourceChoice = loading.SourceChoice.AUTO,
    params: AnalysisParams | None = None,
    chunk_rows: int = loading.DEFAULT_CHUNK_ROWS,
) -> DayReport:
    """Select the day's files, stream the snapshots through the analysis, build the report."""
    params = params or AnalysisParams()
    started = time.perf_counter()
    selection = loading.select_day(level2_root, symbol, day, choice)
    log.info(
        "analyze-depth %s %s: source %s of %s, %d snapshot file(s), %d trades file(s)",
        symbol,
        selection.day,
        selection.source.value,
        ",".join(s.value for s in selection.sources),
        len(selection.snapshots),
        len(selection.trades),
    )
    # the trades (small) are read and profiled in the background while the snapshots
    # stream through, then marked against the day's mids while the book pass finishes
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ibdesk-depth-trades") as pool:
        tape = pool.submit(lambda: trade_tape(loading.read_trades(selection), params))
        rows = loading.snapshot_rows(selection)
        accumulator = BookAccumulator(selection.levels, params, expected_rows=rows)
        accumulator.add_all(loading.iter_snapshot_chunks(selection, chunk_rows))
        ts_ns, mid, _ = accumulator.day_rows()
        marks = pool.submit(lambda: mark_trades(tape.result(), ts_ns, mid))
        book = accumulator.finish()
        result = complete_analysis(book, tape.result(), marks.result(), params)
    report = build_report(selection, result)
    perf_log.info(
        "analyze-depth %s %s rows=%d trades=%d levels=%d seconds=%.3f",
        symbol,
        selection.day,
        result.rows,
        result.trades,
        result.levels,
        time.perf_counter() - started,
    )
    return DayReport(selection, result, report)


# --------------------------------------------------------------------------- values


def _num(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _nums(values: np.ndarray) -> list[float | None]:
    """Floats as a list, NaN/inf as None (checked once per array, not per number)."""
    numbers = np.asarray(values, dtype=np.float64)
    if bool(np.isfinite(numbers).all()):
        return numbers.tolist()
    return [_num(v) for v in numbers.tolist()]


def _matrix(values: np.ndarray) -> list[list[float | None]]:
    numbers = np.asarray(values, dtype=np.float64)
    if bool(np.isfinite(numbers).all()):
        return numbers.tolist()
    return [_nums(row) for row in numbers]


def _fit(fit: Fit) -> dict[str, Any]:
    return {
        "beta": _num(fit.betas[0]) if fit.betas else None,
        "intercept": _num(fit.intercept),
        "r2": _num(fit.r2),
        "n_windows": fit.n,
    }


def _iso_minute(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _interval_ms(selection: loading.DaySelection, ts_ns: np.ndarray) -> float | None:
    """The capture interval from metadata, else the median gap between snapshots."""
    if selection.interval_ms is not None:
        return selection.interval_ms
    if len(ts_ns) < 2:
        return None
    return float(np.median(np.diff(ts_ns))) / 1e6


def build_report(selection: loading.DaySelection, result: DepthAnalysis) -> dict[str, Any]:
    """The JSON report (plain dicts, lists, numbers, strings and nulls)."""
    book = result.book
    spread = book.spread
    depth = book.depth
    profile = result.volume_profile
    impact = result.price_impact
    dyn = book.dynamics
    level0 = book.ofi_levels[0]
    multi = book.ofi_multilevel_fit
    report: dict[str, Any] = {
        "symbol": selection.symbol,
        "date": selection.day.isoformat(),
        "source": selection.source.value,
        "sources": [s.value for s in selection.sources],
        "files": [str(p) for f in selection.snapshots + selection.trades for p in f.physical],
        "rows": result.rows,
        "trades": result.trades,
        "interval_ms": _num(_interval_ms(selection, book.ts_ns)),
        "levels": result.levels,
        "window_ms": result.window_ns / 1e6,
        "spread": {
            "mean": _num(spread.mean),
            "median": _num(spread.median),
            "p95": _num(spread.p95),
            "mean_bps": _num(spread.mean_bps),
            "median_bps": _num(spread.median_bps),
            "p95_bps": _num(spread.p95_bps),
            "time_weighted_mean": _num(spread.time_weighted_mean),
            "rows": spread.rows,
        },
        "depth": {
            "bid_size_1": _num(depth.bid_size_1),
            "ask_size_1": _num(depth.ask_size_1),
            "bid_size_5": _num(depth.bid_size_5),
            "ask_size_5": _num(depth.ask_size_5),
            "bid_size_all": _num(depth.bid_size_all),
            "ask_size_all": _num(depth.ask_size_all),
            "imbalance_1": _num(depth.imbalance_1),
            "imbalance_5": _num(depth.imbalance_5),
            "imbalance_all": _num(depth.imbalance_all),
        },
        "ofi": {"total": _num(level0.total), **_fit(level0.fit)},
        "ofi_multilevel": {
            "levels": len(book.ofi_levels),
            "per_level": [
                {"level": lvl.level, "total": _num(lvl.total), **_fit(lvl.fit)}
                for lvl in book.ofi_levels
            ],
            "betas": [_num(b) for b in multi.betas],
            "intercept": _num(multi.intercept),
            "r2": _num(multi.r2),
            "n_windows": multi.n,
        },
        "microprice": {
            "mean_distance": _num(book.microprice.mean_distance),
            "corr_next_mid_change": _num(book.microprice.corr_next_mid_change),
            "n_windows": book.microprice.n_windows,
        },
        "volume_profile": {
            "tick": profile.tick_usd,
            "total_volume": _num(profile.total_volume),
            "vpoc": _num(profile.vpoc),
            "vah": _num(profile.vah),
            "val": _num(profile.val),
            "value_area_volume": _num(profile.value_area_volume),
            "prices": _nums(profile.prices),
            "volumes": _nums(profile.volumes),
        },
        "price_impact": {
            "kyle_lambda": _num(impact.kyle_lambda),
            "kyle_r2": _num(impact.kyle_r2),
            "n_windows": impact.n_windows,
            "effective_spread_bps": _num(impact.effective_spread_bps),
            **{
                f"realized_spread_bps_{h}s": _num(impact.realized_spread_bps[h])
                for h in IMPACT_HORIZONS_S
            },
            **{f"impact_bps_{h}s": _num(impact.impact_bps[h]) for h in IMPACT_HORIZONS_S},
            "trades_signed": impact.trades_signed,
            "trades_lee_ready": impact.trades_lee_ready,
        },
        "dynamics": {
            "minutes": [_iso_minute(int(m)) for m in dyn.minute_ns.tolist()],
            "rows": [int(r) for r in dyn.rows.tolist()],
            "mid": _nums(dyn.mid),
            "spread_mean": _nums(dyn.spread_mean),
            "bid_depth": _nums(dyn.bid_depth),
            "ask_depth": _nums(dyn.ask_depth),
            "ofi": _nums(dyn.ofi),
            "bid_size_by_level": _matrix(dyn.bid_size_by_level),
            "ask_size_by_level": _matrix(dyn.ask_size_by_level),
        },
    }
    return report


def to_json(report: dict[str, Any]) -> str:
    """Strict JSON text (raises if a NaN slipped through rather than writing invalid JSON)."""
    return json.dumps(report, indent=2, allow_nan=False)


def write_report(report: dict[str, Any], path: Path) -> Path:
    """Write the report atomically (temp file in the same folder, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(to_json(report))
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


# --------------------------------------------------------------------------- schema


def _object(properties: dict[str, Any], description: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


def _numbers(names: Sequence[str]) -> dict[str, Any]:
    return dict.fromkeys(names, NUMBER_OR_NULL)


def _fit_schema() -> dict[str, Any]:
    return {**_numbers(("beta", "intercept", "r2")), "n_windows": INTEGER}


def report_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the report; also `analyze-depth --describe`'s output."""
    sources = [s.value for s in Source]
    horizons = [f"realized_spread_bps_{h}s" for h in IMPACT_HORIZONS_S]
    impacts = [f"impact_bps_{h}s" for h in IMPACT_HORIZONS_S]
    return {
        **_object(
            {
                "symbol": {"type": "string"},
                "date": {"type": "string", "format": "date"},
                "source": {"type": "string", "enum": sources},
                "sources": {"type": "array", "items": {"type": "string", "enum": sources}},
                "files": {"type": "array", "items": {"type": "string"}},
                "rows": INTEGER,
                "trades": INTEGER,
                "interval_ms": NUMBER_OR_NULL,
                "levels": INTEGER,
                "window_ms": {"type": "number"},
                "spread": _object(
                    {
                        **_numbers(
                            (
                                "mean",
                                "median",
                                "p95",
                                "mean_bps",
                                "median_bps",
                                "p95_bps",
                                "time_weighted_mean",
                            )
                        ),
                        "rows": INTEGER,
                    },
                    "ask_px_00 − bid_px_00 over rows with both sides, dollars (and bps of mid)",
                ),
                "depth": _object(
                    _numbers(
                        (
                            "bid_size_1",
                            "ask_size_1",
                            "bid_size_5",
                            "ask_size_5",
                            "bid_size_all",
                            "ask_size_all",
                            "imbalance_1",
                            "imbalance_5",
                            "imbalance_all",
                        )
                    ),
                    "mean resting shares over 1, 5 and all levels; mean (ΣQb−ΣQa)/(ΣQb+ΣQa)",
                ),
                "ofi": _object(
                    {"total": NUMBER_OR_NULL, **_fit_schema()},
                    "level-0 OFI (Cont, Kukanov & Stoikov 2014), shares; fit on mid change",
                ),
                "ofi_multilevel": _object(
                    {
                        "levels": INTEGER,
                        "per_level": {
                            "type": "array",
                            "items": _object(
                                {"level": INTEGER, "total": NUMBER_OR_NULL, **_fit_schema()}
                            ),
                        },
                        "betas": NUMBERS,
                        "intercept": NUMBER_OR_NULL,
                        "r2": NUMBER_OR_NULL,
                        "n_windows": INTEGER,
                    },
                    "OFI per level 1..min(5, N) (Xu, Gould & Howison 2019)",
                ),
                "microprice": _object(
                    {
                        **_numbers(("mean_distance", "corr_next_mid_change")),
                        "n_windows": INTEGER,
                    },
                    "Stoikov microprice minus mid (dollars); correlation with the next move",
                ),
                "volume_profile": _object(
                    {
                        "tick": {"type": "number"},
                        **_numbers(("total_volume", "vpoc", "vah", "val", "value_area_volume")),
                        "prices": NUMBERS,
                        "volumes": NUMBERS,
                    },
                    "traded volume per tick-binned price (dollars), VPOC and 70% value area",
                ),
                "price_impact": _object(
                    {
                        **_numbers(
                            ("kyle_lambda", "kyle_r2", "effective_spread_bps", *horizons, *impacts)
                        ),
                        "n_windows": INTEGER,
                        "trades_signed": INTEGER,
                        "trades_lee_ready": INTEGER,
                    },
                    "Kyle's lambda ($ per share) and effective/realized spreads (bps, VW)",
                ),
                "dynamics": _object(
                    {
                        "minutes": {"type": "array", "items": {"type": "string"}},
                        "rows": {"type": "array", "items": INTEGER},
                        "mid": NUMBERS,
                        "spread_mean": NUMBERS,
                        "bid_depth": NUMBERS,
                        "ask_depth": NUMBERS,
                        "ofi": NUMBERS,
                        "bid_size_by_level": MATRIX,
                        "ask_size_by_level": MATRIX,
                    },
                    "per-minute series (UTC minute starts) used by the plots",
                ),
            }
        ),
        "title": "ibdesk analyze-depth report",
        "description": "order-book microstructure of one symbol-day, from one source",
    }
