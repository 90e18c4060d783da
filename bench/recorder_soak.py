"""Benchmark: CPU and resident memory of `ibdesk record-depth` over minutes, vs a bare loop.

5 symbols x 20 levels, snapshots every 50 ms, for `--minutes` (default 3 for a quick run;
`--minutes 10` is the real one). Three processes on one machine: `ibdesk sim` (own
process, see `simhelpers.SimChild`), the recorder (`python -m ibdesk record-depth`, its
real CLI) and, as the baseline, a bare ib_async process subscribing the same depth and only
counting updates. The recorder and the baseline run at the same time on the same sim.
psutil samples RSS every 10 s; CPU % (of one core) is taken between the first and the last
sample, so interpreter start-up and the final compaction are excluded.

Target: the recorder's RSS at the end within 10% of its RSS at minute 2.

Reproduce: .venv/bin/python bench/recorder_soak.py [--minutes 3] [--rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from ib_async import IB, Ticker

from ibdesk.ib.contracts import ContractCache, UnknownContractError, stock
from simhelpers import SEED, SimChild, quiet_logs, table

SYMBOLS = ("TSLA", "AAPL", "NVDA", "AMD", "MSFT")
LEVELS = 20
INTERVAL_MS = 50
SAMPLE_S = 10.0
MINUTE_2_S = 120.0


async def bare_loop(port: int, seconds: float) -> int:
    """The baseline: subscribe the same depth and only count updates for `seconds`."""
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=52, timeout=20)
    count = 0

    def on_tickers(tickers: set[Ticker]) -> None:
        nonlocal count
        for ticker in tickers:
            count += len(ticker.domTicks)

    try:
        ib.pendingTickersEvent += on_tickers
        for contract in await ContractCache().qualify(ib, *(stock(s) for s in SYMBOLS)):
            assert not isinstance(contract, UnknownContractError)
            ib.reqMktDepth(contract, LEVELS)
        await asyncio.sleep(seconds)
        return count
    finally:
        ib.disconnect()


class Sampler:
    """RSS every `SAMPLE_S` and CPU seconds of a set of processes."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.rss_mb: dict[str, list[tuple[float, float]]] = {name: [] for name in pids}
        self.cpu: dict[str, list[tuple[float, float]]] = {name: [] for name in pids}

    def sample(self, elapsed_s: float) -> None:
        for name, proc in self.procs.items():
            try:
                rss = proc.memory_info().rss / 2**20
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            self.rss_mb[name].append((elapsed_s, rss))
            self.cpu[name].append((elapsed_s, times.user + times.system))

    def rss_at(self, name: str, at_s: float) -> float:
        return min(self.rss_mb[name], key=lambda s: abs(s[0] - at_s))[1]

    def cpu_pct(self, name: str) -> float:
        (t0, c0), (t1, c1) = self.cpu[name][0], self.cpu[name][-1]
        return 100.0 * (c1 - c0) / (t1 - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=200.0, help="sim book events/s/symbol")
    parser.add_argument("--bare-loop", nargs=2, metavar=("PORT", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    quiet_logs()
    if args.bare_loop:
        port, seconds = int(args.bare_loop[0]), float(args.bare_loop[1])
        print(json.dumps({"updates": asyncio.run(bare_loop(port, seconds))}))
        return
    duration_s = args.minutes * 60
    with (
        SimChild(symbols=SYMBOLS, depth_cap=10, events_per_s=args.rate) as sim,
        tempfile.TemporaryDirectory(prefix="ibdesk-soak-") as tmp,
    ):
        out = Path(tmp) / "level2"
        env = {**os.environ, "IBDESK_SIM_SEED": str(SEED)}
        err_path = Path(tmp) / "recorder.err"
        err = err_path.open("w")  # a file, not a pipe: hours of log lines must not block it
        recorder = subprocess.Popen(
            [
                sys.executable, "-m", "ibdesk", "record-depth",
                "--symbol", ",".join(SYMBOLS), "--levels", str(LEVELS),
                "--interval", str(INTERVAL_MS), "--duration", f"{args.minutes}",
                "--port", str(sim.port), "--client-id", "51", "--output", str(out),
            ],
            cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
        bare = subprocess.Popen(
            [sys.executable, __file__, "--bare-loop", str(sim.port), str(duration_s)],
            cwd=tmp, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        sampler = Sampler({"recorder": recorder.pid, "bare loop": bare.pid, "sim": sim.pid})
        start = time.monotonic()
        next_s = SAMPLE_S
        while recorder.poll() is None or bare.poll() is None:
            time.sleep(max(0.0, start + next_s - time.monotonic()))
            if next_s <= duration_s:
                sampler.sample(next_s)
            next_s += SAMPLE_S
        bare_out, _ = bare.communicate()
        err.close()
        assert recorder.returncode == 0, err_path.read_text()
        bare_updates = json.loads(bare_out)["updates"]
        stats = [json.loads(p.read_text()) for p in out.glob("*/session_stats_*.json")]
    recorded = sum(s["updates_received"] for s in stats)
    snapshots = sum(s["snapshots_written"] for s in stats)
    rows = []
    for name in ("recorder", "bare loop", "sim"):
        at_2 = sampler.rss_at(name, min(MINUTE_2_S, duration_s))
        end = sampler.rss_mb[name][-1][1]
        rows.append(
            [
                name,
                f"{sampler.cpu_pct(name):.1f}",
                f"{at_2:.1f}",
                f"{end:.1f}",
                f"{end / at_2:.3f}",
            ]
        )
    print()
    table(
        f"{len(SYMBOLS)} symbols x {LEVELS} levels, {INTERVAL_MS} ms snapshots, "
        f"{args.minutes:g} min, sim rate {args.rate:g} book events/s/symbol",
        ["process", "CPU % (1 core)", "RSS MB @ min 2", "RSS MB @ end", "end / min 2"],
        rows,
    )
    expected = round(duration_s * 1000 / INTERVAL_MS) * len(SYMBOLS)
    print(
        f"updates: recorder {recorded:,} ({recorded / duration_s:,.0f}/s), bare loop "
        f"{bare_updates:,} ({bare_updates / duration_s:,.0f}/s); snapshots written "
        f"{snapshots:,} of {expected:,} expected"
    )
    series = " ".join(f"{mb:.0f}" for _, mb in sampler.rss_mb["recorder"])
    print(f"recorder RSS MB every {SAMPLE_S:g} s: {series}")
    print("target: recorder RSS at the end within 10% of minute 2 (end / min 2 <= 1.10)")
    print(
        f"reproduce: .venv/bin/python bench/recorder_soak.py --minutes {args.minutes:g} "
        f"--rate {args.rate:g}"
    )


if __name__ == "__main__":
    main()
