"""Trading signals from bars and their indicators: each rule says why it fired, in words.

Pure: bars in (bars schema), `Signal` records out, and an Arrow table in the signals
schema for the store; nothing here places orders or reads files.

Rules (evaluated on bar closes; by default only on regular-hours bars):
- `ema_cross_up` / `ema_cross_down`: EMA fast (9) crosses above / below EMA slow (20):
  previous bar fast <= slow and now fast > slow (and the mirror). Only once both EMAs have
  seen `ema_slow` bars of the symbol, so the seed does not fire a cross.
- `vwap_reclaim` / `vwap_loss`: within one day, the previous close was below (above) VWAP
  and this close is above (below) it.
- `orb_breakout` / `orb_breakdown`: after the opening range (first 5 min of RTH) is
  complete, the first close of the day above its high (below its low).
- `gap_and_go`: the day gapped up at least `gap_min_pct` %, the bar's RVOL is at least
  `rvol_min`, and the bar closes above the pre-market high; first such bar of the day.

A signal's `ts` is the bar's close time (bar start + bar length), when it becomes known;
its `price` is that bar's close.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

import polars as pl
import pyarrow as pa

from ibdesk.signals.indicators import IndicatorConfig, compute_indicators
from ibdesk.store.schemas import signals_schema


class SignalKind(StrEnum):
    EMA_CROSS_UP = "ema_cross_up"
    EMA_CROSS_DOWN = "ema_cross_down"
    VWAP_RECLAIM = "vwap_reclaim"
    VWAP_LOSS = "vwap_loss"
    ORB_BREAKOUT = "orb_breakout"
    ORB_BREAKDOWN = "orb_breakdown"
    GAP_AND_GO = "gap_and_go"


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


SIDE_OF: dict[SignalKind, Side] = {
    SignalKind.EMA_CROSS_UP: Side.BUY,
    SignalKind.EMA_CROSS_DOWN: Side.SELL,
    SignalKind.VWAP_RECLAIM: Side.BUY,
    SignalKind.VWAP_LOSS: Side.SELL,
    SignalKind.ORB_BREAKOUT: Side.BUY,
    SignalKind.ORB_BREAKDOWN: Side.SELL,
    SignalKind.GAP_AND_GO: Side.BUY,
}


@dataclass(frozen=True, slots=True)
class SignalConfig:
    """Signal thresholds and the indicator periods they use.

    Defaults: EMA 9/20, ATR 14, 5-minute opening range, RVOL over 10 days, gap-and-go
    needs a gap of at least 4 % and RVOL of at least 2; signals on RTH bars only.
    """

    indicators: IndicatorConfig = field(default_factory=IndicatorConfig)
    gap_min_pct: float = 4.0
    rvol_min: float = 2.0
    rth_only: bool = True
    enabled: frozenset[SignalKind] = frozenset(SignalKind)


@dataclass(frozen=True, slots=True)
class Signal:
    """One signal record: `{ts, symbol, signal, side, price, reason}` (the signals schema)."""

    ts: datetime
    symbol: str
    signal: SignalKind
    side: Side
    price: float
    reason: str


def infer_bar_s(frame: pl.DataFrame) -> int:
    """Bar length in seconds: the smallest positive step between a symbol's bars (0 if none)."""
    if frame.height < 2:
        return 0
    steps = frame.select(
        (pl.col("ts").diff().over("symbol").dt.total_seconds()).alias("step")
    ).get_column("step")
    positive = steps.filter(steps > 0)
    return int(positive.min()) if positive.len() else 0  # type: ignore[arg-type]


def _first_of_day(condition: pl.Expr) -> pl.Expr:
    return condition & (condition.cast(pl.Int32).cum_sum().over("day_id") == 1)


def _fmt(expr: pl.Expr) -> pl.Expr:
    return expr.round(2).cast(pl.String)


def signal_frame(frame: pl.DataFrame, config: SignalConfig) -> pl.DataFrame:
    """Rows (symbol, ts, signal, price, reason) of every rule that fired on `frame`.

    `frame` is the output of `compute_indicators` with the same indicator config.
    """
    ind = config.indicators
    fast, slow = f"ema_{ind.ema_fast}", f"ema_{ind.ema_slow}"
    prev = {c: pl.col(c).shift(1).over("symbol") for c in ("close", "vwap", fast, slow)}
    same_day = pl.col("session_date") == pl.col("session_date").shift(1).over("symbol")
    warm = pl.int_range(pl.len()).over("symbol") >= max(ind.ema_fast, ind.ema_slow)
    eligible = pl.col("is_rth") if config.rth_only else pl.lit(True)
    close = pl.col("close")

    conditions: dict[SignalKind, tuple[pl.Expr, pl.Expr]] = {
        SignalKind.EMA_CROSS_UP: (
            warm & (prev[fast] <= prev[slow]) & (pl.col(fast) > pl.col(slow)),
            pl.concat_str(
                pl.lit(f"EMA{ind.ema_fast} "),
                _fmt(pl.col(fast)),
                pl.lit(f" crossed above EMA{ind.ema_slow} "),
                _fmt(pl.col(slow)),
            ),
        ),
        SignalKind.EMA_CROSS_DOWN: (
            warm & (prev[fast] >= prev[slow]) & (pl.col(fast) < pl.col(slow)),
            pl.concat_str(
                pl.lit(f"EMA{ind.ema_fast} "),
                _fmt(pl.col(fast)),
                pl.lit(f" crossed below EMA{ind.ema_slow} "),
                _fmt(pl.col(slow)),
            ),
        ),
        SignalKind.VWAP_RECLAIM: (
            same_day & (prev["close"] < prev["vwap"]) & (close > pl.col("vwap")),
            pl.concat_str(
                pl.lit("close "),
                _fmt(close),
                pl.lit(" reclaimed VWAP "),
                _fmt(pl.col("vwap")),
                pl.lit(" after a close below it"),
            ),
        ),
        SignalKind.VWAP_LOSS: (
            same_day & (prev["close"] > prev["vwap"]) & (close < pl.col("vwap")),
            pl.concat_str(
                pl.lit("close "),
                _fmt(close),
                pl.lit(" lost VWAP "),
                _fmt(pl.col("vwap")),
                pl.lit(" after a close above it"),
            ),
        ),
        SignalKind.ORB_BREAKOUT: (
            _first_of_day(pl.col("or_complete") & (close > pl.col("or_high"))),
            pl.concat_str(
                pl.lit("close "),
                _fmt(close),
                pl.lit(f" broke above the {ind.opening_range_minutes}-min opening range high "),
                _fmt(pl.col("or_high")),
            ),
        ),
        SignalKind.ORB_BREAKDOWN: (
            _first_of_day(pl.col("or_complete") & (close < pl.col("or_low"))),
            pl.concat_str(
                pl.lit("close "),
                _fmt(close),
                pl.lit(f" broke below the {ind.opening_range_minutes}-min opening range low "),
                _fmt(pl.col("or_low")),
            ),
        ),
        SignalKind.GAP_AND_GO: (
            _first_of_day(
                pl.col("is_rth")
                & (pl.col("gap_pct") >= config.gap_min_pct)
                & (pl.col("rvol") >= config.rvol_min)
                & (close > pl.col("pm_high"))
            ),
            pl.concat_str(
                pl.lit("gap "),
                pl.col("gap_pct").round(1).cast(pl.String),
                pl.lit(f"% >= {config.gap_min_pct:g}%, RVOL "),
                pl.col("rvol").round(1).cast(pl.String),
                pl.lit(f" >= {config.rvol_min:g}, close "),
                _fmt(close),
                pl.lit(" broke the pre-market high "),
                _fmt(pl.col("pm_high")),
            ),
        ),
    }
    parts: list[pl.DataFrame] = []
    for kind in SignalKind:
        if kind not in config.enabled:
            continue
        condition, reason = conditions[kind]
        fired = frame.filter((condition & eligible).fill_null(False)).select(
            "symbol",
            "ts",
            pl.lit(kind.value).alias("signal"),
            pl.col("close").alias("price"),
            reason.alias("reason"),
        )
        parts.append(fired)
    if not parts:
        return pl.DataFrame(
            schema={
                "symbol": pl.String,
                "ts": frame.schema["ts"],
                "signal": pl.String,
                "price": pl.Float64,
                "reason": pl.String,
            }
        )
    return pl.concat(parts).sort(["ts", "symbol", "signal"])


def generate_signals(
    bars: pa.Table | pl.DataFrame,
    config: SignalConfig | None = None,
    *,
    bar_s: int | None = None,
    previous_close: Mapping[str, float] | None = None,
) -> list[Signal]:
    """All signals the rules give on `bars`, ordered by (ts, symbol, signal).

    `bar_s` (bar length, for the signal's close-time `ts`) is inferred from the bars when
    not given; `previous_close` maps symbol -> close before the first day (for the gap).
    """
    cfg = config or SignalConfig()
    frame = compute_indicators(bars, cfg.indicators, previous_close)
    return signals_from_indicators(frame, cfg, bar_s=bar_s)


def signals_from_indicators(
    frame: pl.DataFrame, config: SignalConfig | None = None, *, bar_s: int | None = None
) -> list[Signal]:
    """Like `generate_signals`, on a frame `compute_indicators` already made (same config).

    Lets a caller that also shows the indicators compute them once.
    """
    cfg = config or SignalConfig()
    step_s = infer_bar_s(frame) if bar_s is None else bar_s
    fired = signal_frame(frame, cfg)
    offset = timedelta(seconds=step_s)
    return [
        Signal(
            ts=row["ts"] + offset,
            symbol=row["symbol"],
            signal=SignalKind(row["signal"]),
            side=SIDE_OF[SignalKind(row["signal"])],
            price=float(row["price"]),
            reason=row["reason"],
        )
        for row in fired.iter_rows(named=True)
    ]


def signals_to_table(
    signals: Iterable[Signal], metadata: Mapping[str, str] | None = None
) -> pa.Table:
    """Signal records as an Arrow table in the signals schema (v1), ready for the store."""
    rows = list(signals)
    schema = signals_schema(metadata)
    return pa.table(
        {
            "ts": pa.array([s.ts for s in rows], type=schema.field("ts").type),
            "symbol": pa.array([s.symbol for s in rows], type=pa.string()),
            "signal": pa.array([s.signal.value for s in rows], type=pa.string()),
            "side": pa.array([s.side.value for s in rows], type=pa.string()),
            "price": pa.array([s.price for s in rows], type=pa.float64()),
            "reason": pa.array([s.reason for s in rows], type=pa.string()),
        },
        schema=schema,
    )
