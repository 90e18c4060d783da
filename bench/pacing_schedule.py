"""Pacing benchmark: how long a batch of historical requests takes under IB's rules.

Everything runs on a simulated clock (no waiting), with IB's real rules (15 s identical,
6 in 2 s per contract, 60 in 10 min, 50 open, BID_ASK twice) and each answer taking
`--service-s` seconds. Three clients send the same FIFO workload:
  scheduler  `PacingScheduler`: each request at its `next_allowed_s`;
  sleep-10s  the usual hand-written guard: one request every 10 s (600 s / 60);
  sleep-15s  the slowest fixed spacing that is always safe (the identical-request window).
Reported per workload: simulated wall time to the last send, its ratio to the minimum
the rules allow (`minimum_total_s`, 1.00 = as fast as IB permits), and the violations
each schedule commits (`find_violations`; each would be an error 162 from IB).
Then the cost of one scheduling decision, scheduler vs a brute-force search with the
reference checker, as median/min/max over repetitions.

Reproduce: `.venv/bin/python bench/pacing_schedule.py [--repeat 5 --service-s 0.3]`.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime

from ibdesk.ib.pacing import (
    IB_PACING_RULES,
    HistoricalRequestKey,
    PacingRules,
    PacingScheduler,
    SentRequest,
    find_violations,
    minimum_total_s,
    plan_chunks,
)


def issue_workload(seed: int = 7) -> list[HistoricalRequestKey]:
    """100 requests for bars <= 30 s: bursts of 6-10 per contract and identical re-requests."""
    rng = random.Random(seed)
    keys: list[HistoricalRequestKey] = []
    while len(keys) < 100:
        con_id = rng.randint(1, 10)
        for _ in range(rng.randint(6, 10)):
            end = f"20240301-{rng.randint(14, 20):02d}:00:00"
            keys.append(
                HistoricalRequestKey(con_id, "SMART", "TRADES", end, "1800 S", "1 secs", True)
            )
    return keys[:100]


def chunked_download(symbols: int = 10) -> list[HistoricalRequestKey]:
    """30 D of 30-second bars for `symbols` symbols, split into IB-sized chunks."""
    chunks = plan_chunks("30 D", "30 secs", datetime(2024, 3, 1, 21, 0, tzinfo=UTC))
    return [
        HistoricalRequestKey(s, "SMART", "TRADES", c.ib_end, str(c.duration), "30 secs", True)
        for s in range(1, symbols + 1)
        for c in chunks
    ]


def run_scheduler(
    rules: PacingRules, keys: list[HistoricalRequestKey], service_s: float
) -> list[SentRequest]:
    """FIFO client on a simulated clock: each request at the scheduler's time."""
    scheduler = PacingScheduler(rules)
    pending: list[tuple[float, int]] = []  # (done_s, index into keys)
    sent: list[SentRequest] = []
    now = 0.0
    for i, key in enumerate(keys):
        while True:
            for item in sorted(pending):
                if item[0] <= now:
                    scheduler.record_done(keys[item[1]])
                    pending.remove(item)
            at = scheduler.next_allowed_s(key, now)
            next_done = min((d for d, _ in pending), default=float("inf"))
            if at <= next_done:
                break
            now = next_done
        scheduler.record_sent(key, at)
        pending.append((at + service_s, i))
        sent.append(SentRequest(key, at, at + service_s))
        now = at
    return sent


def run_fixed(
    keys: list[HistoricalRequestKey], spacing_s: float, service_s: float
) -> list[SentRequest]:
    return [SentRequest(k, i * spacing_s, i * spacing_s + service_s) for i, k in enumerate(keys)]


def brute_force_next(
    rules: PacingRules, sent: list[SentRequest], key: HistoricalRequestKey
) -> float:
    windows = (rules.identical_window_s, rules.same_contract_window_s, rules.rolling_window_s)
    floor = sent[-1].sent_s if sent else 0.0
    edges = {floor} | {s.sent_s + w for s in sent for w in windows if s.sent_s + w > floor}
    edges |= {s.done_s for s in sent if s.done_s is not None and s.done_s > floor}
    return next(
        t for t in sorted(edges) if not find_violations(rules, [*sent, SentRequest(key, t)])
    )


def decision_cost(keys: list[HistoricalRequestKey], repeat: int) -> tuple[list[float], list[float]]:
    rules = IB_PACING_RULES
    cand: list[float] = []
    base: list[float] = []
    for _ in range(repeat):
        began = time.perf_counter()
        scheduler = PacingScheduler(rules)
        for key in keys:
            t = scheduler.next_allowed_s(key, 0.0)
            scheduler.record_sent(key, t)
            scheduler.record_done(key)
        cand.append((time.perf_counter() - began) / len(keys) * 1e6)
        began = time.perf_counter()
        sent: list[SentRequest] = []
        for key in keys:
            t = brute_force_next(rules, sent, key)
            sent.append(SentRequest(key, t, t))
        base.append((time.perf_counter() - began) / len(keys) * 1e6)
    return cand, base


def main() -> None:
    parser = argparse.ArgumentParser(description="Pacing scheduler benchmark (simulated clock).")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--service-s", type=float, default=0.3)
    args = parser.parse_args()
    rules = IB_PACING_RULES

    print("Schedule length on a simulated clock (IB's real rules), lower is better")
    header = f"{'workload':<22}{'client':<11}{'requests':>9}{'last send s':>13}"
    print(f"{header}{'x minimum':>11}{'162s':>6}")
    for name, keys in (
        ("issue: 100 mixed", issue_workload()),
        ("10 sym x 30 D x 30s", chunked_download()),
    ):
        minimum = minimum_total_s(rules, keys)
        for client, sent in (
            ("scheduler", run_scheduler(rules, keys, args.service_s)),
            ("sleep-10s", run_fixed(keys, 10.0, args.service_s)),
            ("sleep-15s", run_fixed(keys, 15.0, args.service_s)),
        ):
            last = sent[-1].sent_s
            ratio = last / minimum if minimum else float("nan")
            violations = len({v.index for v in find_violations(rules, sent)})
            print(f"{name:<22}{client:<11}{len(keys):>9}{last:>13.1f}{ratio:>11.2f}{violations:>6}")

    keys = issue_workload()
    cand, base = decision_cost(keys, args.repeat)
    print()
    print("Cost of one scheduling decision (us), 100 requests, median/min/max")
    print(f"{'':<12}{'median':>10}{'min':>10}{'max':>10}")
    print(f"{'scheduler':<12}{statistics.median(cand):>10.1f}{min(cand):>10.1f}{max(cand):>10.1f}")
    print(
        f"{'brute force':<12}{statistics.median(base):>10.1f}{min(base):>10.1f}{max(base):>10.1f}"
    )
    print(
        f"ratio (brute force / scheduler): {statistics.median(base) / statistics.median(cand):.0f}x"
    )


if __name__ == "__main__":
    main()
