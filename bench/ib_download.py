"""Benchmark: 30 D of 1 min bars for 10 symbols through the paced IB layer vs the pacing minimum.

The sim runs in its own process (`SimChild`, also used by the other IB/recorder benches),
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
import contextlib
import dataclasses
import json
import logging
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

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
from simcli import CLOCK

END_UTC = datetime(2025, 7, 30, 20, 30, tzinfo=UTC)  # the pinned clock, after the close
SYMBOLS = ("AAPL", "MSFT", "NVDA", "TSLA", "SPY", "AMD", "QQQ", "META", "AMZN", "GOOGL")
SEED = 7

# The sim in a child process, configured with any SimConfig field (the CLI has no option for
# pacing rules) and driven over stdin: `restart D`, `rules SCALE SMALL_BAR_MAX_S` (for
# connections made afterwards), `rate X`, `pause`, `resume`, `counts`, `quit`.
# With `count_depth` it counts the depth messages it writes to each live connection.
SIM_CHILD = r"""
import asyncio, collections, dataclasses, json, sys, time
from ibdesk.ib.pacing import IB_PACING_RULES
from ibdesk.sim import server as sim_server

spec = json.loads(sys.argv[1])
sent = collections.Counter()
if spec.get("count_depth"):
    flush = sim_server.Connection.flush
    def counting_flush(self):
        # Walk the frames about to be written; count depth messages (ids 12 and 13) per
        # connection object (client ids repeat across connections).
        if self.out:
            data = "".join(self.out)
            i, n, size = 0, 0, len(data)
            while i + 4 <= size:
                if data.startswith(("12\0", "13\0"), i + 4):
                    n += 1
                i += 4 + ((ord(data[i + 2]) << 8) | ord(data[i + 3])) + (ord(data[i + 1]) << 16)
            sent[self] += n
            self.out[:] = [data]
        flush(self)
    sim_server.Connection.flush = counting_flush
config = sim_server.SimConfig(
    port=0, clock=spec["clock"], seed=spec["seed"],
    events_per_s=spec["events_per_s"], depth_cap=spec["depth_cap"],
    symbols=tuple(spec["symbols"]),
)

def reply(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()

async def main():
    server = sim_server.SimServer(config)
    await server.start()
    reply(f"port {server.port}")
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        cmd, *args = line.decode().split()
        if cmd == "restart":
            closed = time.monotonic()
            await server.restart(float(args[0]))
            reply(f"{closed} {time.monotonic()}")
        elif cmd == "rules":
            new = IB_PACING_RULES.scaled(float(args[0]))
            new = dataclasses.replace(new, small_bar_max_s=float(args[1]))
            server.config = dataclasses.replace(server.config, pacing=new)
            reply("ok")
        elif cmd == "rate":
            server.config = dataclasses.replace(server.config, events_per_s=float(args[0]))
            reply("ok")
        elif cmd in ("pause", "resume"):
            server.paused = cmd == "pause"
            server.flush_all()
            reply(f"{time.monotonic()}")
        elif cmd == "counts":
            reply(json.dumps({c.client_id: sent[c] for c in server.connections}))
        elif cmd == "quit":
            break
    await server.stop()

asyncio.run(main())
"""


class SimChild:
    """`ibdesk.sim` in a child process (own interpreter, own GIL), controlled over stdin."""

    def __init__(
        self,
        *,
        symbols: Sequence[str] = (),
        events_per_s: float = 50.0,
        depth_cap: int = 3,
        count_depth: bool = False,
        clock: str = CLOCK,
    ) -> None:
        self.spec: dict[str, Any] = {
            "clock": clock,
            "seed": SEED,
            "symbols": list(symbols),
            "events_per_s": events_per_s,
            "depth_cap": depth_cap,
            "count_depth": count_depth,
        }
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    def start(self) -> SimChild:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SIM_CHILD, json.dumps(self.spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port = int(self._read().split()[1])
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _read(self) -> str:
        assert self.proc is not None
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the sim child exited")
        return line.strip()

    def ask(self, command: str) -> str:
        """Send one command and return its one-line answer (blocking)."""
        assert self.proc is not None
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()

    def depth_sent(self, client_id: int) -> int:
        """Depth messages written so far to the live connection of `client_id`."""
        return int(json.loads(self.ask("counts")).get(str(client_id), 0))

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(OSError, RuntimeError):
            self.ask("quit")
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> SimChild:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def quiet_logs() -> None:
    """Keep ib_async's and ibdesk's expected warnings (gaps, 2104s) out of the table."""
    logging.basicConfig(level=logging.CRITICAL)
    for name in ("ib_async", "ibdesk"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print a small aligned table (first column left, the rest right)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(title)
    for row in [header, *rows]:
        cells = [
            str(c).ljust(widths[0]) if i == 0 else str(c).rjust(widths[i])
            for i, c in enumerate(row)
        ]
        print("  ".join(cells))


def med_min_max(values: Sequence[float], fmt: str = "{:.2f}") -> list[str]:
    return [fmt.format(statistics.median(values)), fmt.format(min(values)), fmt.format(max(values))]


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
