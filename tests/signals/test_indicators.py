"""Indicators against hand-computed small cases (values worked out in the comments)."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from ibdesk.signals.indicators import (
    IndicatorConfig,
    compute_indicators,
    daily_gaps,
    previous_closes,
    to_frame,
    with_atr,
    with_ema,
    with_gap,
    with_opening_range,
    with_premarket_levels,
    with_rvol,
    with_vwap,
)
from tests.signals.conftest import flat, make_bars


def col(frame: pl.DataFrame, name: str) -> list[float | None]:
    return frame.get_column(name).to_list()


def test_session_columns_use_new_york_time_across_dst() -> None:
    # 2024-03-08 is EST (UTC-5), 2024-03-11 is EDT (UTC-4): both 09:30 bars are RTH.
    frame = to_frame(
        make_bars(
            [
                flat("2024-03-08 09:30", 1),
                flat("2024-03-11 09:30", 1),
                flat("2024-03-11 09:29", 1),
                flat("2024-03-11 16:00", 1),
            ]
        )
    )
    assert col(frame, "tod_s") == [34200, 34140, 34200, 57600]
    assert col(frame, "is_rth") == [True, False, True, False]
    assert col(frame, "is_premarket") == [False, True, False, False]


def test_vwap_is_anchored_at_each_day() -> None:
    bars = make_bars(
        [
            ("2024-03-04 09:30", 10, 11, 9, 10, 100),  # typical 10
            ("2024-03-04 09:31", 11, 12, 10, 11, 300),  # (1000 + 3300) / 400 = 10.75
            ("2024-03-04 09:32", 12, 13, 11, 12, 0),  # no volume: unchanged 10.75
            ("2024-03-05 09:30", 20, 21, 19, 20, 50),  # new day: 20
        ]
    )
    assert col(with_vwap(bars), "vwap") == pytest.approx([10.0, 10.75, 10.75, 20.0])


def test_vwap_is_null_before_any_volume() -> None:
    bars = make_bars([flat("2024-03-04 09:30", 10, 0), flat("2024-03-04 09:31", 11, 10)])
    assert col(with_vwap(bars), "vwap") == [None, 11.0]


def test_ema_recursion_seeded_with_first_close() -> None:
    # span 3 -> alpha 0.5: 10, 11, 11, 13.
    bars = make_bars([flat(f"2024-03-04 09:3{i}", c) for i, c in enumerate([10, 12, 11, 15])])
    assert col(with_ema(bars, 3), "ema_3") == pytest.approx([10, 11, 11, 13])


def test_ema_is_per_symbol() -> None:
    a = make_bars([flat("2024-03-04 09:30", 10), flat("2024-03-04 09:31", 12)], "AAA")
    b = make_bars([flat("2024-03-04 09:30", 50), flat("2024-03-04 09:31", 50)], "BBB")
    frame = with_ema(pl.concat([pl.DataFrame(pl.from_arrow(b)), pl.DataFrame(pl.from_arrow(a))]), 3)
    assert col(frame, "symbol") == ["AAA", "AAA", "BBB", "BBB"]
    assert col(frame, "ema_3") == pytest.approx([10, 11, 50, 50])


def test_atr_wilder_by_hand() -> None:
    # TR: 2, 2, 1.5, 3.5 (gap up from 11.5), 2.5 (low 12 vs close 14.5).
    # ATR3: mean(2, 2, 1.5) = 11/6, then (11/6*2 + 3.5)/3 = 43/18, then (43/18*2 + 2.5)/3 = 131/54.
    bars = make_bars(
        [
            ("2024-03-04 09:30", 9, 10, 8, 9, 1),
            ("2024-03-04 09:31", 9, 11, 9, 10.5, 1),
            ("2024-03-04 09:32", 11, 12, 11, 11.5, 1),
            ("2024-03-04 09:33", 14, 15, 14, 14.5, 1),
            ("2024-03-04 09:34", 14, 14, 12, 12, 1),
        ]
    )
    frame = with_atr(bars, 3)
    assert col(frame, "tr") == pytest.approx([2, 2, 1.5, 3.5, 2.5])
    atr = col(frame, "atr_3")
    assert atr[:2] == [None, None]
    assert atr[2:] == pytest.approx([11 / 6, 43 / 18, 131 / 54])


def test_atr_is_null_with_fewer_bars_than_the_period() -> None:
    bars = make_bars([flat("2024-03-04 09:30", 10), flat("2024-03-04 09:31", 11)])
    assert col(with_atr(bars, 14), "atr_14") == [None, None]


def test_opening_range_is_first_five_minutes_of_rth() -> None:
    rows = [("2024-03-04 09:29", 10, 30, 1, 10, 1)]  # pre-market: outside the range
    rows += [("2024-03-04 09:3" + str(i), 10, 10 + i, 10 - i, 10, 1) for i in range(5)]
    rows += [("2024-03-04 09:35", 10, 50, 1, 10, 1), ("2024-03-04 09:36", 10, 10, 10, 10, 1)]
    frame = with_opening_range(make_bars(rows))
    assert set(col(frame, "or_high")) == {14.0}
    assert set(col(frame, "or_low")) == {6.0}
    assert col(frame, "or_complete") == [False, False, False, False, False, False, True, True]


def test_premarket_levels_and_none_without_premarket_bars() -> None:
    bars = make_bars(
        [
            ("2024-03-04 04:00", 10, 11, 9.5, 10, 1),
            ("2024-03-04 09:29", 10, 12, 10, 11, 1),
            ("2024-03-04 09:30", 10, 40, 5, 11, 1),  # RTH: not pre-market
            flat("2024-03-05 09:30", 20),
        ]
    )
    frame = with_premarket_levels(bars)
    assert col(frame, "pm_high") == [12, 12, 12, None]
    assert col(frame, "pm_low") == [9.5, 9.5, 9.5, None]


def test_gap_from_previous_rth_close() -> None:
    bars = make_bars(
        [
            ("2024-03-04 09:30", 90, 91, 89, 95, 1),
            ("2024-03-04 15:59", 99, 100, 99, 100, 1),  # last RTH close: 100
            ("2024-03-04 16:30", 999, 999, 999, 999, 1),  # after hours: ignored
            ("2024-03-05 08:00", 103, 103, 103, 103, 1),  # pre-market open: ignored
            ("2024-03-05 09:30", 105, 106, 104, 105, 1),  # first RTH open: 105 -> +5 %
        ]
    )
    gaps = daily_gaps(bars, {"AAPL": 80.0})
    assert col(gaps, "prev_close") == [80.0, 100.0]
    assert col(gaps, "gap_pct") == pytest.approx([12.5, 5.0])
    assert col(with_gap(bars), "gap_pct")[3:] == pytest.approx([5.0, 5.0])
    assert col(with_gap(bars), "gap_pct")[0] is None


def test_rvol_against_previous_days_at_the_same_time() -> None:
    # cum volume: day1 100, 400; day2 100, 200; day3 400, 600, 700.
    bars = make_bars(
        [
            flat("2024-03-04 09:30", 10, 100),
            flat("2024-03-04 09:31", 10, 300),
            flat("2024-03-05 09:30", 10, 100),
            flat("2024-03-05 09:31", 10, 100),
            flat("2024-03-06 09:30", 10, 400),
            flat("2024-03-06 09:31", 10, 200),
            flat("2024-03-06 09:32", 10, 100),  # no 09:32 bar before: as of 09:31 (avg 300)
        ]
    )
    rvol = col(with_rvol(bars, lookback_days=10), "rvol")
    assert rvol[:2] == [None, None]
    assert rvol[2:] == pytest.approx([1.0, 0.5, 4.0, 2.0, 700 / 300])
    assert col(with_rvol(bars, lookback_days=1), "rvol")[4:] == pytest.approx([4.0, 3.0, 3.5])


def test_rvol_counts_a_previous_day_without_bars_yet_as_zero_volume() -> None:
    bars = make_bars(
        [
            flat("2024-03-04 09:31", 10, 100),  # day1 starts later: cum at 09:30 is 0
            flat("2024-03-05 09:30", 10, 50),
            flat("2024-03-05 09:31", 10, 50),
        ]
    )
    assert col(with_rvol(bars), "rvol") == [None, None, 1.0]


def test_compute_indicators_has_every_column_for_empty_input() -> None:
    frame = compute_indicators(make_bars([]))
    assert frame.height == 0
    for name in ("vwap", "ema_9", "ema_20", "atr_14", "or_high", "pm_high", "gap_pct", "rvol"):
        assert name in frame.columns


def test_compute_indicators_uses_configured_periods() -> None:
    bars = make_bars([flat(f"2024-03-04 09:3{i}", 10 + i) for i in range(6)])
    frame = compute_indicators(bars, IndicatorConfig(ema_fast=2, ema_slow=4, atr_period=3))
    assert {"ema_2", "ema_4", "atr_3"} <= set(frame.columns)
    assert frame.height == 6


def test_indicator_config_rejects_nonsense_periods() -> None:
    with pytest.raises(ValueError, match="ema_fast"):
        IndicatorConfig(ema_fast=0)


def test_previous_closes_from_daily_bars() -> None:
    daily = make_bars(
        [
            flat("2024-03-01 00:00", 98),  # New York midnight stamp (05:00 UTC)
            flat("2024-03-04 00:00", 100),
            flat("2024-03-05 00:00", 105),  # the session itself: not before it
        ]
    )
    assert previous_closes(daily, date(2024, 3, 5)) == {"AAPL": 100.0}
    assert previous_closes(daily, date(2024, 3, 1)) == {}
    assert previous_closes(make_bars([]), date(2024, 3, 5)) == {}
