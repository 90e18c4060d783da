"""Paced and chunked historical requests against `ibdesk sim` sharing the same (scaled) rules."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import exchange_calendars as xcals
import numpy as np
import pyarrow.compute as _compute
import pytest

from ibdesk.config import load_settings
from ibdesk.ib.connection import ConnectionConfig, IBConnection
from ibdesk.ib.contracts import ContractCache, UnknownContractError, stock
from ibdesk.ib.pacing import IB_PACING_RULES, PacingScheduler
from ibdesk.ib.requests import BarsRequest, HistoricalClient, default_margin_s

pc: Any = _compute  # pyarrow.compute's functions are generated at import time

SCALED = IB_PACING_RULES.scaled(0.02)
JITTER_MARGIN_S = 0.05
SYMBOLS = ("AAPL", "MSFT", "NVDA", "TSLA", "SPY")


def _burst_plan() -> list[tuple[str, str]]:
    """100 small-bar requests: bursts of 8 on one contract, identical re-requests, a mix."""
    plan: list[tuple[str, str]] = []
    for round_ in range(5):
        plan.extend(("AAPL", "1800 S") for _ in range(8))  # identical burst on one contract
        plan.extend((SYMBOLS[(round_ + k) % 5], f"{600 * (k % 3 + 1)} S") for k in range(12))
    return plan


@pytest.mark.parametrize("sim", [{"pacing": SCALED}], indirect=True)
def test_hundred_small_bar_requests_get_no_pacing_violation(sim: Any) -> None:
    async def scenario() -> HistoricalClient:
        conn = IBConnection(ConnectionConfig.from_settings(load_settings(), port=sim.port))
        await conn.connect()
        try:
            cache = ContractCache()
            contracts: dict[str, Any] = dict(
                zip(
                    SYMBOLS, await cache.qualify(conn.ib, *(stock(s) for s in SYMBOLS)), strict=True
                )
            )
            # Windows are scaled 50x down, thread scheduling jitter is not (the sim shares
            # this process): pad every window by 50 ms.
            scheduler = PacingScheduler(SCALED, margin_s=JITTER_MARGIN_S)
            client = HistoricalClient(conn.ib, scheduler)
            for symbol, duration in _burst_plan():
                contract = contracts[symbol]
                assert not isinstance(contract, UnknownContractError)
                table = await client.fetch_bars(
                    BarsRequest(contract, duration, "5 secs", "TRADES", False)
                )
                assert table.num_rows > 0
            return client
        finally:
            await conn.close()

    client = asyncio.run(scenario())
    assert default_margin_s(IB_PACING_RULES) == pytest.approx(0.2)
    assert client.requests_sent == 100
    assert client.pacing_violations == 0


def test_thirty_days_of_minute_bars_are_chunked_and_stitched(sim: Any) -> None:
    async def scenario() -> Any:
        conn = IBConnection(ConnectionConfig.from_settings(load_settings(), port=sim.port))
        await conn.connect()
        try:
            [contract] = await ContractCache().qualify(conn.ib, stock("AAPL"))
            assert not isinstance(contract, UnknownContractError)
            end = datetime(2025, 7, 30, 20, 30, tzinfo=UTC)
            client = HistoricalClient(conn.ib)
            table = await client.fetch_bars(
                BarsRequest(contract, "30 D", "1 min", "TRADES", True, end)
            )
            return table, client.requests_sent
        finally:
            await conn.close()

    table, requests = asyncio.run(scenario())
    assert requests > 1
    ts = table.column("ts").cast("int64").to_numpy()
    assert len(np.unique(ts)) == len(ts)
    assert (np.diff(ts) > 0).all()
    days = pc.unique(pc.strftime(table.column("ts"), format="%Y-%m-%d", locale="C")).to_pylist()
    calendar = xcals.get_calendar("XNYS")
    sessions = calendar.sessions_in_range(min(days), max(days))
    assert [s.strftime("%Y-%m-%d") for s in sessions] == sorted(days)
    for session in sessions:
        minutes = int(
            (calendar.session_close(session) - calendar.session_open(session)).total_seconds() // 60
        )
        day = session.strftime("%Y-%m-%d")
        count = sum(
            1 for d in pc.strftime(table.column("ts"), format="%Y-%m-%d").to_pylist() if d == day
        )
        assert count == minutes, day
    assert len(sessions) == 30  # IB counts "30 D" in trading sessions
