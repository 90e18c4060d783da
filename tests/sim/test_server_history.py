"""Historical data over the wire with ib_async: counts, formats, consistency, updates."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import pytest
from ib_async import IB, Stock

from ibdesk.calendar import NS


@pytest.fixture
def tsla(ib: IB) -> Stock:
    contract = Stock("TSLA", "SMART", "USD")
    ib.qualifyContracts(contract)
    return contract


def test_contract_details_carry_the_real_con_id(ib: IB) -> None:
    details = ib.reqContractDetails(Stock("AAPL", "SMART", "USD"))
    assert [d.contract.conId for d in details if d.contract] == [265598]
    assert details[0].longName == "APPLE INC"


def test_one_day_of_rth_minute_bars_after_the_close_is_390(ib: IB, tsla: Stock) -> None:
    bars = ib.reqHistoricalData(tsla, "", "1 D", "1 min", "TRADES", True, 1)
    assert len(bars) == 390
    first = bars[0].date
    assert isinstance(first, dt.datetime)
    assert first == dt.datetime(2025, 7, 30, 9, 30, tzinfo=first.tzinfo)


@pytest.mark.parametrize("sim", [{"clock": "2025-07-03T17:30:00-04:00"}], indirect=True)
def test_early_close_day_has_210_minute_bars(ib: IB, tsla: Stock) -> None:
    assert len(ib.reqHistoricalData(tsla, "", "1 D", "1 min", "TRADES", True, 1)) == 210


def test_format_date_2_gives_utc_epoch_bars(ib: IB, tsla: Stock) -> None:
    bars = ib.reqHistoricalData(tsla, "", "1 D", "1 hour", "TRADES", True, 2)
    assert bars[0].date == dt.datetime(2025, 7, 30, 13, 30, tzinfo=dt.UTC)


def test_daily_bars_use_plain_dates(ib: IB, tsla: Stock) -> None:
    bars = ib.reqHistoricalData(tsla, "", "1 M", "1 day", "MIDPOINT", True, 1)
    assert bars[-1].date == dt.date(2025, 7, 30)


def test_a_week_of_minute_bars_with_extended_hours(ib: IB, tsla: Stock) -> None:
    bars = ib.reqHistoricalData(tsla, "", "1 W", "1 min", "BID_ASK", False, 2)
    assert len(bars) == 4 * 960 + 750


def test_wire_bars_equal_the_aggregation_of_the_ground_truth_tape(
    sim: Any, ib: IB, tsla: Stock
) -> None:
    ib.reqMktData(tsla)
    ib.sleep(0.5)  # some live trades join the history
    sim.pause()
    tape = sim.tape("TSLA")
    bars = ib.reqHistoricalData(tsla, "", "1 D", "1 min", "TRADES", False, 2)
    buckets: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for ts, px, sz in zip(
        tape.ts_ns.tolist(), tape.price_c.tolist(), tape.size.tolist(), strict=True
    ):
        buckets[ts // (60 * NS) * 60].append((px, sz))
    expected = sorted(buckets.items())
    starts = [b.date.timestamp() for b in bars if isinstance(b.date, dt.datetime)]
    assert starts == [start for start, _ in expected]
    for bar, (_, trades) in zip(bars, expected, strict=True):
        assert bar.close == trades[-1][0] / 100
        assert bar.high == max(p for p, _ in trades) / 100
        assert bar.volume == sum(s for _, s in trades)


@pytest.mark.parametrize("sim", [{"events_per_s": 400.0}], indirect=True)
def test_keep_up_to_date_sends_bar_updates(sim: Any, ib: IB, tsla: Stock) -> None:
    bars = ib.reqHistoricalData(tsla, "", "1 D", "1 min", "TRADES", False, 1, keepUpToDate=True)
    updates: list[Any] = []
    bars.updateEvent += lambda b, has_new_bar: updates.append(b[-1])
    for _ in range(60):
        if updates:
            break
        ib.sleep(0.1)
    assert updates
    ib.cancelHistoricalData(bars)


def test_invalid_bar_size_gets_an_error(ib: IB, tsla: Stock, errors: Any) -> None:
    assert list(ib.reqHistoricalData(tsla, "", "1 D", "7 mins", "TRADES", True, 1)) == []
    assert 162 in errors.codes()
    assert (
        162,
        "Historical Market Data Service error message:invalid bar size '7 mins'",
    ) in [(code, message) for _, code, message in errors.items]


def test_invalid_duration_gets_the_same_error_162(ib: IB, tsla: Stock, errors: Any) -> None:
    assert list(ib.reqHistoricalData(tsla, "", "3 X", "1 min", "TRADES", True, 1)) == []
    assert (
        162,
        "Historical Market Data Service error message:invalid duration '3 X'",
    ) in [(code, message) for _, code, message in errors.items]
