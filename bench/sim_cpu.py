"""Benchmark: the sim's own CPU use under a typical test load, vs the same sim idle.

Load: 5 depth subscriptions x 20 rows at 100 book updates/s each, plus keepUpToDate
1-min bars for 10 symbols, all from one ib_async client. The sim runs in its own process;
its CPU time comes from /proc/<pid>/stat. Baseline: the same sim with a client connected
and nothing subscribed. Shows the sim will not be the bottleneck of other benchmarks.

Reproduce: .venv/bin/python bench/sim_cpu.py [--seconds 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from ib_async import IB, Stock

from simhelpers import cpu_s, sim_cli

DEPTH = ("TSLA", "AAPL", "NVDA", "AMD", "PLUG")
BARS = ("TSLA", "AAPL", "NVDA", "AMD", "PLUG", "MSFT", "SPY", "QQQ", "SOFI", "NIO")


def measure(ib: IB, pid: int, seconds: float) -> tuple[float, int]:
    """CPU % of one core used by the sim over `seconds`, and messages the client received."""
    received = ib.client.connectionStats().numMsgRecv
    start_cpu, start = cpu_s(pid), time.perf_counter()
    ib.sleep(seconds)
    used, wall = cpu_s(pid) - start_cpu, time.perf_counter() - start
    return 100.0 * used / wall, ib.client.connectionStats().numMsgRecv - received


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with sim_cli("--rate", "100", "--depth-cap", "5") as (proc, port):
        ib = IB()
        try:
            ib.connect("127.0.0.1", port, clientId=1, timeout=20)
            idle = [measure(ib, proc.pid, args.seconds) for _ in range(args.repeats)]
            contracts = {s: Stock(s, "SMART", "USD") for s in set(DEPTH) | set(BARS)}
            ib.qualifyContracts(*contracts.values())
            for symbol in DEPTH:
                ib.reqMktDepth(contracts[symbol], numRows=20, isSmartDepth=False)
            for symbol in BARS:
                ib.reqHistoricalData(
                    contracts[symbol], "", "1 D", "1 min", "TRADES", False, 1, keepUpToDate=True
                )
            ib.sleep(1.0)
            loaded = [measure(ib, proc.pid, args.seconds) for _ in range(args.repeats)]
        finally:
            ib.disconnect()
    print(f"sim CPU, {args.repeats} x {args.seconds:.0f} s, % of one core")
    print(f"{'run':<44}{'median':>8}{'min':>8}{'max':>8}{'msg/s':>10}")
    for name, runs in (
        ("idle (client connected, no subscriptions)", idle),
        ("5 depth x 20 rows @100/s + 10 x 1-min bars", loaded),
    ):
        cpu = [c for c, _ in runs]
        rate = statistics.median(n / args.seconds for _, n in runs)
        print(
            f"{name:<44}{statistics.median(cpu):>8.1f}{min(cpu):>8.1f}{max(cpu):>8.1f}{rate:>10,.0f}"
        )
    idle_cpu = max(statistics.median(c for c, _ in idle), 0.01)
    ratio = statistics.median(c for c, _ in loaded) / idle_cpu
    print(f"ratio loaded/idle (median CPU): {ratio:.1f}")


if __name__ == "__main__":
    main()
