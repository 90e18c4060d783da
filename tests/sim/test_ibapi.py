"""The official IB API client (`ibapi`, strict parser) against the sim."""

# ruff: noqa: N803  (EWrapper callbacks keep ibapi's camelCase parameter names)

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from ibapi.client import EClient
from ibapi.commission_and_fees_report import CommissionAndFeesReport
from ibapi.common import BarData, TickerId
from ibapi.contract import Contract, ContractDetails
from ibapi.execution import Execution
from ibapi.order import Order
from ibapi.order_cancel import OrderCancel
from ibapi.order_state import OrderState
from ibapi.wrapper import EWrapper

INFO_CODES = {2104, 2106, 2158}


class App(EWrapper, EClient):
    """Collects what the sim sends; `events` are set when each answer is complete."""

    def __init__(self) -> None:
        EWrapper.__init__(self)
        EClient.__init__(self, self)
        self.ready = threading.Event()
        self.details_done = threading.Event()
        self.bars_done = threading.Event()
        self.depth_seen = threading.Event()
        self.accounts = ""
        self.details: list[ContractDetails] = []
        self.bars: list[BarData] = []
        self.depth: list[tuple[int, str, int, int, float, Decimal]] = []
        self.errors: list[tuple[int, int, str]] = []
        self.next_order_id = 0
        self.open_orders: dict[int, tuple[Contract, Order, OrderState]] = {}
        self.statuses: list[tuple[int, str, Decimal, Decimal, float]] = []
        self.executions: list[tuple[int, Execution]] = []
        self.commissions: list[CommissionAndFeesReport] = []
        self.positions: dict[str, Decimal] = {}
        self.summary: dict[str, str] = {}
        self.filled = threading.Event()
        self.cancelled = threading.Event()
        self.open_orders_done = threading.Event()
        self.positions_done = threading.Event()
        self.summary_done = threading.Event()

    def nextValidId(self, orderId: int) -> None:
        self.next_order_id = orderId
        self.ready.set()

    def openOrder(
        self, orderId: int, contract: Contract, order: Order, orderState: OrderState
    ) -> None:
        self.open_orders[orderId] = (contract, order, orderState)

    def openOrderEnd(self) -> None:
        self.open_orders_done.set()

    def orderStatus(
        self,
        orderId: int,
        status: str,
        filled: Decimal,
        remaining: Decimal,
        avgFillPrice: float,
        permId: int,
        parentId: int,
        lastFillPrice: float,
        clientId: int,
        whyHeld: str,
        mktCapPrice: float,
    ) -> None:
        self.statuses.append((orderId, status, filled, remaining, avgFillPrice))
        if status == "Filled":
            self.filled.set()
        elif status == "Cancelled":
            self.cancelled.set()

    def execDetails(self, reqId: int, contract: Contract, execution: Execution) -> None:
        self.executions.append((reqId, execution))

    def commissionAndFeesReport(self, commissionAndFeesReport: CommissionAndFeesReport) -> None:
        self.commissions.append(commissionAndFeesReport)

    def position(self, account: str, contract: Contract, position: Decimal, avgCost: float) -> None:
        self.positions[contract.symbol] = position

    def positionEnd(self) -> None:
        self.positions_done.set()

    def accountSummary(self, reqId: int, account: str, tag: str, value: str, currency: str) -> None:
        self.summary[tag] = value

    def accountSummaryEnd(self, reqId: int) -> None:
        self.summary_done.set()

    def managedAccounts(self, accountsList: str) -> None:
        self.accounts = accountsList

    def error(
        self,
        reqId: TickerId,
        errorTime: int,
        errorCode: int,
        errorString: str,
        advancedOrderRejectJson: str = "",
    ) -> None:
        self.errors.append((reqId, errorCode, errorString))

    def contractDetails(self, reqId: int, contractDetails: ContractDetails) -> None:
        self.details.append(contractDetails)

    def contractDetailsEnd(self, reqId: int) -> None:
        self.details_done.set()

    def historicalData(self, reqId: int, bar: BarData) -> None:
        self.bars.append(bar)

    def historicalDataEnd(self, reqId: int, start: str, end: str) -> None:
        self.bars_done.set()

    def updateMktDepthL2(
        self,
        reqId: TickerId,
        position: int,
        marketMaker: str,
        operation: int,
        side: int,
        price: float,
        size: Decimal,
        isSmartDepth: bool,
    ) -> None:
        self.depth.append((position, marketMaker, operation, side, price, size))
        if len(self.depth) >= 20:
            self.depth_seen.set()


@pytest.fixture
def app(sim: Any, caplog: pytest.LogCaptureFixture) -> Any:
    """A connected official client; the test fails if ibapi logged any ERROR (bad fields)."""
    caplog.set_level(logging.INFO, logger="ibapi")
    client = App()
    client.connect(sim.host, sim.port, clientId=7)
    thread = threading.Thread(target=client.run, daemon=True)
    thread.start()
    assert client.ready.wait(10)
    yield client
    client.disconnect()
    thread.join(5)
    bad = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("ibapi") and r.levelno >= logging.ERROR
    ]
    assert not bad, bad[:3]


def _tsla() -> Contract:
    contract = Contract()
    contract.symbol = "TSLA"
    contract.secType = "STK"
    contract.exchange = "SMART"
    contract.currency = "USD"
    return contract


def test_official_client_connects_on_version_178(app: App) -> None:
    assert app.serverVersion() == 178
    assert app.accounts == "SIM0001"
    assert {code for _, code, _ in app.errors} <= INFO_CODES


def test_official_client_qualifies_a_contract(app: App) -> None:
    app.reqContractDetails(1, _tsla())
    assert app.details_done.wait(10)
    assert [d.contract.conId for d in app.details] == [76792991]
    assert app.details[0].contract.primaryExchange == "NASDAQ"
    assert {code for _, code, _ in app.errors} <= INFO_CODES


def test_official_client_receives_minute_bars(app: App) -> None:
    contract = _tsla()
    contract.conId = 76792991
    app.reqHistoricalData(2, contract, "", "1 D", "1 min", "TRADES", 1, 1, False, [])
    assert app.bars_done.wait(10)
    assert len(app.bars) == 390
    assert app.bars[0].date == "20250730 09:30:00 US/Eastern"
    assert {code for _, code, _ in app.errors} <= INFO_CODES


@pytest.mark.parametrize("sim", [{"events_per_s": 400.0}], indirect=True)
def test_official_client_receives_depth(app: App) -> None:
    contract = _tsla()
    contract.conId = 76792991
    app.reqMktDepth(3, contract, 5, True, [])
    assert app.depth_seen.wait(10)
    inserts = [d for d in app.depth[:10] if d[2] == 0]
    assert len(inserts) == 10
    assert {code for _, code, _ in app.errors} <= INFO_CODES


def _order(action: str, quantity: int, order_type: str, limit: float | None = None) -> Order:
    order = Order()
    order.action = action
    order.totalQuantity = Decimal(quantity)
    order.orderType = order_type
    if limit is not None:
        order.lmtPrice = limit
    return order


def _wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def _qualified_tsla(app: App) -> Contract:
    app.reqContractDetails(11, _tsla())
    assert app.details_done.wait(10)
    return app.details[0].contract


def test_official_client_market_order_fills_with_executions_and_commissions(app: App) -> None:
    contract = _qualified_tsla(app)
    order_id = app.next_order_id
    app.placeOrder(order_id, contract, _order("BUY", 300, "MKT"))
    assert app.filled.wait(10)
    mine = [s for s in app.statuses if s[0] == order_id]
    assert mine[-1][1] == "Filled"
    assert mine[-1][2] == Decimal(300)
    assert mine[-1][3] == Decimal(0)
    assert mine[-1][4] > 0
    assert app.open_orders[order_id][1].orderType == "MKT"
    assert app.open_orders[order_id][0].symbol == "TSLA"
    # executions and their commission reports follow the fill
    _wait_until(lambda: sum(e.shares for _, e in app.executions) >= 300 and bool(app.commissions))
    assert sum(e.shares for _, e in app.executions) == Decimal(300)
    assert {e.orderId for _, e in app.executions} == {order_id}
    exec_ids = {e.execId for _, e in app.executions}
    assert {c.execId for c in app.commissions} <= exec_ids
    assert all(c.commissionAndFees > 0 for c in app.commissions)
    app.reqPositions()
    assert app.positions_done.wait(10)
    assert app.positions["TSLA"] == Decimal(300)
    assert {code for _, code, _ in app.errors} <= INFO_CODES


def test_official_client_limit_order_rests_lists_and_cancels(app: App) -> None:
    contract = _qualified_tsla(app)
    order_id = app.next_order_id
    app.placeOrder(order_id, contract, _order("BUY", 100, "LMT", 1.00))  # far below the market
    app.reqOpenOrders()
    assert app.open_orders_done.wait(10)
    _, order, state = app.open_orders[order_id]
    assert (order.orderType, order.lmtPrice, order.totalQuantity) == ("LMT", 1.0, Decimal(100))
    assert state.status in {"Submitted", "PreSubmitted"}
    app.cancelOrder(order_id, OrderCancel())
    assert app.cancelled.wait(10)
    app.reqAccountSummary(12, "All", "NetLiquidation,TotalCashValue,BuyingPower")
    assert app.summary_done.wait(10)
    assert float(app.summary["NetLiquidation"]) > 0
    assert {code for _, code, _ in app.errors} <= INFO_CODES | {202}  # 202: order cancelled
