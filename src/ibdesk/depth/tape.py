"""A day's trades and what they yield against the book's mids: volume profile, trade
direction (own side, else Lee–Ready), effective / realized spreads, impact and Kyle's
lambda. Pure: a trades v1 frame and the book's arrays in, frozen values out; no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from ibdesk.depth.results import (
    BPS,
    NS_PER_S,
    AnalysisParams,
    BookStats,
    PriceImpact,
    VolumeProfile,
)
from ibdesk.depth.stats import FloatArray, IntArray, ValueGaps, fit_ols, vw_mean

IMPACT_HORIZONS_S = (5, 60)
VALUE_AREA_SHARE = 0.70


def _ts_ns(frame: pl.DataFrame) -> IntArray:
    series = frame.get_column("ts")
    if isinstance(series.dtype, pl.Datetime):
        series = series.dt.cast_time_unit("ns")
    return series.cast(pl.Int64).to_numpy().astype(np.int64, copy=False)


def _floats(frame: pl.DataFrame, name: str) -> FloatArray:
    """Column as float64 with NaN for null (missing level)."""
    series = frame.get_column(name)
    if series.dtype != pl.Float64:
        series = series.cast(pl.Float64)
    return series.to_numpy().astype(np.float64, copy=False)


def volume_profile(price: FloatArray, size: FloatArray, tick_usd: float) -> VolumeProfile:
    """Volume per price row, each trade binned to the nearest tick (round(price / tick)).

    VPOC is the price with the most volume (ties go to the lower price). The value area
    starts at the VPOC and grows until it holds 70% of the volume, each step adding the
    next two price rows above or the next two below, whichever holds more volume (ties go
    below; a side with one row left adds that row). Price rows are the traded ticks.
    """
    keep = ~(np.isnan(price) | np.isnan(size))
    price, size = price[keep], size[keep]
    if len(price) == 0:
        empty = np.zeros(0)
        return VolumeProfile(tick_usd, empty, empty, 0.0, None, None, None, 0.0)
    ticks = np.rint(price / tick_usd).astype(np.int64)
    uniq, inverse = np.unique(ticks, return_inverse=True)
    volumes = np.bincount(inverse, weights=size).astype(np.float64)
    prices = np.round(uniq * tick_usd, _tick_decimals(tick_usd)).astype(np.float64)
    total = float(volumes.sum())
    poc = int(np.argmax(volumes))
    low, high = _value_area(volumes, poc, VALUE_AREA_SHARE * total)
    return VolumeProfile(
        tick_usd=tick_usd,
        prices=prices,
        volumes=volumes,
        total_volume=total,
        vpoc=float(prices[poc]),
        vah=float(prices[high]),
        val=float(prices[low]),
        value_area_volume=float(volumes[low : high + 1].sum()),
    )


def _tick_decimals(tick_usd: float) -> int:
    """Decimals that print a multiple of the tick exactly (0.01 -> 2, 0.0001 -> 4)."""
    exponent = Decimal(repr(tick_usd)).normalize().as_tuple().exponent
    return max(-exponent, 0) if isinstance(exponent, int) else 10


def _value_area(volumes: FloatArray, poc: int, target: float) -> tuple[int, int]:
    """Index range [low, high] of the value area (a walk over price rows, not data rows)."""
    low = high = poc
    inside = float(volumes[poc])
    top = len(volumes) - 1
    while inside < target and (low > 0 or high < top):
        above = float(volumes[high + 1 : high + 3].sum()) if high < top else -1.0
        below = float(volumes[max(low - 2, 0) : low].sum()) if low > 0 else -1.0
        if below >= above:
            inside += below
            low = max(low - 2, 0)
        else:
            inside += above
            high = min(high + 2, top)
    return low, high


def trade_direction(price: FloatArray, side: npt.NDArray[Any], mid_before: FloatArray) -> IntArray:
    """+1 buyer-initiated, −1 seller-initiated, 0 unknown.

    The trades' own side (B/S) wins; side N is classified by Lee & Ready (1991), "Inferring
    trade direction from intraday data", J. Finance 46(2): above the prevailing mid is a buy,
    below a sell, at the mid the tick test (sign of the last non-zero price change).
    """
    side_code = (side == "B").astype(np.int64) - (side == "S").astype(np.int64)
    return direction_from_codes(price, side_code, mid_before)


def direction_from_codes(
    price: FloatArray, side_code: IntArray, mid_before: FloatArray
) -> IntArray:
    """`trade_direction` with the side as +1 (B), −1 (S), 0 (N or missing)."""
    direction = side_code.astype(np.int64, copy=True)
    unknown = direction == 0
    if not unknown.any():
        return direction
    with np.errstate(invalid="ignore"):
        quote = np.sign(price - mid_before)
    quote = np.nan_to_num(quote).astype(np.int64)
    change = np.sign(np.diff(price, prepend=np.nan))
    has_change = np.nan_to_num(change) != 0
    last_change = np.maximum.accumulate(np.where(has_change, np.arange(len(price)), -1))
    tick = np.where(last_change >= 0, change[np.maximum(last_change, 0)], 0.0).astype(np.int64)
    lee_ready = np.where(quote != 0, quote, tick)
    return np.where(unknown, lee_ready, direction)


def _asof_with_value(
    ts: IntArray, values: FloatArray, gaps: ValueGaps, at: IntArray, *, strict: bool
) -> FloatArray:
    """The last value (not NaN) at or before each time in `at` (strictly before with
    `strict`), found through `gaps` without copying the rows that have one."""
    idx = gaps.last_with_value(np.searchsorted(ts, at, side="left" if strict else "right") - 1)
    out = values[np.maximum(idx, 0)] if len(values) else np.full(len(at), np.nan)
    return np.where(idx >= 0, out, np.nan)


@dataclass(frozen=True, slots=True)
class TradeTape:
    """A day's trades sorted by time, as arrays, with what needs no book: the trades' own
    sides (+1 B, −1 S, 0 otherwise) and the volume profile."""

    ts: IntArray
    price: FloatArray
    size: FloatArray  # missing = 0
    side_code: IntArray
    profile: VolumeProfile

    @property
    def count(self) -> int:
        return len(self.ts)


def trade_tape(trades: pl.DataFrame | None, params: AnalysisParams) -> TradeTape:
    """Sort a trades v1 frame (None: no trades) and take what needs no book from it."""
    frame = _sorted_trades(trades if trades is not None else EMPTY_TRADES)
    price, size = _floats(frame, "price"), _floats(frame, "size")
    side = frame.get_column("side").cast(pl.String)
    # side codes in polars: comparing a numpy object array of strings costs per element
    side_code = ((side == "B").cast(pl.Int64) - (side == "S").cast(pl.Int64)).fill_null(0)
    return TradeTape(
        ts=_ts_ns(frame),
        price=price,
        size=np.nan_to_num(size),
        side_code=side_code.to_numpy().astype(np.int64, copy=False),
        profile=volume_profile(price, size, params.tick_usd),
    )


@dataclass(frozen=True, slots=True)
class TradeMarks:
    """What the trades take from the day's mids: each trade's direction and signed volume,
    and the volume-weighted effective / realized spreads and impact (bps)."""

    direction: IntArray
    signed_volume: FloatArray  # D·size per trade, 0 where unsigned
    effective_spread_bps: float | None
    realized_spread_bps: dict[int, float | None]
    impact_bps: dict[int, float | None]


def mark_trades(tape: TradeTape, ts_ns: IntArray, mid: FloatArray) -> TradeMarks:
    """Per trade with direction D, price P, M the mid of the last snapshot before it (rows
    sorted by `ts_ns`; NaN mid = no two-sided book) and M₊Δ the mid Δ later (Δ = 5 s,
    60 s): effective = 2·D·(P − M)/M, realized = 2·D·(P − M₊Δ)/M, impact = effective −
    realized, in bps, volume-weighted. Realized and impact use the trades whose M₊Δ is
    inside the day. Needs the rows only, so it can run beside the rest of the book's end."""
    ts, price, size = tape.ts, tape.price, tape.size
    gaps = ValueGaps.of(mid)
    mid_before = _asof_with_value(ts_ns, mid, gaps, ts, strict=True)
    direction = direction_from_codes(price, tape.side_code, mid_before)
    d = direction.astype(np.float64)
    usable = (direction != 0) & ~np.isnan(mid_before) & ~np.isnan(price)
    effective = 2.0 * d * (price - mid_before) / mid_before * BPS
    last_ts = int(ts_ns[-1]) if len(ts_ns) else 0
    realized: dict[int, float | None] = {}
    impact: dict[int, float | None] = {}
    for horizon_s in IMPACT_HORIZONS_S:
        later_ts = ts + horizon_s * NS_PER_S
        mid_later = _asof_with_value(ts_ns, mid, gaps, later_ts, strict=False)
        ok = usable & (later_ts <= last_ts) & ~np.isnan(mid_later)
        real = 2.0 * d * (price - mid_later) / mid_before * BPS
        realized[horizon_s] = vw_mean(real[ok], size[ok])
        impact[horizon_s] = vw_mean((effective - real)[ok], size[ok])
    return TradeMarks(
        direction=direction,
        signed_volume=np.where((direction != 0) & ~np.isnan(price), d * size, 0.0),
        effective_spread_bps=vw_mean(effective[usable], size[usable]),
        realized_spread_bps=realized,
        impact_bps=impact,
    )


def price_impact(
    tape: TradeTape, marks: TradeMarks, book: BookStats, params: AnalysisParams
) -> tuple[PriceImpact, FloatArray]:
    """Kyle's lambda and the spread decomposition; also returns the signed volume per window.

    Kyle (1985), "Continuous auctions and insider trading", Econometrica 53(6): lambda is the
    OLS slope of the mid change per window on the signed volume Σ D·size per window
    ($/share). The spreads are `mark_trades`'.
    """
    ids = book.window_ids
    if len(ids) > 1:
        cum = np.concatenate(([0.0], np.cumsum(marks.signed_volume)))
        at = np.searchsorted(tape.ts // params.window_ns, ids, side="right")
        signed_per_window = np.diff(cum[at])
    else:
        signed_per_window = np.zeros(0)
    kyle = fit_ols(signed_per_window, book.windows.mid_change)
    signed = marks.direction != 0
    result = PriceImpact(
        kyle_lambda=kyle.betas[0],
        kyle_r2=kyle.r2,
        n_windows=kyle.n,
        effective_spread_bps=marks.effective_spread_bps,
        realized_spread_bps=marks.realized_spread_bps,
        impact_bps=marks.impact_bps,
        trades_signed=int(signed.sum()),
        trades_lee_ready=int(((tape.side_code == 0) & signed).sum()),
    )
    return result, signed_per_window


def _sorted_trades(trades: pl.DataFrame) -> pl.DataFrame:
    frame = trades.select("ts", "price", "size", "side")
    if isinstance(frame.schema["ts"], pl.Datetime):
        frame = frame.with_columns(pl.col("ts").dt.cast_time_unit("ns"))
    return frame.sort("ts", maintain_order=True)


EMPTY_TRADES = pl.DataFrame(
    {"ts": [], "price": [], "size": [], "side": []},
    schema={"ts": pl.Int64, "price": pl.Float64, "size": pl.Float64, "side": pl.String},
)
