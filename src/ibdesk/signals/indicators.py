"""Day-trading indicators computed from bars: pure functions on polars frames, no I/O.

Input is a table in the bars schema (`ibdesk.store.schemas.bars_schema`): tz-aware UTC
`ts` = bar start, one bar size, any number of symbols and days. Sessions are New York
trading days; regular trading hours (RTH) are 09:30-16:00 America/New_York and
pre-market is 04:00-09:30. Every function returns a new frame, sorted by (symbol, ts).

Formulas (all per symbol):
- VWAP, anchored at each New York day: cumsum(typical * volume) / cumsum(volume) with
  typical = (high + low + close) / 3, over every bar of that day present in the data.
- EMA(n): y0 = close0, y_t = a * close_t + (1 - a) * y_{t-1}, a = 2 / (n + 1); continuous
  across days (no reset), like a chart's EMA.
- ATR(n), Wilder: TR_t = max(high - low, |high - close_{t-1}|, |low - close_{t-1}|) (TR_0 =
  high - low); ATR_{n-1} = mean(TR_0..TR_{n-1}), then ATR_t = (ATR_{t-1} * (n - 1) + TR_t) / n;
  null before bar n-1 (Wilder, "New Concepts in Technical Trading Systems", 1978).
- Opening range: high/low of the RTH bars starting in the first `opening_range_minutes`
  after 09:30; `or_complete` marks bars starting at or after the range's end.
- Pre-market high/low: of the bars starting 04:00-09:30; null when there are none.
- Gap %: (first RTH open - previous close) / previous close * 100, previous close = last
  RTH close of the previous day in the data (or `previous_close[symbol]` for the first day).
- RVOL: the day's cumulative volume up to and including this bar, divided by the average
  cumulative volume at the same time of day (as of the last bar starting at or before it)
  over up to `rvol_lookback_days` previous days in the data; null without a previous day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl
import pyarrow as pa

from ibdesk.domain.hours import ET_NAME, PREMARKET_START_S, RTH_END_S, RTH_START_S, SECONDS_PER_DAY

DAY_KEYS = ("symbol", "session_date")


@dataclass(frozen=True, slots=True)
class IndicatorConfig:
    """Indicator periods; the defaults are the ones day traders quote."""

    ema_fast: int = 9
    ema_slow: int = 20
    atr_period: int = 14
    opening_range_minutes: int = 5
    rvol_lookback_days: int = 10

    def __post_init__(self) -> None:
        for name in ("ema_fast", "ema_slow", "atr_period", "opening_range_minutes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.rvol_lookback_days < 1:
            raise ValueError("rvol_lookback_days must be >= 1")


def to_frame(bars: pa.Table | pl.DataFrame) -> pl.DataFrame:
    """Bars as a polars frame sorted by (symbol, ts) with New York session columns.

    Adds `session_date` (New York date), `tod_s` (seconds after New York midnight of the
    bar start), `is_rth`, `is_premarket` and `day_id` (a number per symbol and day).
    """
    frame = bars if isinstance(bars, pl.DataFrame) else pl.DataFrame(pl.from_arrow(bars))
    local = pl.col("_local")  # New York wall-clock time, naive: field access is arithmetic
    frame = (
        frame.sort(["symbol", "ts"])
        .with_columns(_local=pl.col("ts").dt.convert_time_zone(ET_NAME).dt.replace_time_zone(None))
        .with_columns(
            session_date=local.dt.date(),
            tod_s=(local.dt.epoch("s") % SECONDS_PER_DAY).cast(pl.Int64),
        )
        .drop("_local")
    )
    new_day = (pl.col("symbol") != pl.col("symbol").shift(1)) | (
        pl.col("session_date") != pl.col("session_date").shift(1)
    )
    return frame.with_columns(
        is_rth=(pl.col("tod_s") >= RTH_START_S) & (pl.col("tod_s") < RTH_END_S),
        is_premarket=(pl.col("tod_s") >= PREMARKET_START_S) & (pl.col("tod_s") < RTH_START_S),
        day_id=new_day.fill_null(True).cast(pl.Int64).cum_sum(),
    )


def _session_frame(bars: pa.Table | pl.DataFrame) -> pl.DataFrame:
    if isinstance(bars, pl.DataFrame) and {"session_date", "tod_s", "day_id"} <= set(bars.columns):
        return bars
    return to_frame(bars)


def with_vwap(bars: pa.Table | pl.DataFrame) -> pl.DataFrame:
    """Adds `vwap`, anchored at the first bar of each New York day (see module docstring)."""
    frame = _session_frame(bars)
    typical = (pl.col("high") + pl.col("low") + pl.col("close")) / 3.0
    cum_pv = (typical * pl.col("volume")).cum_sum().over("day_id")
    cum_v = pl.col("volume").cum_sum().over("day_id")
    return frame.with_columns(vwap=pl.when(cum_v > 0).then(cum_pv / cum_v).otherwise(None))


def with_ema(bars: pa.Table | pl.DataFrame, span: int, column: str | None = None) -> pl.DataFrame:
    """Adds `ema_{span}` of the close (alpha = 2 / (span + 1), seeded with the first close)."""
    frame = _session_frame(bars)
    name = column or f"ema_{span}"
    ema = pl.col("close").ewm_mean(alpha=2.0 / (span + 1), adjust=False).over("symbol")
    return frame.with_columns(ema.alias(name))


def with_atr(bars: pa.Table | pl.DataFrame, period: int = 14) -> pl.DataFrame:
    """Adds `tr` and `atr_{period}` (Wilder's smoothing, seeded with the mean of the first TRs)."""
    frame = _session_frame(bars)
    prev_close = pl.col("close").shift(1).over("symbol")
    true_range = (
        pl.max_horizontal(
            pl.col("high") - pl.col("low"),
            (pl.col("high") - prev_close).abs(),
            (pl.col("low") - prev_close).abs(),
        )
        .fill_null(pl.col("high") - pl.col("low"))
        .alias("tr")
    )
    frame = frame.with_columns(true_range)
    index = pl.int_range(pl.len()).over("symbol")
    seed = pl.col("tr").head(period).mean().over("symbol")
    seeded = (
        pl.when(index < period - 1)
        .then(None)
        .when(index == period - 1)
        .then(seed)
        .otherwise(pl.col("tr"))
    )
    atr = seeded.ewm_mean(alpha=1.0 / period, adjust=False).over("symbol")
    return frame.with_columns(atr.alias(f"atr_{period}"))


def with_opening_range(bars: pa.Table | pl.DataFrame, minutes: int = 5) -> pl.DataFrame:
    """Adds `or_high`, `or_low` (per day, null when no bar starts in the range) and `or_complete`.

    Bars longer than `minutes` give a wider range than asked (the first RTH bar's extremes).
    """
    frame = _session_frame(bars)
    end_s = RTH_START_S + minutes * 60
    in_range = pl.col("is_rth") & (pl.col("tod_s") < end_s)
    return frame.with_columns(
        or_high=pl.col("high").filter(in_range).max().over("day_id"),
        or_low=pl.col("low").filter(in_range).min().over("day_id"),
        or_complete=pl.col("is_rth") & (pl.col("tod_s") >= end_s),
    )


def with_premarket_levels(bars: pa.Table | pl.DataFrame) -> pl.DataFrame:
    """Adds `pm_high` and `pm_low` of the day's 04:00-09:30 bars (null when there are none)."""
    frame = _session_frame(bars)
    return frame.with_columns(
        pm_high=pl.col("high").filter(pl.col("is_premarket")).max().over("day_id"),
        pm_low=pl.col("low").filter(pl.col("is_premarket")).min().over("day_id"),
    )


def daily_gaps(
    bars: pa.Table | pl.DataFrame, previous_close: Mapping[str, float] | None = None
) -> pl.DataFrame:
    """One row per symbol and day: `day_id`, `symbol`, `session_date`, `day_open`,
    `day_close`, `prev_close`, `gap_pct`, in (symbol, date) order.

    `day_open`/`day_close` are the first RTH open and last RTH close (null for a day with no
    RTH bar). `previous_close` gives the close before the first day in the data (for
    example from daily bars).
    """
    frame = _session_frame(bars)
    rth = pl.col("is_rth")
    days = (
        frame.group_by("day_id", maintain_order=True)
        .agg(
            symbol=pl.col("symbol").first(),
            session_date=pl.col("session_date").first(),
            day_open=pl.col("open").filter(rth).first(),
            day_close=pl.col("close").filter(rth).last(),
        )
        .sort("day_id")
    )
    given = pl.DataFrame(
        {
            "symbol": list((previous_close or {}).keys()),
            "given_prev_close": list((previous_close or {}).values()),
        },
        schema={"symbol": pl.String, "given_prev_close": pl.Float64},
    )
    first_day = pl.col("symbol") != pl.col("symbol").shift(1)
    days = days.join(given, on="symbol", how="left", maintain_order="left").with_columns(
        prev_close=pl.when(first_day.fill_null(True))
        .then(pl.col("given_prev_close"))
        .otherwise(pl.col("day_close").shift(1))
    )
    gap = (pl.col("day_open") - pl.col("prev_close")) / pl.col("prev_close") * 100.0
    return days.drop("given_prev_close").with_columns(
        gap_pct=pl.when(pl.col("prev_close") > 0).then(gap).otherwise(None)
    )


def previous_closes(daily_bars: pa.Table | pl.DataFrame, before: date) -> dict[str, float]:
    """Each symbol's last daily close dated strictly before `before` (for `previous_close`).

    A daily bar's date is taken from its `ts` in UTC, which is right whether the bar is
    stamped at midnight UTC or at midnight New York (05:00/04:00 UTC).
    """
    frame = (
        daily_bars
        if isinstance(daily_bars, pl.DataFrame)
        else pl.DataFrame(pl.from_arrow(daily_bars))
    )
    if frame.height == 0:
        return {}
    last = (
        frame.filter(pl.col("ts").dt.convert_time_zone("UTC").dt.date() < before)
        .sort(["symbol", "ts"])
        .group_by("symbol", maintain_order=True)
        .agg(pl.col("close").last())
    )
    return dict(zip(last.get_column("symbol"), last.get_column("close"), strict=True))


def with_gap(
    bars: pa.Table | pl.DataFrame, previous_close: Mapping[str, float] | None = None
) -> pl.DataFrame:
    """Adds the day's `prev_close` and `gap_pct` (see `daily_gaps`) to every bar."""
    frame = _session_frame(bars)
    if frame.height == 0:
        return frame.with_columns(
            prev_close=pl.lit(None, dtype=pl.Float64), gap_pct=pl.lit(None, dtype=pl.Float64)
        )
    gaps = daily_gaps(frame, previous_close)
    row_day = frame.get_column("day_id") - 1  # day_id numbers days 1, 2, ... in frame order
    return frame.with_columns(
        prev_close=gaps.get_column("prev_close").gather(row_day),
        gap_pct=gaps.get_column("gap_pct").gather(row_day),
    )


def with_rvol(bars: pa.Table | pl.DataFrame, lookback_days: int = 10) -> pl.DataFrame:
    """Adds `cum_volume` (of the day so far) and `rvol` (see module docstring).

    Vectorized as-of lookups: rows are keyed (symbol, day position, time of day) in sorted
    order, so the same time on the day k days earlier is one `searchsorted` per k.
    """
    frame = _session_frame(bars)
    frame = frame.with_columns(cum_volume=pl.col("volume").cum_sum().over("day_id"))
    if frame.height == 0:
        return frame.with_columns(rvol=pl.lit(None, dtype=pl.Float64))
    symbol_code = frame.get_column("symbol").rank("dense").cast(pl.Int64).to_numpy()
    day_id = frame.get_column("day_id").to_numpy()
    first_day_of_symbol = np.maximum.accumulate(
        np.where(np.r_[True, symbol_code[1:] != symbol_code[:-1]], day_id, 0)
    )
    day_pos = day_id - first_day_of_symbol
    tod_s = frame.get_column("tod_s").to_numpy()
    cum = frame.get_column("cum_volume").to_numpy()
    span = int(day_pos.max()) + 1
    keys = (symbol_code * span + day_pos) * SECONDS_PER_DAY + tod_s
    total = np.zeros(frame.height)
    for lag in range(1, lookback_days + 1):
        target = day_pos - lag
        query = (symbol_code * span + target) * SECONDS_PER_DAY + tod_s
        idx = np.searchsorted(keys, query, side="right") - 1
        safe = np.maximum(idx, 0)
        found = (
            (idx >= 0) & (target >= 0) & (keys[safe] // SECONDS_PER_DAY == query // SECONDS_PER_DAY)
        )
        total += np.where(found, cum[safe], 0.0)
    previous_days = np.minimum(day_pos, lookback_days)
    with np.errstate(divide="ignore", invalid="ignore"):
        average = total / previous_days
        rvol = np.where((previous_days > 0) & (average > 0), cum / average, np.nan)
    return frame.with_columns(rvol=pl.Series("rvol", rvol).fill_nan(None))


def compute_indicators(
    bars: pa.Table | pl.DataFrame,
    config: IndicatorConfig | None = None,
    previous_close: Mapping[str, float] | None = None,
) -> pl.DataFrame:
    """Every indicator of this module on `bars`, one frame sorted by (symbol, ts).

    Columns added: session_date, tod_s, is_rth, is_premarket, day_id, vwap, ema_{fast}, ema_{slow},
    tr, atr_{period}, or_high, or_low, or_complete, pm_high, pm_low, prev_close, gap_pct,
    cum_volume, rvol.
    """
    cfg = config or IndicatorConfig()
    frame = to_frame(bars)
    if frame.height == 0:
        empty = {
            "vwap": pl.Float64,
            f"ema_{cfg.ema_fast}": pl.Float64,
            f"ema_{cfg.ema_slow}": pl.Float64,
            "tr": pl.Float64,
            f"atr_{cfg.atr_period}": pl.Float64,
            "or_high": pl.Float64,
            "or_low": pl.Float64,
            "or_complete": pl.Boolean,
            "pm_high": pl.Float64,
            "pm_low": pl.Float64,
            "prev_close": pl.Float64,
            "gap_pct": pl.Float64,
            "cum_volume": pl.Float64,
            "rvol": pl.Float64,
        }
        return frame.with_columns(pl.lit(None, dtype=t).alias(n) for n, t in empty.items())
    frame = with_vwap(frame)
    frame = with_ema(frame, cfg.ema_fast)
    if cfg.ema_slow != cfg.ema_fast:
        frame = with_ema(frame, cfg.ema_slow)
    frame = with_atr(frame, cfg.atr_period)
    frame = with_opening_range(frame, cfg.opening_range_minutes)
    frame = with_premarket_levels(frame)
    frame = with_gap(frame, previous_close)
    return with_rvol(frame, cfg.rvol_lookback_days)
