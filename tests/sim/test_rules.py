"""IB's rules in the sim: historical pacing (162), message rate (100), socket close ends
subscriptions."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from ib_async import IB, Stock

from ibdesk.ib.pacing import IB_PACING_RULES, PacingRules
from ibdesk.sim.protocol import FrameReader, encode

SCALED = [{"pacing": IB_PACING_RULES.scaled(0.2)}]


@pytest.fixture
def tsla(ib: IB) -> Stock:
    contract = Stock("TSLA", "SMART", "USD")
    ib.qualifyContracts(contract)
    return contract


@pytest.mark.parametrize("sim", SCALED, indirect=True)
def test_identical_small_bar_request_within_the_window_gets_162(
    ib: IB, tsla: Stock, errors: Any
) -> None:
    first = ib.reqHistoricalData(tsla, "", "1800 S", "5 secs", "TRADES", False, 1)
    second = ib.reqHistoricalData(tsla, "", "1800 S", "5 secs", "TRADES", False, 1)
    assert len(first) > 0
    assert len(second) == 0
    assert errors.codes() == [162]


@pytest.mark.parametrize("sim", [{"pacing": PacingRules(same_contract_max=2)}], indirect=True)
def test_too_many_same_contract_requests_get_162(ib: IB, tsla: Stock, errors: Any) -> None:
    for duration in ("600 S", "900 S", "1200 S"):
        ib.reqHistoricalData(tsla, "", duration, "5 secs", "TRADES", False, 1)
    assert errors.codes() == [162]


@pytest.mark.parametrize("sim", SCALED, indirect=True)
def test_large_bars_are_not_paced(ib: IB, tsla: Stock, errors: Any) -> None:
    for _ in range(3):
        assert len(ib.reqHistoricalData(tsla, "", "1 D", "1 hour", "TRADES", True, 1)) == 7
    assert errors.codes() == []


def test_more_than_50_messages_a_second_gets_error_100(sim: Any) -> None:
    with socket.create_connection((sim.host, sim.port), timeout=5) as sock:
        body = b"v100..178"
        sock.sendall(b"API\x00" + len(body).to_bytes(4, "big") + body)
        sock.sendall(encode(71, 2, 77, ""))
        sock.sendall(b"".join(encode(49, 1) for _ in range(60)))
        reader = FrameReader()
        seen: list[list[str]] = []
        while sum(1 for m in seen if m[0] in ("49", "4")) < 60 + 3:
            seen += reader.feed(sock.recv(65536))
        assert sum(1 for m in seen if m[0] == "49") == 50
        assert sum(1 for m in seen if m[:4] == ["4", "2", "-1", "100"]) == 10


def test_closing_the_socket_ends_its_subscriptions(sim: Any) -> None:
    client = IB()
    client.connect(sim.host, sim.port, clientId=42, timeout=10)
    contract = Stock("TSLA", "SMART", "USD")
    client.qualifyContracts(contract)
    client.reqMktDepth(contract, numRows=5)
    client.reqMktData(contract)
    client.sleep(0.3)
    assert sim.call(lambda: sim.sim.depth_in_use) == 1
    client.disconnect()
    client.sleep(0.3)
    market = sim.sim.markets["TSLA"]
    assert sim.call(
        lambda: (sim.sim.depth_in_use, len(market.depth_subs), len(market.quote_subs))
    ) == (0, 0, 0)


def test_an_invalid_order_gets_321_and_the_session_survives(sim: Any) -> None:
    with socket.create_connection((sim.host, sim.port), timeout=5) as sock:
        body = b"v100..178"
        sock.sendall(b"API\x00" + len(body).to_bytes(4, "big") + body)
        sock.sendall(encode(71, 2, 78, ""))
        sock.sendall(
            encode(
                3,
                5,
                0,
                "TSLA",
                "STK",
                "",
                0.0,
                "",
                "",
                "SMART",
                "",
                "USD",
                "",
                "",
                "",
                "",
                "BUY",
                1,
                "LMT",
                "not-a-price",
            )
        )
        sock.sendall(encode(49, 1))
        reader = FrameReader()
        seen: list[list[str]] = []
        while not any(m[0] == "49" for m in seen):
            seen += reader.feed(sock.recv(65536))
        assert ["4", "2", "5", "321"] in [m[:4] for m in seen]
