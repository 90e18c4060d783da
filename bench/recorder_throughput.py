"""Benchmark: depth updates/s the L2 Recorder keeps up with, vs a bare ib_async counting loop.

One `ibdesk sim` in a child process (see `simhelpers.SimChild`) counts every depth message
it writes to each connection. Its book event rate is stepped up; at each rate two clients take
turns on the same sim stream, for `--seconds` each:
- bare: ib_async `reqMktDepth` + `pendingTickersEvent` counting `len(ticker.domTicks)`;
- recorder: `ibdesk.depth.recorder.Recorder` (depth + tick-by-tick, snapshots every
  `--interval` ms, part files every 5 s), counting its `stats.updates`.
Measured over the window: messages/s the sim sent, messages/s the client received while
the sim was sending. Then the sim pauses, the client drains what is in flight (up to
`--drain` s), and lost = sent - received over the whole subscription (a client too far
behind to drain in time shows its backlog as lost); for the recorder the messages file's
row count must equal the updates its session stats say it received. A rate is sustained when the
client received >= 99% of it during the window and lost nothing.

Reproduce: .venv/bin/python bench/recorder_throughput.py [--seconds 5]
           [--totals 2000 10000 20000 40000 80000] [--levels 10]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow.parquet as pq
from ib_async import IB, Ticker

from ibdesk.config import load_settings
from ibdesk.depth.recorder import RecordConfig, Recorder
from ibdesk.ib.contracts import ContractCache, UnknownContractError, stock
from simhelpers import SimChild, quiet_logs, table

SYMBOLS = ("TSLA", "AAPL", "NVDA", "AMD", "MSFT")
BARE_CLIENT_ID = 31
RECORDER_CLIENT_ID = 32


@dataclasses.dataclass(frozen=True, slots=True)
class Point:
    sent_per_s: float
    received_per_s: float
    lost: int
    file_rows_match: bool | None  # recorder only

    @property
    def sustained(self) -> bool:
        return self.lost == 0 and self.received_per_s >= 0.99 * self.sent_per_s


async def _until(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Poll `condition` (a bench may poll: it must not add hooks to the code it measures)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def _measure(
    sim: SimChild, client_id: int, received: Callable[[], int], seconds: float, drain_s: float
) -> tuple[float, float, int]:
    """Window rates (sent/s, received/s) and messages lost after draining; leaves the sim
    paused so nothing more arrives while the client stops (the next run resumes it)."""
    sent0 = await asyncio.to_thread(sim.depth_sent, client_id)
    got0 = received()
    start = time.monotonic()
    await asyncio.sleep(seconds)
    paused_at = float(await asyncio.to_thread(sim.ask, "pause"))
    got1 = received()
    sent1 = await asyncio.to_thread(sim.depth_sent, client_id)
    await _until(lambda: received() >= sent1, drain_s)
    lost = sent1 - received()
    window = paused_at - start
    return (sent1 - sent0) / window, (got1 - got0) / window, lost


async def bare_run(
    sim: SimChild, symbols: Sequence[str], levels: int, seconds: float, drain_s: float
) -> Point:
    ib = IB()
    await ib.connectAsync("127.0.0.1", sim.port, clientId=BARE_CLIENT_ID, timeout=20)
    count = 0

    def on_tickers(tickers: set[Ticker]) -> None:
        nonlocal count
        for ticker in tickers:
            count += len(ticker.domTicks)

    try:
        contracts = await ContractCache().qualify(ib, *(stock(s) for s in symbols))
        ib.pendingTickersEvent += on_tickers
        for contract in contracts:
            assert not isinstance(contract, UnknownContractError)
            ib.reqMktDepth(contract, levels)
        assert await _until(lambda: count > 0, 10)
        sent, got, lost = await _measure(sim, BARE_CLIENT_ID, lambda: count, seconds, drain_s)
        for contract in contracts:
            assert not isinstance(contract, UnknownContractError)
            ib.cancelMktDepth(contract)
        return Point(sent, got, lost, None)
    finally:
        ib.disconnect()


async def recorder_run(
    sim: SimChild,
    symbols: Sequence[str],
    levels: int,
    interval_ms: int,
    seconds: float,
    drain_s: float,
    output: Path,
) -> Point:
    config = RecordConfig(
        symbols=tuple(symbols),
        output=output,
        levels=levels,
        interval_ms=interval_ms,
        port=sim.port,
        client_id=RECORDER_CLIENT_ID,
    )
    recorder = Recorder(load_settings(), config)
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(recorder.run(stop))

    def received() -> int:
        return sum(c.stats.updates for c in recorder.captures.values())

    try:
        started = await _until(
            lambda: (
                len(recorder.captures) == len(symbols)
                and all(c.stats.updates > 0 for c in recorder.captures.values())
            ),
            10,
        )
        assert started, "the recorder received no depth"
        client_id = recorder.conn.client_id
        sent, got, lost = await _measure(sim, client_id, received, seconds, drain_s)
    finally:
        stop.set()
        summary = await task
    rows = sum(
        pq.read_metadata(path).num_rows for path in summary.files if "_messages_" in path.name
    )
    resets = sum(c.stats.resets for c in recorder.captures.values())
    # every message received up to the stop (a lagging client still drains after `lost`)
    total = sum(stats["updates_received"] for stats in summary.per_symbol.values())
    return Point(sent, got, lost, rows == total and resets == 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="window per rate and client")
    parser.add_argument(
        "--totals",
        type=float,
        nargs="+",
        default=[2000, 10000, 20000, 40000, 80000],
        help="sim book events/s summed over the symbols (split evenly)",
    )
    parser.add_argument("--levels", type=int, default=10)
    parser.add_argument("--interval", type=int, default=100, help="recorder snapshot ms")
    parser.add_argument("--drain", type=float, default=5.0, help="seconds to drain after pause")
    args = parser.parse_args()
    quiet_logs()
    results: dict[int, list[tuple[float, Point, Point]]] = {}
    with (
        SimChild(symbols=SYMBOLS, depth_cap=10, count_depth=True) as sim,
        tempfile.TemporaryDirectory(prefix="ibdesk-bench-") as tmp,
    ):
        for n in (1, 5):
            symbols = SYMBOLS[:n]
            for i, total in enumerate(args.totals):
                sim.ask(f"rate {total / n}")
                sim.ask("resume")
                bare = asyncio.run(bare_run(sim, symbols, args.levels, args.seconds, args.drain))
                out = Path(tmp) / f"{n}-{i}"
                sim.ask("resume")
                recorder = asyncio.run(
                    recorder_run(
                        sim, symbols, args.levels, args.interval, args.seconds, args.drain, out
                    )
                )
                results.setdefault(n, []).append((total, bare, recorder))
    print()
    for n, points in results.items():
        rows = []
        for total, bare, rec in points:
            rows.append(
                [
                    f"{total:,.0f}",
                    f"{bare.sent_per_s:,.0f}",
                    f"{bare.received_per_s:,.0f}",
                    f"{100 * bare.received_per_s / bare.sent_per_s:.0f}%",
                    str(bare.lost),
                    f"{rec.sent_per_s:,.0f}",
                    f"{rec.received_per_s:,.0f}",
                    f"{100 * rec.received_per_s / rec.sent_per_s:.0f}%",
                    str(rec.lost),
                    "yes" if rec.file_rows_match else "NO",
                    f"{rec.received_per_s / bare.received_per_s:.3f}",
                ]
            )
        table(
            f"{n} symbol(s) x {args.levels} rows, {args.seconds:g} s per point, "
            f"recorder snapshots every {args.interval} ms (updates = depth messages)",
            [
                "book events/s",
                "bare sent/s",
                "bare recv/s",
                "kept up",
                "lost",
                "rec sent/s",
                "rec recv/s",
                "kept up",
                "lost",
                "file rows ok",
                "rec/bare recv",
            ],
            rows,
        )
        best_bare = max((b.received_per_s for _, b, _ in points if b.sustained), default=0.0)
        best_rec = max((r.received_per_s for _, _, r in points if r.sustained), default=0.0)
        ratio = best_rec / best_bare if best_bare else float("nan")
        print(
            f"highest sustained zero-loss rate: bare {best_bare:,.0f}/s, "
            f"recorder {best_rec:,.0f}/s, ratio recorder/bare {ratio:.3f}\n"
        )
    print("target: recorder >= 0.9 x bare loop")
    print(
        "reproduce: .venv/bin/python bench/recorder_throughput.py "
        f"--seconds {args.seconds:g} --totals {' '.join(f'{t:g}' for t in args.totals)} "
        f"--levels {args.levels} --interval {args.interval}"
    )


if __name__ == "__main__":
    main()
