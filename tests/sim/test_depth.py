"""Market depth over the wire: IB row semantics, row limits, never crossed, caps, ticks."""

from __future__ import annotations

from typing import Any

import pytest
from ib_async import IB, Stock

from tests.sim.ibbook import RowBook

FAST = [{"events_per_s": 800.0}]


def _record(ib: IB) -> list[tuple[str, tuple[Any, ...]]]:
    """Every depth op and bid/ask tick in arrival order, as ib_async decoded them
    (ib_async routes plain depth messages through `updateMktDepthL2` too)."""
    events: list[tuple[str, tuple[Any, ...]]] = []
    wrapper = ib.wrapper
    l2, tick = wrapper.updateMktDepthL2, wrapper.priceSizeTick

    def on_l2(
        req_id: int,
        position: int,
        mm: str,
        op: int,
        side: int,
        price: float,
        size: float,
        smart: bool = False,
    ) -> None:
        events.append(("depth", (req_id, position, op, side, price, size, mm)))
        l2(req_id, position, mm, op, side, price, size, smart)

    def on_tick(req_id: int, tick_type: int, price: float, size: float) -> None:
        events.append(("tick", (req_id, tick_type, price, size)))
        tick(req_id, tick_type, price, size)

    wrapper.updateMktDepthL2 = on_l2  # type: ignore[method-assign]
    wrapper.priceSizeTick = on_tick  # type: ignore[method-assign]
    return events


@pytest.fixture
def tsla(ib: IB) -> Stock:
    contract = Stock("TSLA", "SMART", "USD")
    ib.qualifyContracts(contract)
    return contract


@pytest.mark.parametrize("sim", FAST, indirect=True)
@pytest.mark.parametrize("smart", [True, False])
def test_depth_stream_keeps_a_sorted_uncrossed_book_of_num_rows(
    sim: Any, ib: IB, tsla: Stock, smart: bool
) -> None:
    events = _record(ib)
    ib.reqMktDepth(tsla, numRows=5, isSmartDepth=smart)
    ib.sleep(1.5)
    sim.pause()
    ib.sleep(0.3)
    book = RowBook()
    ops = [e for kind, e in events if kind == "depth"]
    assert len(ops) > 100
    for _req, position, op, side, price, size, mm in ops:
        book.apply(position, op, side, price, size)
        book.check(5)
        assert bool(mm) == smart
    truth = sim.book("TSLA", 5)
    assert book.rows[1] == [(p, float(s)) for p, s in truth.bids]
    assert book.rows[0] == [(p, float(s)) for p, s in truth.asks]


@pytest.mark.parametrize("sim", FAST, indirect=True)
def test_top_of_depth_equals_bid_ask_ticks_at_the_same_instant(
    sim: Any, ib: IB, tsla: Stock
) -> None:
    events = _record(ib)
    ib.reqMktDepth(tsla, numRows=3, isSmartDepth=True)
    ib.sleep(0.2)
    ib.reqMktData(tsla)
    ib.sleep(1.5)
    book = RowBook()
    checked = 0
    for kind, event in events:
        if kind == "depth":
            _req, position, op, side, price, size, _mm = event
            book.apply(position, op, side, price, size)
        elif event[1] in (1, 2):
            side = 1 if event[1] == 1 else 0
            assert book.rows[side][0][0] == event[2]
            checked += 1
    assert checked > 10


@pytest.mark.parametrize("sim", [{"depth_cap": 2}], indirect=True)
def test_depth_requests_beyond_the_cap_get_309(ib: IB, errors: Any) -> None:
    contracts = [Stock(s, "SMART", "USD") for s in ("AAPL", "MSFT", "NVDA")]
    ib.qualifyContracts(*contracts)
    for contract in contracts:
        ib.reqMktDepth(contract, numRows=5)
    ib.sleep(0.3)
    assert errors.codes().count(309) == 1


@pytest.mark.parametrize("sim", FAST, indirect=True)
def test_full_subscription_deletes_its_last_row_before_an_insert(
    sim: Any, ib: IB, tsla: Stock
) -> None:
    events = _record(ib)
    ib.reqMktDepth(tsla, numRows=2, isSmartDepth=False)
    ib.sleep(1.5)
    sizes = {0: 0, 1: 0}
    for kind, event in events:
        if kind != "depth":
            continue
        _req, _position, op, side, *_ = event
        sizes[side] += {0: 1, 1: 0, 2: -1}[op]
        assert sizes[side] <= 2
