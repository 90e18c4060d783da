"""Signal rules against hand-computed small cases, plus properties on random bars."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ibdesk.signals.indicators import IndicatorConfig, compute_indicators
from ibdesk.signals.rules import (
    SIDE_OF,
    Side,
    Signal,
    SignalConfig,
    SignalKind,
    generate_signals,
    signals_from_indicators,
    signals_to_table,
)
from ibdesk.store.schemas import bars_schema, signals_schema
from tests.signals.conftest import flat, make_bars, ny

K = SignalKind


def only(*kinds: SignalKind, **kwargs: object) -> SignalConfig:
    return SignalConfig(enabled=frozenset(kinds), **kwargs)  # type: ignore[arg-type]


SMALL_EMA = IndicatorConfig(ema_fast=2, ema_slow=3)


def minute(i: int, day: str = "2024-03-04", hour: int = 10) -> str:
    return f"{day} {hour:02d}:{i:02d}"


def test_ema_cross_up_then_down_by_hand() -> None:
    # alpha 2/3 and 1/2. Flat 10 for 4 bars, then 13: fast 12 > slow 11.5 (cross up);
    # then 7: fast 12 - 10/3 = 8.67 < slow 9.25 (cross down).
    closes = [10, 10, 10, 10, 13, 7]
    bars = make_bars([flat(minute(i), c) for i, c in enumerate(closes)])
    signals = generate_signals(bars, only(K.EMA_CROSS_UP, K.EMA_CROSS_DOWN, indicators=SMALL_EMA))
    assert [(s.signal, s.side, s.price) for s in signals] == [
        (K.EMA_CROSS_UP, Side.BUY, 13.0),
        (K.EMA_CROSS_DOWN, Side.SELL, 7.0),
    ]
    assert signals[0].ts == ny(minute(5))  # bar 4 closes when bar 5 starts
    assert signals[0].reason == "EMA2 12.0 crossed above EMA3 11.5"
    assert signals[1].reason.startswith("EMA2 8.67 crossed below EMA3 9.25")


def test_ema_cross_during_warm_up_is_ignored() -> None:
    bars = make_bars([flat(minute(i), c) for i, c in enumerate([10, 13, 13, 13])])
    assert generate_signals(bars, only(K.EMA_CROSS_UP, indicators=SMALL_EMA)) == []


def test_vwap_loss_then_reclaim_by_hand() -> None:
    # Equal volumes and flat bars: VWAP is the running mean of closes.
    # closes 10, 12, 9, 12 -> VWAP 10, 11, 10.33, 10.75.
    bars = make_bars([flat(minute(i), c) for i, c in enumerate([10, 12, 9, 12])])
    signals = generate_signals(bars, only(K.VWAP_RECLAIM, K.VWAP_LOSS))
    assert [(s.signal, s.side, s.price) for s in signals] == [
        (K.VWAP_LOSS, Side.SELL, 9.0),
        (K.VWAP_RECLAIM, Side.BUY, 12.0),
    ]
    assert signals[0].reason == "close 9.0 lost VWAP 10.33 after a close above it"
    assert signals[1].reason == "close 12.0 reclaimed VWAP 10.75 after a close below it"


def test_vwap_signals_do_not_span_days() -> None:
    # Day 2's first bar closes above its own VWAP (typical 10) after day 1 ended below VWAP.
    day2 = (minute(0, "2024-03-05"), 12.0, 12.0, 6.0, 12.0, 100.0)
    bars = make_bars([flat(minute(0), 10), flat(minute(1), 12), flat(minute(2), 9), day2])
    assert [s.signal for s in generate_signals(bars, only(K.VWAP_RECLAIM, K.VWAP_LOSS))] == [
        K.VWAP_LOSS
    ]


def test_opening_range_breakout_and_breakdown_once_a_day() -> None:
    rows = [("2024-03-04 09:3" + str(i), 10, 11, 9, 10, 100) for i in range(5)]  # range 9-11
    rows += [
        flat("2024-03-04 09:35", 10.5),  # inside
        flat("2024-03-04 09:36", 11.5),  # breakout
        flat("2024-03-04 09:37", 12.0),  # already broken out today
        flat("2024-03-04 09:38", 8.5),  # breakdown
        flat("2024-03-04 09:39", 8.0),
    ]
    signals = generate_signals(make_bars(rows), only(K.ORB_BREAKOUT, K.ORB_BREAKDOWN))
    assert [(s.signal, s.price, s.ts) for s in signals] == [
        (K.ORB_BREAKOUT, 11.5, ny("2024-03-04 09:37")),
        (K.ORB_BREAKDOWN, 8.5, ny("2024-03-04 09:39")),
    ]
    assert signals[0].reason == "close 11.5 broke above the 5-min opening range high 11.0"


def test_no_breakout_inside_the_opening_range() -> None:
    rows = [flat("2024-03-04 09:30", 10), flat("2024-03-04 09:31", 15), flat("2024-03-04 09:32", 5)]
    assert generate_signals(make_bars(rows), only(K.ORB_BREAKOUT, K.ORB_BREAKDOWN)) == []


def gap_day_bars() -> list[tuple[str, float, float, float, float, float]]:
    return [
        flat("2024-03-04 09:30", 100, 1000),
        flat("2024-03-04 09:31", 100, 1000),  # previous close 100, cum volume 1000, 2000
        ("2024-03-05 08:00", 105, 106, 104, 105, 500),  # pre-market high 106
        ("2024-03-05 09:30", 106, 106, 105, 105.5, 3000),  # +6 % gap, rvol 3.5, below 106
        ("2024-03-05 09:31", 105.5, 107, 105.5, 107, 1000),  # rvol 4500/2000 = 2.25, breaks
        ("2024-03-05 09:32", 107, 108, 107, 108, 1000),  # already fired today
    ]


def test_gap_and_go_fires_on_the_break_of_the_premarket_high() -> None:
    signals = generate_signals(make_bars(gap_day_bars()), only(K.GAP_AND_GO))
    assert [(s.signal, s.side, s.price, s.ts) for s in signals] == [
        (K.GAP_AND_GO, Side.BUY, 107.0, ny("2024-03-05 09:32"))
    ]
    assert signals[0].reason.startswith("gap 6.0% >= 4%, RVOL ")
    assert signals[0].reason.endswith("close 107.0 broke the pre-market high 106.0")


@pytest.mark.parametrize("config", [{"gap_min_pct": 7.0}, {"rvol_min": 3.0}])
def test_gap_and_go_needs_gap_and_rvol(config: dict[str, float]) -> None:
    assert generate_signals(make_bars(gap_day_bars()), only(K.GAP_AND_GO, **config)) == []


def test_gap_and_go_needs_premarket_bars() -> None:
    rows = [r for r in gap_day_bars() if not r[0].endswith("08:00")]
    assert generate_signals(make_bars(rows), only(K.GAP_AND_GO)) == []


def test_signals_are_rth_only_unless_configured() -> None:
    rows = [flat(f"2024-03-04 08:{i:02d}", c) for i, c in enumerate([10, 12, 9, 12])]
    assert generate_signals(make_bars(rows), only(K.VWAP_LOSS)) == []
    fired = generate_signals(make_bars(rows), only(K.VWAP_LOSS, rth_only=False))
    assert [s.signal for s in fired] == [K.VWAP_LOSS]


def test_explicit_bar_length_sets_the_signal_time() -> None:
    bars = make_bars([flat(minute(i), c) for i, c in enumerate([10, 12, 9])])
    (signal,) = generate_signals(bars, only(K.VWAP_LOSS), bar_s=300)
    assert signal.ts == ny(minute(2)) + timedelta(seconds=300)


def test_signals_to_table_uses_the_signals_schema() -> None:
    ts = datetime(2024, 3, 4, 14, 31, tzinfo=UTC)
    signal = Signal(ts, "AAPL", K.ORB_BREAKOUT, Side.BUY, 11.5, "why")
    table = signals_to_table([signal], {"source": "sim"})
    assert table.schema.equals(signals_schema({"source": "sim"}), check_metadata=True)
    assert table.to_pylist() == [
        {
            "ts": ts,
            "symbol": "AAPL",
            "signal": "orb_breakout",
            "side": "buy",
            "price": 11.5,
            "reason": "why",
        }
    ]
    assert signals_to_table([]).num_rows == 0


def random_bars(seed: int, days: int, symbols: list[str]) -> pa.Table:
    rng = np.random.default_rng(seed)
    tables = []
    for symbol in symbols:
        rows = []
        price = 50.0
        for day in range(days):
            start = datetime(2024, 3, 4 + day, 8, 0, tzinfo=ny("2024-03-04 00:00").tzinfo)
            for i in range(0, 8 * 60, 1 + int(rng.integers(0, 3))):
                o = price
                c = max(1.0, price + rng.normal(0, 0.3))
                rows.append(
                    (
                        (start + timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M"),
                        o,
                        max(o, c) + rng.uniform(0, 0.2),
                        min(o, c) - rng.uniform(0, 0.2),
                        c,
                        float(rng.integers(0, 5000)),
                    )
                )
                price = c
        tables.append(make_bars(rows, symbol))
    return pa.concat_tables(tables)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 3))
def test_random_bars_give_consistent_signal_records(seed: int, days: int) -> None:
    bars = random_bars(seed, days, ["AAA", "BBB"])
    signals = generate_signals(bars, SignalConfig(gap_min_pct=0.0, rvol_min=0.0), bar_s=60)
    frame = bars.to_pandas()
    closes = {
        (r.symbol, r.ts.to_pydatetime() + timedelta(seconds=60)): r.close
        for r in frame.itertuples()
    }
    per_day: dict[tuple[str, str, object], int] = {}
    for s in signals:
        assert s.side is SIDE_OF[s.signal]
        assert s.reason
        assert closes[(s.symbol, s.ts)] == s.price
        local = (s.ts - timedelta(seconds=60)).astimezone(ny("2024-03-04 00:00").tzinfo)
        assert (9, 30) <= (local.hour, local.minute) < (16, 0)
        day_key = (s.symbol, s.signal.value, local.date())
        per_day[day_key] = per_day.get(day_key, 0) + 1
    for (_, kind, _), count in per_day.items():
        if kind in {K.ORB_BREAKOUT, K.ORB_BREAKDOWN, K.GAP_AND_GO}:
            assert count == 1
    assert generate_signals(bars, SignalConfig(gap_min_pct=0.0, rvol_min=0.0), bar_s=60) == signals
    assert signals_to_table(signals).num_rows == len(signals)


def test_signals_from_an_arrow_table_in_the_bars_schema() -> None:
    bars = random_bars(1, 2, ["AAA"])
    assert bars.schema.equals(bars_schema())
    kinds = {s.signal for s in generate_signals(bars)}
    assert kinds <= set(SignalKind)


def test_signals_from_precomputed_indicators_match() -> None:
    bars = random_bars(3, 2, ["AAA"])
    config = SignalConfig(gap_min_pct=0.0, rvol_min=0.0)
    frame = compute_indicators(bars, config.indicators)
    assert signals_from_indicators(frame, config) == generate_signals(bars, config)
