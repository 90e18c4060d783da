"""Benchmark: data flowing again after a gateway restart vs a fresh client's cold start.

`IBConnection` holds depth (10 rows) and market-data subscriptions for a few symbols on
`ibdesk sim` (own process, see `simhelpers.SimChild`). The sim then does a daily restart:
every socket closes and connections are refused for `--down` seconds. Measured per restart:
from the moment the sim accepts connections again (its own monotonic clock, which is the
same clock as ours on one machine) to the moment every subscription has received data on
its re-established request, and split into "reconnected" (handshake done) and the rest.

Baseline, same run and same sim: a fresh `IBConnection` started at a moment the gateway is
known to be up (connect + subscribe -> every subscription has data), i.e. what a client
that knew exactly when the gateway came back could achieve at best.

The reconnect backoff (0.1 s doubling, capped at `reconnect_max_delay_s`) sets where in
its retry cycle the gateway comes back; `--down-step` varies the downtime per restart to
sample that phase.

Reproduce: .venv/bin/python bench/ib_reconnect.py [--symbols 4] [--restarts 5] [--down 2]
           [--down-step 0]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence

from ib_async import Contract, Ticker

from ibdesk.ib.connection import (
    ConnectionConfig,
    ConnectionEvent,
    DataEvent,
    IBConnection,
    Reconnected,
    Subscription,
    SubscriptionKind,
)
from ibdesk.ib.contracts import ContractCache, UnknownContractError, stock
from simhelpers import SimChild, med_min_max, quiet_logs, table

SYMBOLS = ("AAPL", "MSFT", "NVDA", "TSLA", "AMD")
TIMEOUT_S = 60.0


class FreshWatch:
    """Records when each subscription first gets data on a request newer than a mark."""

    def __init__(self, conn: IBConnection) -> None:
        self.conn = conn
        self.after: dict[str, int] = {}
        self.fresh_at: dict[str, float] = {}
        self.reconnected_at: float | None = None
        self.all_fresh = asyncio.Event()
        conn.ib.pendingTickersEvent += self._on_tickers
        conn.add_data_listener(self._on_data)
        conn.add_listener(self._on_event)

    def arm(self, *, newer_than_current: bool) -> None:
        """Wait for data on requests newer than now (after a restart) or on the current ones."""
        subs = self.conn.subscriptions.values()
        self.after = {s.key: s.generation if newer_than_current else 0 for s in subs}
        self.fresh_at = {}
        self.reconnected_at = None
        self.all_fresh.clear()

    def _on_event(self, event: ConnectionEvent) -> None:
        if isinstance(event, Reconnected) and self.reconnected_at is None:
            self.reconnected_at = time.monotonic()

    def _fresh(self, sub: Subscription, now: float) -> None:
        if sub.key not in self.fresh_at and sub.generation > self.after.get(sub.key, 0):
            self.fresh_at[sub.key] = now
        if self.after and len(self.fresh_at) == len(self.after):
            self.all_fresh.set()

    def _on_data(self, events: Sequence[DataEvent]) -> None:
        """Depth arrives here only (decoded past ib_async's Ticker)."""
        sub = self.conn.subscriptions.get(events[0].key) if events else None
        if sub is not None:
            self._fresh(sub, time.monotonic())

    def _on_tickers(self, tickers: set[Ticker]) -> None:
        now = time.monotonic()
        for sub in list(self.conn.subscriptions.values()):
            ticker = sub.ticker
            if (
                sub.kind is SubscriptionKind.MARKET_DATA
                and ticker in tickers
                and ticker
                and ticker.ticks
            ):
                self._fresh(sub, now)


def connection(port: int, client_id: int) -> IBConnection:
    return IBConnection(
        ConnectionConfig(
            host="127.0.0.1", ports=(port,), client_id=client_id, timeout_s=10, retry_attempts=3
        )
    )


def subscribe(conn: IBConnection, contracts: Sequence[Contract]) -> None:
    for contract in contracts:
        conn.subscribe_depth(contract, 10)
        conn.subscribe_market_data(contract)


async def cold_start_s(port: int, contracts: Sequence[Contract], client_id: int) -> float:
    """Fresh connection + subscriptions until every subscription has data."""
    conn = connection(port, client_id)
    watch = FreshWatch(conn)
    start = time.monotonic()
    await conn.connect()
    try:
        subscribe(conn, contracts)
        watch.arm(newer_than_current=False)
        await asyncio.wait_for(watch.all_fresh.wait(), TIMEOUT_S)
        return max(watch.fresh_at.values()) - start
    finally:
        await conn.close()


async def scenario(
    sim: SimChild, symbols: Sequence[str], restarts: int, down_s: float, down_step_s: float
) -> tuple[list[float], list[float], list[float]]:
    conn = connection(sim.port, 21)
    watch = FreshWatch(conn)
    await conn.connect()
    cold: list[float] = []
    flowing: list[float] = []
    reconnect: list[float] = []
    try:
        contracts: list[Contract] = []
        for result in await ContractCache().qualify(conn.ib, *(stock(s) for s in symbols)):
            assert not isinstance(result, UnknownContractError), result
            contracts.append(result)
        subscribe(conn, contracts)
        watch.arm(newer_than_current=False)
        await asyncio.wait_for(watch.all_fresh.wait(), TIMEOUT_S)
        for i in range(restarts):
            await asyncio.sleep(1.0)  # steady flow before the fault
            watch.arm(newer_than_current=True)
            answer = await asyncio.to_thread(sim.ask, f"restart {down_s + i * down_step_s}")
            accepting_s = float(answer.split()[1])
            await asyncio.wait_for(watch.all_fresh.wait(), TIMEOUT_S)
            flowing.append(max(watch.fresh_at.values()) - accepting_s)
            assert watch.reconnected_at is not None
            reconnect.append(watch.reconnected_at - accepting_s)
            await asyncio.sleep(0.5)
            cold.append(await cold_start_s(sim.port, contracts, 40 + i))
    finally:
        await conn.close()
    return flowing, reconnect, cold


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--symbols", type=int, default=4, help="how many symbols (<= 5)")
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--down", type=float, default=2.0, help="gateway downtime, seconds")
    parser.add_argument(
        "--down-step",
        type=float,
        default=0.0,
        help="add this much downtime per restart (samples the reconnect backoff's phase)",
    )
    parser.add_argument("--rate", type=float, default=100.0, help="sim book events/s/symbol")
    args = parser.parse_args()
    quiet_logs()
    symbols = SYMBOLS[: args.symbols]
    with SimChild(symbols=symbols, depth_cap=2 * len(symbols), events_per_s=args.rate) as sim:
        flowing, reconnect, cold = asyncio.run(
            scenario(sim, symbols, args.restarts, args.down, args.down_step)
        )
    subs = 2 * len(symbols)
    resub = [f - r for f, r in zip(flowing, reconnect, strict=True)]
    print()
    table(
        f"{len(symbols)} symbols x (depth 10 rows + market data) = {subs} subscriptions, "
        f"{args.restarts} restarts of {args.down:g} s downtime (+{args.down_step:g} s per "
        "restart), sim in a child process",
        ["measure (seconds)", "median", "min", "max"],
        [
            ["gateway accepting -> all subscriptions flowing", *med_min_max(flowing, "{:.3f}")],
            ["  gateway accepting -> reconnected (backoff)", *med_min_max(reconnect, "{:.3f}")],
            ["  reconnected -> all subscriptions flowing", *med_min_max(resub, "{:.3f}")],
            ["baseline: fresh client connect -> all flowing", *med_min_max(cold, "{:.3f}")],
        ],
    )
    ratio = statistics.median(flowing) / statistics.median(cold)
    print(f"ratio restart recovery / fresh cold start (median): {ratio:.2f}")
    print("target: all subscriptions flowing < 2 s after the gateway accepts again")
    print(
        "reproduce: .venv/bin/python bench/ib_reconnect.py "
        f"--symbols {len(symbols)} --restarts {args.restarts} --down {args.down:g} "
        f"--down-step {args.down_step:g} --rate {args.rate:g}"
    )


if __name__ == "__main__":
    main()
