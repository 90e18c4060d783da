"""Orders against the simulated book, with ib_async."""

from __future__ import annotations

from typing import Any

import pytest
from ib_async import (
    IB,
    LimitOrder,
    MarketOrder,
    Order,
    Stock,
    StopLimitOrder,
    StopOrder,
    Trade,
)

FAST = [{"events_per_s": 300.0}]


@pytest.fixture
def tsla(ib: IB) -> Stock:
    contract = Stock("TSLA", "SMART", "USD")
    ib.qualifyContracts(contract)
    return contract


def _wait(ib: IB, trade: Trade, status: str, timeout_s: float = 5.0) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if trade.orderStatus.status == status:
            return
        ib.sleep(0.05)
    raise AssertionError(f"{trade.orderStatus.status} != {status}")


def test_market_order_walks_the_book_in_partial_fills(sim: Any, ib: IB, tsla: Stock) -> None:
    truth = sim.book("TSLA", 3)
    quantity = truth.asks[0][1] + truth.asks[1][1] + 1
    trade = ib.placeOrder(tsla, MarketOrder("BUY", quantity))
    _wait(ib, trade, "Filled")
    assert [f.execution.price for f in trade.fills] == [p for p, _ in truth.asks]
    assert sum(f.execution.shares for f in trade.fills) == quantity
    assert all(f.commissionReport.commission >= 1.0 for f in trade.fills)
    ib.sleep(0.2)
    assert [(p.contract.symbol, p.position) for p in ib.positions()] == [("TSLA", quantity)]


def test_limit_order_rests_then_cancel(ib: IB, tsla: Stock, sim: Any) -> None:
    bid = sim.book("TSLA", 1).bids[0][0]
    trade = ib.placeOrder(tsla, LimitOrder("BUY", 100, round(bid - 5, 2)))
    _wait(ib, trade, "Submitted")
    ib.cancelOrder(trade.order)
    _wait(ib, trade, "Cancelled")
    assert trade.fills == []


def test_marketable_limit_fills_at_or_better_than_its_price(ib: IB, tsla: Stock, sim: Any) -> None:
    ask = sim.book("TSLA", 1).asks[0][0]
    trade = ib.placeOrder(tsla, LimitOrder("BUY", 10, ask))
    _wait(ib, trade, "Filled")
    assert all(f.execution.price <= ask for f in trade.fills)


def test_stop_orders_trigger_on_the_last_price(ib: IB, tsla: Stock, sim: Any) -> None:
    last = sim.tape("TSLA").price_c[-1] / 100
    stop = ib.placeOrder(tsla, StopOrder("SELL", 10, round(last + 1, 2)))
    stop_limit = ib.placeOrder(
        tsla, StopLimitOrder("BUY", 10, round(last + 5, 2), round(last - 1, 2))
    )
    far = ib.placeOrder(tsla, StopOrder("BUY", 10, round(last + 50, 2)))
    _wait(ib, stop, "Filled")
    _wait(ib, stop_limit, "Filled")
    assert far.orderStatus.status == "Submitted"


@pytest.mark.parametrize("sim", FAST, indirect=True)
def test_bracket_children_wait_for_the_parent_and_cancel_each_other(
    ib: IB, tsla: Stock, sim: Any
) -> None:
    bid = sim.book("TSLA", 1).bids[0][0]
    parent, take_profit, stop_loss = ib.bracketOrder("BUY", 100, bid + 5, bid - 1, bid - 30)
    trades = [ib.placeOrder(tsla, o) for o in (parent, take_profit, stop_loss)]
    _wait(ib, trades[0], "Filled")
    _wait(ib, trades[1], "Filled")
    _wait(ib, trades[2], "Cancelled")


def test_untransmitted_parent_is_held_until_a_child_transmits(
    ib: IB, tsla: Stock, sim: Any
) -> None:
    ask = sim.book("TSLA", 1).asks[0][0]
    parent, take_profit, _stop = ib.bracketOrder("BUY", 10, ask + 1, ask + 100, ask - 100)
    held = ib.placeOrder(tsla, parent)
    ib.sleep(0.3)
    assert held.orderStatus.status == "PendingSubmit"
    ib.placeOrder(tsla, take_profit)  # transmit=False too: still held
    ib.sleep(0.3)
    assert held.orderStatus.status == "PendingSubmit"


def test_oca_group_cancels_the_others_on_a_fill(ib: IB, tsla: Stock, sim: Any) -> None:
    ask = sim.book("TSLA", 1).asks[0][0]
    orders: list[Order] = [LimitOrder("BUY", 10, ask - 20), LimitOrder("BUY", 10, ask)]
    oca = ib.oneCancelsAll(orders, "grp-1", 1)
    trades = [ib.placeOrder(tsla, o) for o in oca]
    _wait(ib, trades[1], "Filled")
    _wait(ib, trades[0], "Cancelled")


def test_account_summary_and_updates(ib: IB) -> None:
    tags = {v.tag: v for v in ib.accountSummary()}
    assert tags["NetLiquidation"].account == "SIM0001"
    assert float(tags["NetLiquidation"].value) == 100_000.0
    assert {v.tag for v in ib.accountValues()} >= {"NetLiquidation", "BuyingPower"}
