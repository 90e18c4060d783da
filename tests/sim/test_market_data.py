"""Market data ticks, RTVolume, snapshots and tick-by-tick with ib_async."""

from __future__ import annotations

import math
from typing import Any

import pytest
from ib_async import IB, Stock, TickByTickBidAsk, TickByTickMidPoint

FAST = [{"events_per_s": 600.0}]


@pytest.fixture
def tsla(ib: IB) -> Stock:
    contract = Stock("TSLA", "SMART", "USD")
    ib.qualifyContracts(contract)
    return contract


@pytest.mark.parametrize("sim", FAST, indirect=True)
def test_streaming_ticks_follow_the_book(sim: Any, ib: IB, tsla: Stock) -> None:
    ticker = ib.reqMktData(tsla, "233")
    ib.sleep(1.0)
    sim.pause()
    ib.sleep(0.3)
    truth = sim.book("TSLA", 1)
    assert (ticker.bid, ticker.ask) == (truth.bids[0][0], truth.asks[0][0])
    assert ticker.bid < ticker.ask
    assert ticker.close == 318.2  # the previous close is the universe's reference price
    tape = sim.tape("TSLA")
    assert ticker.last == tape.price_c[-1] / 100
    assert ticker.volume == tape.size.sum()
    assert ticker.rtVolume > 0
    assert not math.isnan(ticker.rtVolume)


def test_snapshot_returns_once_with_a_quote(ib: IB, tsla: Stock) -> None:
    (ticker,) = ib.reqTickers(tsla)
    assert 0 < ticker.bid < ticker.ask
    assert ticker.close == 318.2


@pytest.mark.parametrize("sim", FAST, indirect=True)
def test_tick_by_tick_all_last_matches_the_tape(sim: Any, ib: IB, tsla: Stock) -> None:
    ticker = ib.reqTickByTickData(tsla, "AllLast")
    seen: list[tuple[float, float]] = []
    ticker.updateEvent.connect(lambda t: seen.extend((x.price, x.size) for x in t.tickByTicks))
    ib.sleep(1.0)
    sim.pause()
    ib.sleep(0.3)
    tape = sim.tape("TSLA")
    live = list(zip((tape.price_c / 100).tolist(), tape.size.astype(float).tolist(), strict=True))
    assert seen
    assert seen == live[-len(seen) :]


@pytest.mark.parametrize("sim", FAST, indirect=True)
def test_tick_by_tick_bid_ask_follows_the_top_of_book(sim: Any, ib: IB, tsla: Stock) -> None:
    ticker = ib.reqTickByTickData(tsla, "BidAsk")
    ib.sleep(1.0)
    sim.pause()
    ib.sleep(0.3)
    last = ticker.tickByTicks[-1] if ticker.tickByTicks else None
    truth = sim.book("TSLA", 1)
    assert last is not None
    assert isinstance(last, TickByTickBidAsk)
    assert (last.bidPrice, last.askPrice) == (truth.bids[0][0], truth.asks[0][0])


@pytest.mark.parametrize("sim", FAST, indirect=True)
def test_tick_by_tick_midpoint_follows_the_top_of_book(sim: Any, ib: IB, tsla: Stock) -> None:
    ticker = ib.reqTickByTickData(tsla, "MidPoint")
    seen: list[float] = []
    ticker.updateEvent.connect(
        lambda t: seen.extend(
            x.midPoint for x in t.tickByTicks if isinstance(x, TickByTickMidPoint)
        )
    )
    ib.sleep(1.0)
    sim.pause()
    ib.sleep(0.3)
    truth = sim.book("TSLA", 1)
    assert seen
    assert seen[-1] == pytest.approx((truth.bids[0][0] + truth.asks[0][0]) / 2)
