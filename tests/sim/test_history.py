"""History model (pure): sessions, bar counts, determinism, bars = aggregation of the tape."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from ibdesk.calendar import NS, parse_clock, xnys
from ibdesk.domain.bars import BarUnit, DurationUnit
from ibdesk.errors import UserInputError
from ibdesk.sim.history import (
    BarRequest,
    BarSet,
    TapeModel,
    WhatToShow,
    build_bars,
    parse_bar_size,
    parse_duration,
)
from ibdesk.sim.universe import UNIVERSE, lookup

AFTER_CLOSE = "2025-07-30T16:30:00-04:00"
AFTER_EARLY_CLOSE = "2025-07-03T16:30:00-04:00"


def _bars(
    clock: str,
    duration: str,
    bar: str,
    what: str = "TRADES",
    rth: bool = True,
    seed: int = 7,
    symbol: str = "TSLA",
) -> tuple[BarSet, TapeModel]:
    cal = xnys()
    now = parse_clock(clock)
    model = TapeModel(seed, cal, cal.latest_started(now))
    ticker = lookup(symbol)
    assert ticker is not None
    request = BarRequest(now, parse_duration(duration), parse_bar_size(bar), WhatToShow(what), rth)
    return build_bars(cal, request, lambda s: model.tape(ticker, s)), model


def test_one_day_of_minute_bars_after_a_close_is_390() -> None:
    bars, _ = _bars(AFTER_CLOSE, "1 D", "1 min")
    assert len(bars) == 390


def test_one_day_of_minute_bars_on_an_early_close_is_210() -> None:
    bars, _ = _bars(AFTER_EARLY_CLOSE, "1 D", "1 min")
    assert len(bars) == 210


def test_a_week_skips_the_independence_day_holiday() -> None:
    bars, _ = _bars("2025-07-08T17:00:00-04:00", "1 W", "1 day")
    assert bars.day_label == ["20250702", "20250703", "20250707", "20250708"]


def test_history_is_deterministic_for_a_seed_and_clock() -> None:
    a, _ = _bars(AFTER_CLOSE, "2 D", "5 mins")
    b, _ = _bars(AFTER_CLOSE, "2 D", "5 mins")
    c, _ = _bars(AFTER_CLOSE, "2 D", "5 mins", seed=8)
    assert np.array_equal(a.close, b.close)
    assert np.array_equal(a.volume, b.volume)
    assert not np.array_equal(a.close, c.close)


def test_minute_bars_are_the_aggregation_of_the_trade_tape() -> None:
    bars, model = _bars(AFTER_CLOSE, "1 D", "1 min", rth=False)
    cal = xnys()
    ticker = lookup("TSLA")
    assert ticker is not None
    session = cal.session(cal.latest_started(parse_clock(AFTER_CLOSE)))
    tape = model.tape(ticker, session).between(session.ext_open_ns, parse_clock(AFTER_CLOSE))
    buckets: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for ts, px, sz in zip(
        tape.ts_ns.tolist(), tape.price_c.tolist(), tape.size.tolist(), strict=True
    ):
        buckets[ts // (60 * NS) * 60 * NS].append((px, sz))
    expected = sorted(buckets.items())
    assert len(expected) == len(bars)
    for i, (start, trades) in enumerate(expected):
        prices = [p for p, _ in trades]
        assert int(bars.start_ns[i]) == start
        assert (bars.open[i], bars.high[i], bars.low[i], bars.close[i]) == (
            prices[0] / 100,
            max(prices) / 100,
            min(prices) / 100,
            prices[-1] / 100,
        )
        assert bars.volume[i] == sum(s for _, s in trades)
        assert bars.count[i] == len(trades)


def test_daily_close_chains_to_the_reference_previous_close() -> None:
    bars, _ = _bars(AFTER_CLOSE, "2 D", "1 day")
    ticker = lookup("TSLA")
    assert ticker is not None
    assert bars.close[0] == pytest.approx(ticker.ref_price_usd)


def test_gappers_open_above_the_previous_close_with_more_volume() -> None:
    gappers = [t for t in UNIVERSE if t.gap_pct > 0]
    assert gappers
    assert all(1 <= t.ref_price_usd <= 30 for t in gappers)
    bars, _ = _bars(
        "2025-07-30T09:00:00-04:00", "1 D", "1 day", rth=False, symbol=gappers[0].symbol
    )
    assert bars.open[0] > gappers[0].ref_price_usd


def test_midpoint_and_bid_ask_bars_have_no_volume() -> None:
    mid, _ = _bars(AFTER_CLOSE, "1 D", "30 mins", "MIDPOINT")
    ba, _ = _bars(AFTER_CLOSE, "1 D", "30 mins", "BID_ASK")
    assert len(mid) == len(ba) == 13
    assert set(mid.volume.tolist()) == {-1}
    assert all(ba.high >= ba.low)


@pytest.mark.parametrize(
    ("text", "unit", "seconds", "intraday"),
    [
        ("1 secs", BarUnit.SECONDS, 1, True),
        ("5 mins", BarUnit.MINUTES, 300, True),
        ("1 hour", BarUnit.HOURS, 3600, True),
        ("1 day", BarUnit.DAYS, 86_400, False),
        ("1 week", BarUnit.WEEKS, 7 * 86_400, False),
        ("1 month", BarUnit.MONTHS, 31 * 86_400, False),
    ],
)
def test_bar_sizes_parse(text: str, unit: BarUnit, seconds: int, intraday: bool) -> None:
    size = parse_bar_size(text)
    assert (size.unit, size.seconds, size.is_intraday) == (unit, seconds, intraday)


@pytest.mark.parametrize("text", ["7 mins", "1 fortnight", ""])
def test_a_bad_bar_size_is_refused_in_the_words_of_error_162(text: str) -> None:
    with pytest.raises(ValueError, match="invalid bar size") as raised:
        parse_bar_size(text)
    assert str(raised.value) == f"invalid bar size {text!r}"
    assert not isinstance(raised.value, UserInputError)


def test_durations_parse_and_bad_ones_are_refused() -> None:
    assert parse_duration("60 S").unit is DurationUnit.SECONDS
    assert parse_duration("1 Y").count == 1
    with pytest.raises(ValueError, match="duration") as raised:
        parse_duration("3 X")
    assert str(raised.value) == "invalid duration '3 X'"


def test_seconds_duration_covers_only_that_span() -> None:
    bars, _ = _bars("2025-07-30T15:00:00-04:00", "120 S", "5 secs")
    assert 0 < len(bars) <= 24


def test_monthly_and_yearly_durations() -> None:
    monthly, _ = _bars(AFTER_CLOSE, "1 Y", "1 month")
    assert 12 <= len(monthly) <= 13
    daily, _ = _bars(AFTER_CLOSE, "1 M", "1 day")
    assert 20 <= len(daily) <= 23
