"""Analysis benchmark: indicators and signals on ~1 M one-minute bars.

Candidate: `compute_indicators` + the signal rules (`generate_signals`, polars, vectorized)
on 10 symbols x 100 days x 960 bars (04:00-20:00 New York). Baseline: the same core
indicators (session VWAP, EMA 9/20, Wilder ATR 14, RVOL over 10 days) written as the
plain per-bar Python loop a first version would use, without any signal rule. Both run
in one process on the same bars; prints median/min/max seconds, seconds per 1 M bars and
the ratio baseline / candidate.

Reproduce: `.venv/bin/python bench/signals.py [--symbols 10 --days 100 --repeat 3]`.
"""

from __future__ import annotations

import argparse
import bisect
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from ibdesk.signals.indicators import compute_indicators
from ibdesk.signals.rules import generate_signals
from ibdesk.store.schemas import TS_TYPE, bars_schema

BARS_PER_DAY = 960  # 04:00-20:00 New York, 1-minute bars


def make_bars(symbols: int, days: int, seed: int = 1) -> pa.Table:
    rng = np.random.default_rng(seed)
    minute_ns = 60 * 1_000_000_000
    first = int(datetime(2024, 1, 2, 9, 0, tzinfo=UTC).timestamp()) * 1_000_000_000  # 04:00 NY
    day_ns = 86_400 * 1_000_000_000
    per_day = np.arange(BARS_PER_DAY, dtype=np.int64) * minute_ns
    ts = np.concatenate([first + d * day_ns + per_day for d in range(days)])
    n = len(ts)
    parts: list[pa.Table] = []
    for s in range(symbols):
        close = 50 + np.cumsum(rng.normal(0, 0.05, n))
        spread = rng.uniform(0.01, 0.1, n)
        parts.append(
            pa.table(
                {
                    "ts": pa.array(ts, pa.int64()).cast(TS_TYPE),
                    "symbol": pa.array([f"S{s:03d}"] * n),
                    "open": close - rng.normal(0, 0.02, n),
                    "high": close + spread,
                    "low": close - spread,
                    "close": close,
                    "volume": rng.integers(0, 20_000, n).astype(float),
                    "wap": close,
                    "bar_count": rng.integers(1, 100, n),
                },
                schema=bars_schema(),
            )
        )
    return pa.concat_tables(parts)


def loop_one_symbol(
    rows: list[tuple[float, float, float, float]], dates: list[object], tods: list[int]
) -> dict[str, list[float | None]]:
    """Per-bar Python loop for one symbol: VWAP, EMA 9/20, ATR 14 (Wilder), RVOL (10 days)."""
    out: dict[str, list[float | None]] = {k: [] for k in ("vwap", "e9", "e20", "atr", "rvol")}
    a9, a20, n = 2 / 10, 2 / 21, 14
    day: object = None
    e9 = e20 = atr = prev = None
    trs = cum_pv = cum_v = 0.0
    history: list[tuple[list[int], list[float]]] = []
    today: tuple[list[int], list[float]] = ([], [])
    for i, (high, low, close, volume) in enumerate(rows):
        if dates[i] != day:
            if day is not None:
                history.append(today)
            day, today, cum_pv, cum_v = dates[i], ([], []), 0.0, 0.0
        cum_pv += (high + low + close) / 3 * volume
        cum_v += volume
        out["vwap"].append(cum_pv / cum_v if cum_v else None)
        e9 = close if e9 is None else a9 * close + (1 - a9) * e9
        e20 = close if e20 is None else a20 * close + (1 - a20) * e20
        out["e9"].append(e9)
        out["e20"].append(e20)
        tr = high - low if prev is None else max(high - low, abs(high - prev), abs(low - prev))
        if i < n:
            trs += tr
            atr = trs / n if i == n - 1 else None
        elif atr is not None:
            atr = (atr * (n - 1) + tr) / n
        out["atr"].append(atr)
        prev = close
        today[0].append(tods[i])
        today[1].append(cum_v)
        previous = history[-10:]
        if previous:
            total = 0.0
            for times, cums in previous:
                j = bisect.bisect_right(times, tods[i])
                total += cums[j - 1] if j else 0.0
            avg = total / len(previous)
            out["rvol"].append(cum_v / avg if avg else None)
        else:
            out["rvol"].append(None)
    return out


def loop_indicators(table: pa.Table) -> list[dict[str, list[float | None]]]:
    """The baseline: sort, convert to New York time, then loop bar by bar per symbol."""
    frame = table.to_pandas().sort_values(["symbol", "ts"], kind="stable")
    local = frame["ts"].dt.tz_convert("America/New_York")
    frame["date"] = local.dt.date
    frame["tod"] = local.dt.hour * 3600 + local.dt.minute * 60
    results = []
    for _, part in frame.groupby("symbol", sort=True):
        rows = list(
            zip(
                part["high"].tolist(),
                part["low"].tolist(),
                part["close"].tolist(),
                part["volume"].tolist(),
                strict=True,
            )
        )
        results.append(loop_one_symbol(rows, part["date"].tolist(), part["tod"].tolist()))
    return results


def check_same(bars: pa.Table) -> None:
    """Both sides must compute the same numbers, or the comparison means nothing."""
    frame = compute_indicators(bars)
    first = frame.filter(frame.get_column("symbol") == frame.get_column("symbol")[0])
    want = loop_indicators(bars)[0]
    for ours, theirs in (
        ("vwap", "vwap"),
        ("ema_9", "e9"),
        ("ema_20", "e20"),
        ("atr_14", "atr"),
        ("rvol", "rvol"),
    ):
        got = first.get_column(ours).fill_null(np.nan).to_numpy()
        ref = np.array([np.nan if v is None else v for v in want[theirs]])
        if not np.allclose(got, ref, rtol=1e-9, equal_nan=True):
            raise SystemExit(f"candidate and baseline disagree on {ours}")


def timed(func: Callable[[], object]) -> float:
    began = time.perf_counter()
    func()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description="Indicators + signals benchmark.")
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bars = make_bars(args.symbols, args.days)
    rows = bars.num_rows
    check_same(make_bars(2, 15))

    candidate: list[float] = []
    indicators_only: list[float] = []
    baseline: list[float] = []
    signals = 0
    for _ in range(args.repeat):
        indicators_only.append(timed(lambda: compute_indicators(bars)))
        began = time.perf_counter()
        signals = len(generate_signals(bars, bar_s=60))
        candidate.append(time.perf_counter() - began)
        baseline.append(timed(lambda: loop_indicators(bars)))

    def line(name: str, values: list[float]) -> str:
        med = statistics.median(values)
        per_m = med / rows * 1_000_000
        return f"{name:<34}{med:>9.3f}{min(values):>9.3f}{max(values):>9.3f}{per_m:>12.3f}"

    shape = f"{args.symbols} symbols x {args.days} days x {BARS_PER_DAY}"
    print(f"{rows:,} bars ({shape}), {signals:,} signals")
    print(f"{'':<34}{'median':>9}{'min':>9}{'max':>9}{'s per 1M':>12}")
    print(line("indicators (polars)", indicators_only))
    print(line("indicators + signals (polars)", candidate))
    print(line("baseline: per-bar Python loop", baseline))
    ratio = statistics.median(baseline) / statistics.median(candidate)
    print(f"ratio baseline / (indicators + signals): {ratio:.1f}x")


if __name__ == "__main__":
    main()
