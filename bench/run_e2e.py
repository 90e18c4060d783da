"""Benchmark: `ibdesk run` (pipeline.run) for 10 symbols x 5 D x 1 min vs the pacing minimum.

`ibdesk.pipeline.run` against `ibdesk sim` in a child process (see `simhelpers.SimChild`),
each run into a fresh data root (sim clock = now: the pipeline's multi-day requests end at
the wall clock's now), reporting wall time, the time inside IB (gateway, qualify,
bars, cleanup stages) and outside it (store + signals), and the time outside IB per 1 M
bars. Baseline: the minimum time IB's pacing rules allow for the historical requests the
run actually sent (`minimum_total_s`, answers taken as instantaneous).

IB's rules do not pace 1 min or daily bars, so under them that minimum is 0 s. The
binding scenario gives the sim and the client's scheduler the same rules
`IB_PACING_RULES.scaled(SCALE)` with `small_bar_max_s=inf` (the pipeline's
`HistoricalClient` is swapped, inside this process only, for one whose scheduler also
records the keys sent); there the ratio minimum / wall says how close the whole run gets
to the pacing limit.

Reproduce: .venv/bin/python bench/run_e2e.py [--symbols 10] [--duration "5 D"]
           [--repeats 3] [--scale 0.25]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import statistics
import tempfile
import time
from pathlib import Path

from ib_async import IB

from ib_download import SYMBOLS, RecordingScheduler
from ibdesk import pipeline
from ibdesk.config import load_settings
from ibdesk.ib.pacing import IB_PACING_RULES, HistoricalRequestKey, PacingRules, minimum_total_s
from ibdesk.ib.requests import HistoricalClient, default_margin_s
from simhelpers import SimChild, med_min_max, quiet_logs, table

IB_STAGES = ("gateway", "qualify", "bars", "cleanup")
OUTSIDE_STAGES = ("store", "signals")


class _Rules:
    """The rules the next `RecordingClient` paces with, and the keys it sent."""

    rules: PacingRules = IB_PACING_RULES
    sent: list[HistoricalRequestKey] = []  # noqa: RUF012 - one run at a time


class RecordingClient(HistoricalClient):
    """The pipeline's HistoricalClient with a chosen rule set and a key-recording scheduler."""

    def __init__(self, ib: IB) -> None:
        scheduler = RecordingScheduler(_Rules.rules, margin_s=default_margin_s(_Rules.rules))
        _Rules.sent = scheduler.sent
        super().__init__(ib, scheduler)


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    wall_s: float
    ib_s: float
    outside_s: float
    bars: int
    requests: int
    minimum_s: float


def one_run(port: int, symbols: tuple[str, ...], duration: str, root: Path) -> Outcome:
    settings = load_settings(data_path_override=root / "data", logs_path=root / "logs")
    config = pipeline.RunConfig(symbols=symbols, duration=duration, bar_size="1 min", port=port)
    start = time.perf_counter()
    summary = asyncio.run(pipeline.run(settings, config))
    wall = time.perf_counter() - start
    assert not summary.failed, summary.failed
    stages = summary.stage_seconds
    return Outcome(
        wall,
        sum(stages[s] for s in IB_STAGES),
        sum(stages[s] for s in OUTSIDE_STAGES),
        sum(r.bars for r in summary.symbols.values()),
        len(_Rules.sent),
        minimum_total_s(_Rules.rules, list(dict.fromkeys(_Rules.sent))),  # retries once
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--symbols", type=int, default=10, help="how many symbols (<= 10)")
    parser.add_argument("--duration", default="5 D")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--scale", type=float, default=0.25, help="time scale of the binding rules (IB = 1)"
    )
    args = parser.parse_args()
    quiet_logs()
    symbols = SYMBOLS[: args.symbols]
    binding = dataclasses.replace(IB_PACING_RULES.scaled(args.scale), small_bar_max_s=math.inf)
    scenarios = {
        "IB rules (1 min not paced)": (IB_PACING_RULES, f"1 {IB_PACING_RULES.small_bar_max_s}"),
        f"IB x{args.scale:g}, all sizes paced": (binding, f"{args.scale} inf"),
    }
    pipeline.HistoricalClient = RecordingClient  # this process only; see the docstring
    results: dict[str, list[Outcome]] = {name: [] for name in scenarios}
    # The pipeline asks for bars ending at the wall clock's now (not the gateway's), so
    # the sim's clock must be the wall clock for multi-day durations to mean anything.
    sim_child = SimChild(symbols=symbols, clock="now")
    with sim_child as sim, tempfile.TemporaryDirectory() as tmp:
        with tempfile.TemporaryDirectory() as warm:  # fills the sim's per-session bar cache
            one_run(sim.port, symbols, args.duration, Path(warm))
        for i in range(args.repeats):
            for name, (rules, command) in scenarios.items():
                sim.ask(f"rules {command}")
                _Rules.rules = rules
                root = Path(tmp) / f"{i}-{len(results[name])}-{rules.rolling_window_s:g}"
                results[name].append(one_run(sim.port, symbols, args.duration, root))
    rows: list[list[str]] = []
    for name, outcomes in results.items():
        minimum = statistics.median(o.minimum_s for o in outcomes)
        per_m = [o.outside_s / o.bars * 1e6 for o in outcomes]
        rows.append(
            [
                name,
                str(outcomes[0].requests),
                f"{outcomes[0].bars:,}",
                *med_min_max([o.wall_s for o in outcomes]),
                f"{statistics.median(o.ib_s for o in outcomes):.2f}",
                f"{statistics.median(o.outside_s for o in outcomes):.2f}",
                f"{statistics.median(per_m):.1f}",
                f"{minimum:.2f}",
                f"{minimum / statistics.median(o.wall_s for o in outcomes):.3f}"
                if minimum > 0
                else "n/a",
            ]
        )
    print()
    table(
        f"pipeline.run: {len(symbols)} symbols x {args.duration} x 1 min (+ 10 D daily bars), "
        f"{args.repeats} repetitions, sim in a child process",
        [
            "scenario",
            "requests",
            "bars",
            "wall s med",
            "min",
            "max",
            "IB s",
            "outside s",
            "outside s/1M bars",
            "pacing min s",
            "min/wall",
        ],
        rows,
    )
    print("IB s = gateway + qualify + bars + cleanup stages; outside = store + signals")
    print(
        "reproduce: .venv/bin/python bench/run_e2e.py "
        f'--symbols {len(symbols)} --duration "{args.duration}" --repeats {args.repeats} '
        f"--scale {args.scale:g}"
    )


if __name__ == "__main__":
    main()
