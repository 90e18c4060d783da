"""Benchmark: 30 D of 1 min bars for 10 symbols through the paced IB layer vs the pacing minimum.

The sim runs in its own process (`simhelpers.SimChild`, as in the other IB/recorder benches),
so it does not share the GIL with the measured client. Scenarios, each repeated:

- `HistoricalClient`, IB's rules: 1 min bars are not covered by IB's small-bar rules, so
  the minimum the rules allow is 0 s (reported; the ratio is then meaningless) and the
  floor is the client's own spacing of historical requests (`MIN_SEND_SPACING_S`).
- `HistoricalClient`, binding rules: `IB_PACING_RULES.scaled(SCALE)` with
  `small_bar_max_s=inf`, the same rules given to the sim and to the client's scheduler.
  Allowed-rate fraction = `minimum_total_s` (over the keys actually sent, a retried key
  counted once) / wall time. Run twice: straight after connect + qualify (as `ibdesk run`
  does), and after a 1 s pause. ib_async throttles to 45 messages per rolling second by
  itself; right after connecting, its queue still holds the start-up and qualify messages,
  so the first historical requests reach the gateway up to ~0.2 s after the scheduler
  recorded them sent, and one rolling window later the gateway refuses (162) requests the
  scheduler believed allowed. The pause shows the rate achievable without that effect.
- Baseline: a bare ib_async loop sending the very same requests with no scheduler (IB's
  rules, which do not refuse 1 min bars) at the same 40/s send spacing, to show what the
  paced layer costs (scheduler, chunk tables, stitching).

One sim serves every scenario (its rules are switched between runs, each run on a fresh
connection so the sim's per-connection pacing ledger starts empty), after one unmeasured
warm-up download that fills the sim's per-session bar cache; scenarios are interleaved.

Symbols download concurrently (one task per symbol, chunks in order within a symbol).

Reproduce: .venv/bin/python bench/ib_download.py [--days 30] [--symbols 10] [--repeats 2]
           [--scale 0.02]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from ib_async import IB, Contract

from ibdesk.ib.contracts import ContractCache, UnknownContractError, stock
from ibdesk.ib.pacing import (
    IB_PACING_RULES,
    HistoricalRequestKey,
    PacingRules,
    PacingScheduler,
    minimum_total_s,
    plan_chunks,
)
from ibdesk.ib.requests import MIN_SEND_SPACING_S, BarsRequest, HistoricalClient, default_margin_s
from simhelpers import SimChild, med_min_max, quiet_logs, table

END_UTC = datetime(2025, 7, 30, 20, 30, tzinfo=UTC)  # the pinned clock, after the close
SYMBOLS = ("AAPL", "MSFT", "NVDA", "TSLA", "SPY", "AMD", "QQQ", "META", "AMZN", "GOOGL")
# ---- the download --------------------------------------------------------------------------


class RecordingScheduler(PacingScheduler):
    """The real scheduler, also remembering every key it was told was sent (in send order)."""

    def __init__(self, rules: PacingRules, *, margin_s: float) -> None:
        super().__init__(rules, margin_s=margin_s)
        self.sent: list[HistoricalRequestKey] = []

    def record_sent(self, key: HistoricalRequestKey, now_s: float) -> None:
        self.sent.append(key)
        super().record_sent(key, now_s)


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    wall_s: float
    requests: int
    violations: int  # 162 pacing refusals
    dropped: int  # error 100: the gateway's ~50 messages/s limit dropped a request
    bars: int
    minimum_s: float


class ErrorCount:
    """Counts IB error codes seen on one connection."""

    def __init__(self, ib: IB) -> None:
        self.codes: dict[int, int] = {}
        ib.errorEvent += self._on_error

    def _on_error(self, _req_id: int, code: int, _message: str, _contract: object) -> None:
        self.codes[code] = self.codes.get(code, 0) + 1


async def _qualified(ib: IB, symbols: Sequence[str]) -> list[Contract]:
    results = await ContractCache().qualify(ib, *(stock(s) for s in symbols))
    good = [r for r in results if not isinstance(r, UnknownContractError)]
    assert len(good) == len(symbols), results
    return good


async def paced_download(
    port: int, rules: PacingRules, symbols: Sequence[str], days: int, settle_s: float = 0.0
) -> Outcome:
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=11, timeout=20)
    errors = ErrorCount(ib)
    try:
        contracts = await _qualified(ib, symbols)
        scheduler = RecordingScheduler(rules, margin_s=default_margin_s(rules))
        client = HistoricalClient(ib, scheduler)
        # ib_async's own throttle (45 messages per rolling second) still holds the startup
        # and qualify messages; a request it queues reaches the gateway later than the
        # scheduler recorded. `settle_s` lets that second pass before the first request.
        await asyncio.sleep(settle_s)
        start = time.perf_counter()
        tables = await asyncio.gather(
            *(
                client.fetch_bars(BarsRequest(c, f"{days} D", "1 min", "TRADES", True, END_UTC))
                for c in contracts
            )
        )
        wall = time.perf_counter() - start
        needed = list(dict.fromkeys(scheduler.sent))  # a retried request is needed once
        return Outcome(
            wall,
            client.requests_sent,
            client.pacing_violations,
            errors.codes.get(100, 0),
            sum(t.num_rows for t in tables),
            minimum_total_s(rules, needed),
        )
    finally:
        ib.disconnect()


async def bare_download(port: int, symbols: Sequence[str], days: int) -> Outcome:
    """The same chunk requests straight through ib_async: no scheduler, no stitching.

    Sends are spaced like `HistoricalClient`'s (`MIN_SEND_SPACING_S`): at ib_async's own
    45/s throttle the sim's 50 messages/s limit drops a request now and then (error 100)
    and ib_async then waits for its timeout.
    """
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=12, timeout=20)
    errors = ErrorCount(ib)
    try:
        contracts = await _qualified(ib, symbols)
        chunks = plan_chunks(f"{days} D", "1 min", END_UTC)
        sent = 0
        last_send_s = -math.inf

        async def one(contract: Contract) -> int:
            nonlocal sent, last_send_s
            rows = 0
            for chunk in chunks:
                while (wait_s := last_send_s + MIN_SEND_SPACING_S - time.monotonic()) > 0:
                    await asyncio.sleep(wait_s)
                last_send_s = time.monotonic()
                sent += 1
                bars = await ib.reqHistoricalDataAsync(
                    contract, chunk.ib_end, str(chunk.duration), "1 min", "TRADES", True,
                    formatDate=2, timeout=120,
                )  # fmt: skip
                rows += len(bars)
            return rows

        start = time.perf_counter()
        rows = await asyncio.gather(*(one(c) for c in contracts))
        wall = time.perf_counter() - start
        return Outcome(wall, sent, 0, errors.codes.get(100, 0), sum(rows), 0.0)
    finally:
        ib.disconnect()


def bars_range(outcomes: Sequence[Outcome]) -> str:
    low, high = min(o.bars for o in outcomes), max(o.bars for o in outcomes)
    return f"{low:,}" if low == high else f"{low:,}-{high:,}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--symbols", type=int, default=10, help="how many symbols (<= 10)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--scale", type=float, default=0.02, help="time scale of the binding rules (IB = 1)"
    )
    args = parser.parse_args()
    quiet_logs()
    symbols = SYMBOLS[: args.symbols]
    binding = dataclasses.replace(IB_PACING_RULES.scaled(args.scale), small_bar_max_s=math.inf)
    names = (
        "bare ib_async (IB rules)",
        "HistoricalClient (IB rules)",
        f"HistoricalClient (IB x{args.scale:g} all sizes)",
        f"HistoricalClient (IB x{args.scale:g} all sizes, 1 s settle)",
    )
    results: dict[str, list[Outcome]] = {name: [] for name in names}
    with SimChild(symbols=symbols) as sim:
        # warm-up (not measured): the sim builds and caches each session's bars on first use
        asyncio.run(bare_download(sim.port, symbols, args.days))
        for _ in range(args.repeats):
            sim.ask(f"rules 1 {IB_PACING_RULES.small_bar_max_s}")
            results[names[0]].append(asyncio.run(bare_download(sim.port, symbols, args.days)))
            results[names[1]].append(
                asyncio.run(paced_download(sim.port, IB_PACING_RULES, symbols, args.days))
            )
            sim.ask(f"rules {args.scale} inf")
            results[names[2]].append(
                asyncio.run(paced_download(sim.port, binding, symbols, args.days))
            )
            results[names[3]].append(
                asyncio.run(paced_download(sim.port, binding, symbols, args.days, 1.0))
            )
    rows: list[list[str]] = []
    for name, outcomes in results.items():
        walls = [o.wall_s for o in outcomes]
        minimum = statistics.median(o.minimum_s for o in outcomes)
        fractions = [o.minimum_s / o.wall_s for o in outcomes]
        rows.append(
            [
                name,
                str(outcomes[0].requests),
                str(sum(o.violations for o in outcomes)),
                str(sum(o.dropped for o in outcomes)),
                bars_range(outcomes),
                *med_min_max(walls),
                f"{minimum:.2f}",
                f"{statistics.median(fractions):.3f}" if minimum > 0 else "n/a",
            ]
        )
    print()
    table(
        f"{args.symbols} symbols x {args.days} D x 1 min bars, {args.repeats} repetitions, "
        "sim in a child process",
        [
            "scenario",
            "requests",
            "162s",
            "100s",
            "bars",
            "wall s med",
            "min",
            "max",
            "minimum s",
            "min/wall",
        ],
        rows,
    )
    bare = statistics.median(o.wall_s for o in results["bare ib_async (IB rules)"])
    paced = statistics.median(o.wall_s for o in results["HistoricalClient (IB rules)"])
    requests = results["HistoricalClient (IB rules)"][0].requests
    print(f"ratio HistoricalClient / bare ib_async wall (IB rules, median): {paced / bare:.3f}")
    print(
        f"IB rules: 1 min bars are not paced by IB, the rules' minimum is 0 s; the client's own "
        f"spacing floor is {requests} x {MIN_SEND_SPACING_S * 1000:.0f} ms = "
        f"{requests * MIN_SEND_SPACING_S:.2f} s"
    )
    print(
        "bars: bare = raw rows of every chunk (weekend chunks repeat Friday); HistoricalClient "
        "= stitched, one row per bar. 162s/100s = pacing refusals / requests dropped by the "
        "50 msg/s limit, summed over the repetitions"
    )
    print("target: min/wall >= 0.9 with binding rules")
    print(
        "reproduce: .venv/bin/python bench/ib_download.py "
        f"--days {args.days} --symbols {args.symbols} --repeats {args.repeats} "
        f"--scale {args.scale:g}"
    )


if __name__ == "__main__":
    main()
