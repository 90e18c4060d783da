"""The IB connection layer against `ibdesk sim` over a socket, with the real ib_async client."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from ibdesk.config import load_settings
from ibdesk.errors import GatewayUnavailableError
from ibdesk.ib.connection import (
    ConnectionConfig,
    ConnectionEvent,
    DataEvent,
    GapEnded,
    GapReason,
    GapStarted,
    IBConnection,
    Reconnected,
    Resubscribed,
    Subscription,
)
from ibdesk.ib.contracts import ContractCache, UnknownContractError, stock
from ibdesk.ib.requests import BarsRequest, HistoricalClient


def _connection(sim: Any, **overrides: Any) -> IBConnection:
    settings = load_settings()
    config = ConnectionConfig.from_settings(settings, port=sim.port, **overrides)
    return IBConnection(config)


async def _until(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def _run(coro: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(coro())


async def _subscribed_depth(conn: IBConnection, symbol: str = "AAPL") -> Subscription:
    [contract] = await ContractCache().qualify(conn.ib, stock(symbol))
    assert not isinstance(contract, UnknownContractError)
    received: list[DataEvent] = []
    conn.add_data_listener(received.extend)
    sub = conn.subscribe_depth(contract, 10)
    await _until(lambda: any(e.key == sub.key for e in received))
    return sub


def test_connect_qualify_and_one_session_of_bars(sim: Any) -> None:
    async def scenario() -> None:
        conn = _connection(sim)
        await conn.connect()
        try:
            assert conn.is_sim
            assert conn.accounts == ["SIM0001"]
            aapl, bogus = await ContractCache().qualify(conn.ib, stock("AAPL"), stock("NOPE1"))
            assert isinstance(bogus, UnknownContractError)
            assert "NOPE1" in bogus.message
            assert not isinstance(aapl, UnknownContractError)
            table = await HistoricalClient(conn.ib).fetch_bars(BarsRequest(aapl, "1 D", "1 min"))
            assert table.num_rows == 390
            assert str(table.schema.field("ts").type) == "timestamp[ns, tz=UTC]"
        finally:
            await conn.close()

    _run(scenario)


def test_client_id_in_use_moves_to_next_id(sim: Any) -> None:
    async def scenario() -> None:
        first = _connection(sim, client_id=5)
        second = _connection(sim, client_id=5)
        await first.connect()
        try:
            await second.connect()
            assert second.client_id == 6
            assert second.is_connected
        finally:
            await second.close()
            await first.close()

    _run(scenario)


def test_unreachable_gateway_names_ports_tried() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = load_settings()
    config = ConnectionConfig.from_settings(settings, port=port, retry_attempts=1)

    async def scenario() -> None:
        with pytest.raises(GatewayUnavailableError, match=str(port)):
            await IBConnection(config).connect()

    _run(scenario)


def test_daily_restart_reconnects_and_depth_flows_again(sim: Any) -> None:
    events: list[ConnectionEvent] = []

    async def scenario() -> None:
        conn = _connection(sim)
        conn.add_listener(events.append)
        await conn.connect()
        try:
            sub = await _subscribed_depth(conn)
            quotes = conn.subscribe_market_data(sub.contract)
            await _until(lambda: bool(quotes.ticker and quotes.ticker.bid == quotes.ticker.bid))
            generation = sub.generation
            sim.restart(0.5)
            await _until(lambda: any(isinstance(e, Reconnected) for e in events), 15)
            await _until(
                lambda: {sub.key, quotes.key} <= {e.key for e in events if isinstance(e, GapEnded)},
                15,
            )
            assert sub.generation == generation + 1
            assert quotes.generation == 2
            assert conn.subscriptions[sub.key] is sub
            assert conn.reconnects == 1
            received = (sub.last_data_s, quotes.last_data_s)
            await _until(lambda: sub.last_data_s > received[0] and quotes.last_data_s > received[1])
        finally:
            await conn.close()

    _run(scenario)
    started = [e for e in events if isinstance(e, GapStarted)]
    ended = [e for e in events if isinstance(e, GapEnded)]
    assert [e.reason for e in started] == [GapReason.DISCONNECTED, GapReason.DISCONNECTED]
    assert ended[0].end_ns > ended[0].start_ns
    assert ended[0].reason is GapReason.DISCONNECTED


@pytest.mark.parametrize(
    ("break_feed", "restore_feed", "reason", "resubscribed"),
    [
        ("connectivity_lost", "restored_data_lost", GapReason.CONNECTIVITY_LOST, True),  # 1101
        ("connectivity_lost", "restored_data_kept", GapReason.CONNECTIVITY_LOST, False),  # 1102
        ("farm_broken", "farm_ok", GapReason.DATA_FARM_BROKEN, True),  # 2103 -> 2104
    ],
)
def test_outage_opens_a_gap_and_recovery_resubscribes_only_when_data_was_lost(
    sim: Any, break_feed: str, restore_feed: str, reason: GapReason, resubscribed: bool
) -> None:
    events: list[ConnectionEvent] = []
    faults = {
        "connectivity_lost": sim.connectivity_lost,
        "restored_data_lost": lambda: sim.connectivity_restored(data_kept=False),
        "restored_data_kept": lambda: sim.connectivity_restored(data_kept=True),
        "farm_broken": sim.farm_broken,
        "farm_ok": sim.farm_ok,
    }

    async def scenario() -> None:
        conn = _connection(sim)
        conn.add_listener(events.append)
        await conn.connect()
        try:
            sub = await _subscribed_depth(conn)
            faults[break_feed]()
            await _until(lambda: any(isinstance(e, GapStarted) for e in events))
            faults[restore_feed]()
            await _until(lambda: any(isinstance(e, GapEnded) for e in events))
            assert sub.generation == (2 if resubscribed else 1)
        finally:
            await conn.close()

    _run(scenario)
    gap = next(e for e in events if isinstance(e, GapStarted))
    assert gap.reason is reason
    assert any(isinstance(e, Resubscribed) and e.reason is reason for e in events) is resubscribed


def test_silent_feed_is_detected_and_rerequested(sim: Any) -> None:
    events: list[ConnectionEvent] = []

    async def scenario() -> None:
        conn = _connection(sim, silent_after_s=0.5, watchdog_interval_s=0.1)
        conn.add_listener(events.append)
        await conn.connect()
        try:
            sub = await _subscribed_depth(conn)
            sim.silence("AAPL")
            await _until(lambda: any(isinstance(e, Resubscribed) for e in events), 10)
            await _until(lambda: any(isinstance(e, GapEnded) for e in events), 10)
            assert sub.generation == 2
        finally:
            await conn.close()

    _run(scenario)
    gap = next(e for e in events if isinstance(e, GapStarted))
    assert gap.reason is GapReason.SILENT_FEED


def test_depth_reset_opens_a_gap_that_closes_when_data_flows(sim: Any) -> None:
    events: list[ConnectionEvent] = []

    async def scenario() -> None:
        conn = _connection(sim)
        conn.add_listener(events.append)
        await conn.connect()
        try:
            await _subscribed_depth(conn)
            sim.depth_reset("AAPL")
            await _until(lambda: any(isinstance(e, GapEnded) for e in events))
        finally:
            await conn.close()

    _run(scenario)
    gap = next(e for e in events if isinstance(e, GapStarted))
    assert gap.reason is GapReason.DEPTH_RESET
