"""The official IB API client (`ibapi`, strict parser) against the sim."""

# ruff: noqa: N803  (EWrapper callbacks keep ibapi's camelCase parameter names)

from __future__ import annotations

import logging
import threading
from decimal import Decimal
from typing import Any

import pytest
from ibapi.client import EClient
from ibapi.common import BarData, TickerId
from ibapi.contract import Contract, ContractDetails
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

    def nextValidId(self, orderId: int) -> None:
        self.ready.set()

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
