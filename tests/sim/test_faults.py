"""Faults on demand: connectivity, data farm, daily restart, depth halt/reset, silent feed."""

from __future__ import annotations

import contextlib
import socket
from typing import Any

import pytest
from ib_async import IB, Stock

from ibdesk.sim.faults import FaultKind, parse_fault

FAST = [{"events_per_s": 600.0}]


@pytest.fixture
def tsla(ib: IB) -> Stock:
    contract = Stock("TSLA", "SMART", "USD")
    ib.qualifyContracts(contract)
    return contract


def _updates(ib: IB, ticker: Any, seconds: float) -> int:
    count = 0

    def on_update(_: Any) -> None:
        nonlocal count
        count += 1

    ticker.updateEvent += on_update
    ib.sleep(seconds)
    ticker.updateEvent -= on_update
    return count


@pytest.mark.parametrize("sim", FAST, indirect=True)
def test_connectivity_lost_then_restored_with_data_kept(
    sim: Any, ib: IB, tsla: Stock, errors: Any
) -> None:
    ticker = ib.reqMktData(tsla)
    ib.sleep(0.3)
    sim.connectivity_lost()
    ib.sleep(0.2)
    assert _updates(ib, ticker, 0.5) == 0
    sim.connectivity_restored(data_kept=True)
    assert _updates(ib, ticker, 0.5) > 0
    assert [c for c in errors.codes() if c >= 1100 and c < 1200] == [1100, 1102]


@pytest.mark.parametrize("sim", FAST, indirect=True)
def test_restored_with_data_lost_drops_subscriptions(
    sim: Any, ib: IB, tsla: Stock, errors: Any
) -> None:
    ib.reqMktData(tsla)
    ib.reqMktDepth(tsla, numRows=5)
    ib.sleep(0.2)
    sim.connectivity_lost()
    sim.connectivity_restored(data_kept=False)
    ib.sleep(0.2)
    assert 1101 in errors.codes()
    assert sim.call(lambda: (sim.sim.depth_in_use, len(sim.sim.markets["TSLA"].quote_subs))) == (
        0,
        0,
    )


@pytest.mark.parametrize("sim", FAST, indirect=True)
def test_data_farm_broken_then_ok(sim: Any, ib: IB, tsla: Stock, errors: Any) -> None:
    ticker = ib.reqMktData(tsla)
    ib.sleep(0.2)
    sim.farm_broken()
    ib.sleep(0.2)
    assert _updates(ib, ticker, 0.5) == 0
    sim.farm_ok()
    assert _updates(ib, ticker, 0.5) > 0
    assert [c for c in errors.codes() if c in (2103, 2104)] == [2103, 2104]


def test_daily_restart_closes_sockets_refuses_then_comes_back(sim: Any, ib: IB) -> None:
    port = sim.port
    sim.restart(2.0)
    with contextlib.suppress(ConnectionError):  # ib_async raises the disconnect out of sleep
        ib.sleep(0.3)
    assert not ib.isConnected()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((sim.host, port), timeout=2).close()
    sim.wait_accepting()
    again = IB()
    again.connect(sim.host, port, clientId=ib.client.clientId or 1, timeout=10)
    assert again.isConnected()
    again.disconnect()


@pytest.mark.parametrize("sim", FAST, indirect=True)
def test_depth_halt_and_reset(sim: Any, ib: IB, tsla: Stock, errors: Any) -> None:
    ticker = ib.reqMktDepth(tsla, numRows=5)
    ib.sleep(0.3)
    sim.pause()  # ib_async's domBids do not follow IB row semantics; compare a still book
    sim.depth_reset("TSLA")
    ib.sleep(0.3)
    assert 317 in errors.codes()
    truth = sim.book("TSLA", 5)
    assert [(d.price, d.size) for d in ticker.domBids] == [(p, float(s)) for p, s in truth.bids]
    sim.depth_halt("TSLA")
    ib.sleep(0.2)
    assert 316 in errors.codes()
    assert sim.call(lambda: sim.sim.depth_in_use) == 0


@pytest.mark.parametrize("sim", FAST, indirect=True)
def test_silent_feed_stops_without_an_error(sim: Any, ib: IB, tsla: Stock, errors: Any) -> None:
    ticker = ib.reqMktData(tsla)
    ib.sleep(0.3)
    before = list(errors.codes())
    sim.silence("TSLA")
    ib.sleep(0.2)
    assert _updates(ib, ticker, 0.6) == 0
    assert errors.codes() == before


def test_fault_specs_parse() -> None:
    fault = parse_fault("restart@60:10")
    assert (fault.kind, fault.at_s, fault.duration_s) == (FaultKind.RESTART, 60.0, 10.0)
    assert parse_fault("depth-halt@5").duration_s == 0.0
    with pytest.raises(ValueError, match="invalid fault"):
        parse_fault("explode@1")


def test_scheduled_faults_fire_in_order(sim: Any, ib: IB, errors: Any) -> None:
    from ibdesk.sim.faults import run_schedule

    faults = [parse_fault("farm@0.1:0.2"), parse_fault("connectivity@0.5:0.1")]
    done = sim.submit(run_schedule(sim.sim, faults))
    for _ in range(40):
        if done.done():
            break
        ib.sleep(0.05)
    ib.sleep(0.1)
    assert done.result(1) is None
    assert [c for c in errors.codes() if c in (2103, 2104, 1100, 1102)] == [2103, 2104, 1100, 1102]
