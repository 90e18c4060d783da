"""Client-side pacing: the reference checker, the scheduler, the minimum schedule, chunking.

Hand-computed cases for each IB rule, then properties: a scheduled random sequence replayed
through `find_violations` has no violation, and no request could have gone out earlier.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ibdesk.domain.bars import Duration, DurationUnit, max_duration, parse_bar_size
from ibdesk.ib.pacing import (
    IB_PACING_RULES,
    HistoricalChunk,
    HistoricalRequestKey,
    PacingLedger,
    PacingRule,
    PacingRules,
    PacingScheduler,
    SentRequest,
    find_violations,
    minimum_send_times,
    minimum_total_s,
    plan_chunks,
    stitch_bars,
)
from ibdesk.store.schemas import bars_schema


def key(
    con_id: int = 1,
    end: str = "20240301-21:00:00",
    what: str = "TRADES",
    bar: str = "1 secs",
) -> HistoricalRequestKey:
    return HistoricalRequestKey(con_id, "SMART", what, end, "1800 S", bar, True)


def distinct(n: int, con_id: int = 1, what: str = "TRADES") -> list[HistoricalRequestKey]:
    return [key(con_id, end=f"end-{i}", what=what) for i in range(n)]


# ---------------------------------------------------------------- checker, by hand


def test_identical_request_within_window_is_a_violation() -> None:
    found = find_violations(IB_PACING_RULES, [(key(), 0.0), (key(), 14.9)])
    assert [(v.rule, v.index) for v in found] == [(PacingRule.IDENTICAL, 1)]


def test_identical_request_exactly_one_window_later_is_allowed() -> None:
    assert find_violations(IB_PACING_RULES, [(key(), 0.0), (key(), 15.0)]) == []


def test_sixth_request_for_one_contract_within_two_seconds_is_a_violation() -> None:
    sent = [(k, 0.3 * i) for i, k in enumerate(distinct(6))]
    found = find_violations(IB_PACING_RULES, sent)
    assert [(v.rule, v.index) for v in found] == [(PacingRule.SAME_CONTRACT, 5)]


def test_six_requests_spread_over_different_contracts_are_allowed() -> None:
    sent = [(key(con_id=i % 2, end=f"e{i}"), 0.0) for i in range(6)]
    assert find_violations(IB_PACING_RULES, sent) == []


def test_bid_ask_counts_twice_for_one_contract() -> None:
    sent = [(k, 0.0) for k in distinct(3, what="BID_ASK")]
    found = find_violations(IB_PACING_RULES, sent)
    assert [(v.rule, v.index) for v in found] == [(PacingRule.SAME_CONTRACT, 2)]


def test_sixty_first_request_in_ten_minutes_is_a_violation() -> None:
    sent = [SentRequest(key(con_id=i, end="e"), 9.0 * i, 9.0 * i + 1) for i in range(61)]
    found = find_violations(IB_PACING_RULES, sent)
    assert [(v.rule, v.index) for v in found] == [(PacingRule.ROLLING, 60)]


def test_rolling_window_forgets_requests_older_than_ten_minutes() -> None:
    sent = [SentRequest(key(con_id=i, end="e"), 0.0, 0.0) for i in range(60)]
    sent.append(SentRequest(key(99), 600.0))
    assert find_violations(IB_PACING_RULES, sent) == []


def test_fifty_first_open_request_is_a_violation_whatever_the_bar_size() -> None:
    sent = [(key(con_id=i, end="e", bar="1 day"), float(i)) for i in range(51)]
    found = find_violations(IB_PACING_RULES, sent)
    assert [(v.rule, v.index) for v in found] == [(PacingRule.MAX_OPEN, 50)]


def test_open_bid_ask_requests_count_twice() -> None:
    sent = [(key(con_id=i, end="e", what="BID_ASK", bar="1 day"), float(i)) for i in range(26)]
    found = find_violations(IB_PACING_RULES, sent)
    assert [(v.rule, v.index) for v in found] == [(PacingRule.MAX_OPEN, 25)]


def test_finished_requests_do_not_count_as_open() -> None:
    sent = [SentRequest(key(con_id=i, end="e", bar="1 day"), float(i), i + 0.5) for i in range(80)]
    assert find_violations(IB_PACING_RULES, sent) == []


def test_window_rules_do_not_cover_bars_longer_than_thirty_seconds() -> None:
    one_min = key(bar="1 min")
    assert find_violations(IB_PACING_RULES, [(one_min, 0.0)] * 10) == []


def test_window_rules_cover_every_bar_size_when_configured_so() -> None:
    rules = PacingRules(small_bar_max_s=math.inf)
    found = find_violations(rules, [(key(bar="1 min"), 0.0), (key(bar="1 min"), 1.0)])
    assert [v.rule for v in found] == [PacingRule.IDENTICAL]


# ---------------------------------------------------------------- scheduler, by hand


def test_scheduler_holds_identical_request_for_the_window() -> None:
    scheduler = PacingScheduler()
    scheduler.record_sent(key(), 0.0)
    scheduler.record_done(key())
    assert scheduler.next_allowed_s(key(), 1.0) == 15.0
    assert scheduler.next_allowed_s(key(end="other"), 1.0) == 1.0


def test_scheduler_holds_sixth_same_contract_request_two_seconds() -> None:
    scheduler = PacingScheduler()
    for k in distinct(5):
        scheduler.record_sent(k, 0.0)
        scheduler.record_done(k)
    assert scheduler.next_allowed_s(key(end="sixth"), 0.5) == 2.0
    assert scheduler.next_allowed_s(key(con_id=2), 0.5) == 0.5


def test_scheduler_counts_bid_ask_twice() -> None:
    scheduler = PacingScheduler()
    for k in distinct(2, what="BID_ASK"):
        scheduler.record_sent(k, 0.0)
        scheduler.record_done(k)
    assert scheduler.next_allowed_s(key(end="third", what="BID_ASK"), 0.0) == 2.0


def test_scheduler_waits_for_the_rolling_window() -> None:
    rules = IB_PACING_RULES.scaled(0.01)  # 6 s rolling window
    scheduler = PacingScheduler(rules)
    for i in range(60):
        k = key(con_id=i, end="e")
        scheduler.record_sent(k, 0.05 * i)
        scheduler.record_done(k)
    assert scheduler.next_allowed_s(key(con_id=100), 3.0) == pytest.approx(6.0)


def test_scheduler_says_wait_when_fifty_requests_are_open() -> None:
    scheduler = PacingScheduler()
    keys = [key(con_id=i, end="e", bar="1 day") for i in range(50)]
    for k in keys:
        scheduler.record_sent(k, 0.0)
    assert scheduler.open_count == 50
    assert scheduler.next_allowed_s(key(con_id=77, bar="1 day"), 1.0) == math.inf
    scheduler.record_done(keys[0])
    assert scheduler.next_allowed_s(key(con_id=77, bar="1 day"), 1.0) == 1.0


def test_scheduler_counts_open_bid_ask_twice() -> None:
    scheduler = PacingScheduler()
    for i in range(25):
        scheduler.record_sent(key(con_id=i, end="e", what="BID_ASK", bar="1 day"), 0.0)
    assert (scheduler.open_count, scheduler.open_weight) == (25, 50)
    assert scheduler.next_allowed_s(key(con_id=99, bar="1 day"), 0.0) == math.inf


def test_scheduler_never_goes_back_in_time() -> None:
    scheduler = PacingScheduler()
    scheduler.record_sent(key(con_id=1), 10.0)
    assert scheduler.next_allowed_s(key(con_id=2), 5.0) == 10.0


def test_scheduler_margin_pads_windows() -> None:
    scheduler = PacingScheduler(margin_s=0.25)
    scheduler.record_sent(key(), 0.0)
    scheduler.record_done(key())
    assert scheduler.next_allowed_s(key(), 0.0) == 15.25


def test_record_done_without_open_request_is_an_error() -> None:
    with pytest.raises(ValueError, match="no open historical request"):
        PacingScheduler().record_done(key())


# ---------------------------------------------------------------- minimum schedule


def test_minimum_total_of_one_contract_burst() -> None:
    # 5 at t=0, the 6th must wait until the first leaves the 2 s window.
    assert minimum_send_times(IB_PACING_RULES, distinct(6)) == [0, 0, 0, 0, 0, 2.0]


def test_minimum_total_of_121_requests_is_two_rolling_windows() -> None:
    keys = [key(con_id=i, end="e") for i in range(121)]
    assert minimum_total_s(IB_PACING_RULES, keys) == 1200.0


def test_minimum_total_of_identical_re_requests() -> None:
    assert minimum_total_s(IB_PACING_RULES, [key(), key(), key()]) == 30.0


def test_minimum_total_of_nothing_is_zero() -> None:
    assert minimum_total_s(IB_PACING_RULES, []) == 0.0


# ---------------------------------------------------------------- properties

SMALL_RULES = PacingRules(
    identical_window_s=15.0,
    same_contract_window_s=2.0,
    same_contract_max=5,
    rolling_window_s=40.0,
    rolling_max=12,
    max_open=3,
    weight_bid_ask=2,
)

keys_strategy = st.builds(
    key,
    con_id=st.integers(1, 3),
    end=st.sampled_from(["a", "b", "c", "d"]),
    what=st.sampled_from(["TRADES", "TRADES", "BID_ASK", "MIDPOINT"]),
    bar=st.sampled_from(["1 secs", "1 secs", "30 secs", "1 min"]),
)


@dataclass(frozen=True, slots=True)
class Arrival:
    key: HistoricalRequestKey
    gap_s: float
    service_s: float


arrivals_strategy = st.lists(
    st.builds(
        Arrival,
        key=keys_strategy,
        gap_s=st.integers(0, 12).map(lambda q: q / 4),
        service_s=st.integers(0, 40).map(lambda q: q / 4),
    ),
    min_size=1,
    max_size=45,
)


def run_scheduler(
    rules: PacingRules, arrivals: list[Arrival]
) -> tuple[list[SentRequest], list[float]]:
    """FIFO client: each request goes at the scheduler's time; answers end after service_s."""
    scheduler = PacingScheduler(rules)
    pending: list[tuple[float, int]] = []  # (done_s, index)
    done: dict[int, float] = {}
    sent_s: list[float] = []
    lower: list[float] = []
    arrival_s = 0.0
    for i, arrival in enumerate(arrivals):
        arrival_s += arrival.gap_s
        now = max([arrival_s, *sent_s[-1:]])
        lower.append(now)
        while True:
            for done_s, j in sorted(pending):
                if done_s <= now:
                    scheduler.record_done(arrivals[j].key)
                    done[j] = done_s
                    pending.remove((done_s, j))
            t = scheduler.next_allowed_s(arrival.key, now)
            next_done = min(pending, default=(math.inf, -1))[0]
            if t <= next_done or next_done == math.inf:
                break
            now = next_done
        assert t < math.inf
        scheduler.record_sent(arrival.key, t)
        pending.append((t + arrival.service_s, i))
        sent_s.append(t)
    for done_s, j in pending:
        done[j] = done_s
    sent = [SentRequest(a.key, sent_s[i], done[i]) for i, a in enumerate(arrivals)]
    return sent, lower


@settings(max_examples=150, deadline=None)
@given(arrivals_strategy)
def test_scheduled_requests_never_violate(arrivals: list[Arrival]) -> None:
    sent, _ = run_scheduler(SMALL_RULES, arrivals)
    assert find_violations(SMALL_RULES, sent) == []


@settings(max_examples=150, deadline=None)
@given(arrivals_strategy)
def test_no_request_could_have_been_sent_earlier(arrivals: list[Arrival]) -> None:
    sent, lower = run_scheduler(SMALL_RULES, arrivals)
    for i, request in enumerate(sent):
        if request.sent_s <= lower[i]:
            continue
        for earlier_s in {lower[i], request.sent_s - 1e-6}:
            moved = [*sent[:i], SentRequest(request.key, earlier_s)]
            assert find_violations(SMALL_RULES, moved), (i, earlier_s)


def brute_force_minimum(rules: PacingRules, keys: list[HistoricalRequestKey]) -> list[float]:
    """Earliest feasible time per request, found by trying every window edge with the checker."""
    windows = (rules.identical_window_s, rules.same_contract_window_s, rules.rolling_window_s)
    sent: list[SentRequest] = []
    for k in keys:
        floor = sent[-1].sent_s if sent else 0.0
        candidates = sorted(
            {floor} | {s.sent_s + w for s in sent for w in windows if s.sent_s + w > floor}
        )
        t = next(c for c in candidates if not find_violations(rules, [*sent, SentRequest(k, c)]))
        sent.append(SentRequest(k, t, t))
    return [s.sent_s for s in sent]


@settings(max_examples=100, deadline=None)
@given(st.lists(keys_strategy, min_size=1, max_size=30))
def test_minimum_send_times_match_a_brute_force_search(keys: list[HistoricalRequestKey]) -> None:
    assert minimum_send_times(SMALL_RULES, keys) == brute_force_minimum(SMALL_RULES, keys)


def test_hundred_mixed_requests_scaled_rules_schedule_cleanly() -> None:
    """The issue's scenario in miniature: re-requests and bursts of 6+ for one contract."""
    rng = random.Random(4)
    rules = IB_PACING_RULES.scaled(0.01)
    keys = [key(con_id=rng.randint(1, 4), end=f"e{rng.randint(0, 9)}") for _ in range(100)]
    times = minimum_send_times(rules, keys)
    sent = [SentRequest(k, t, t) for k, t in zip(keys, times, strict=True)]
    assert find_violations(rules, sent) == []
    assert times[-1] >= rules.rolling_window_s  # 100 > 60 requests need a second window


# ---------------------------------------------------------------- chunk planner

END = datetime(2024, 3, 1, 21, 0, tzinfo=UTC)


def test_thirty_days_of_one_minute_bars_is_thirty_one_day_chunks() -> None:
    chunks = plan_chunks("30 D", "1 min", END)
    assert len(chunks) == 30
    assert all(str(c.duration) == "1 D" for c in chunks)
    assert chunks[-1].end_utc == END
    assert chunks[0].end_utc == END - timedelta(days=29)


def test_chunks_are_contiguous_oldest_first() -> None:
    chunks = plan_chunks("1 D", "1 secs", END)
    assert len(chunks) == 48
    assert all(str(c.duration) == "1800 S" for c in chunks)
    for older, newer in pairwise(chunks):
        assert older.end_utc == newer.start_utc


def test_request_within_the_limit_is_one_chunk() -> None:
    assert plan_chunks("1 D", "1 min", END) == [
        HistoricalChunk(END, Duration(1, DurationUnit.DAYS))
    ]
    assert len(plan_chunks("30 D", "1 hour", END)) == 1


def test_last_chunk_is_shorter_when_the_duration_does_not_divide() -> None:
    chunks = plan_chunks("9 D", "2 mins", END)
    assert [str(c.duration) for c in chunks] == ["1 D", "2 D", "2 D", "2 D", "2 D"]


def test_chunk_end_in_ibs_utc_form() -> None:
    assert plan_chunks("1 D", "1 min", END)[0].ib_end == "20240301-21:00:00"


def test_plan_chunks_needs_an_aware_end() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_chunks("1 D", "1 min", datetime(2024, 3, 1))


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 400),
    st.sampled_from(list(DurationUnit)),
    st.sampled_from(
        ["1 secs", "5 secs", "30 secs", "1 min", "2 mins", "5 mins", "1 hour", "1 day"]
    ),
)
def test_chunks_cover_the_request_within_ibs_limits(
    count: int, unit: DurationUnit, bar: str
) -> None:
    total = Duration(count if unit is not DurationUnit.SECONDS else count * 100, unit)
    limit = max_duration(parse_bar_size(bar))
    assume(total.calendar_s <= 200 * limit.calendar_s)
    chunks = plan_chunks(total, bar, END)
    assert chunks[-1].end_utc == END
    assert chunks[0].start_utc <= END - timedelta(seconds=total.calendar_s)
    for chunk in chunks:
        assert chunk.duration.calendar_s <= max(limit.calendar_s, total.calendar_s)
        if len(chunks) > 1:
            assert chunk.duration.unit is limit.unit
    for older, newer in pairwise(chunks):
        assert older.end_utc == newer.start_utc


# ---------------------------------------------------------------- stitching


def bars(symbol: str, start: datetime, n: int, close0: float = 100.0, step_s: int = 60) -> pa.Table:
    ts = [start + timedelta(seconds=step_s * i) for i in range(n)]
    close = [close0 + i for i in range(n)]
    return pa.table(
        {
            "ts": pa.array(ts, type=pa.timestamp("ns", tz="UTC")),
            "symbol": [symbol] * n,
            "open": close,
            "high": close,
            "low": close,
            "close": close,
            "volume": [100.0] * n,
            "wap": close,
            "bar_count": pa.array([1] * n, type=pa.int64()),
        },
        schema=bars_schema(),
    )


T0 = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)


def test_stitch_drops_duplicate_bars_newest_table_winning() -> None:
    older = bars("AAPL", T0, 5, close0=100.0)
    newer = bars("AAPL", T0 + timedelta(minutes=3), 5, close0=200.0)
    stitched = stitch_bars([older, newer])
    assert stitched.num_rows == 8
    assert stitched.column("close").to_pylist() == [100, 101, 102, 200, 201, 202, 203, 204]
    assert stitched.schema == bars_schema()


def test_stitch_sorts_out_of_order_chunks() -> None:
    a = bars("AAPL", T0, 3)
    b = bars("AAPL", T0 + timedelta(minutes=3), 3, close0=103.0)
    stitched = stitch_bars([b, a])
    assert stitched.column("close").to_pylist() == [100, 101, 102, 103, 104, 105]


def test_stitch_keeps_symbols_apart() -> None:
    stitched = stitch_bars([bars("AAPL", T0, 3), bars("MSFT", T0, 3), bars("AAPL", T0, 3)])
    assert stitched.num_rows == 6
    assert sorted(set(stitched.column("symbol").to_pylist())) == ["AAPL", "MSFT"]


def test_stitch_of_empty_tables_is_empty_with_schema() -> None:
    stitched = stitch_bars([bars("AAPL", T0, 0)])
    assert stitched.num_rows == 0
    assert stitched.schema == bars_schema()


def test_thirty_days_chunked_and_stitched_has_every_bar_once() -> None:
    """30 D x 1 min: one table per planned chunk, overlapping by 5 bars, stitched back."""
    chunks = plan_chunks("30 D", "1 min", END)
    tables = []
    for chunk in chunks:
        session_open = chunk.end_utc.replace(hour=14, minute=30) - timedelta(minutes=5)
        tables.append(bars("AAPL", session_open, 395))
    stitched = stitch_bars(tables)
    ts = stitched.column("ts").cast(pa.int64()).to_numpy()
    assert stitched.num_rows == 30 * 395
    assert np.all(np.diff(ts) > 0)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 300), st.lists(st.tuples(st.integers(0, 299), st.integers(1, 80)), max_size=12)
)
def test_stitching_overlapping_slices_gives_back_the_series(
    n: int, slices: list[tuple[int, int]]
) -> None:
    full = bars("AAPL", T0, n)
    pieces = [full.slice(min(start, n - 1), length) for start, length in slices] + [full]
    random.Random(n).shuffle(pieces)
    assert stitch_bars(pieces).equals(full)


def weekday_sessions(first: datetime, days: int) -> list[tuple[datetime, datetime]]:
    """(open, close) of every weekday from `first` (a date at 00:00 UTC) for `days` days."""
    out = []
    for d in range(days):
        day = first + timedelta(days=d)
        if day.weekday() < 5:
            out.append((day.replace(hour=14, minute=30), day.replace(hour=21)))
    return out


SESSIONS = weekday_sessions(datetime(2024, 1, 1, tzinfo=UTC), 120)


def test_session_chunks_skip_closed_days() -> None:
    chunks = plan_chunks("30 D", "1 min", datetime(2024, 3, 29, 21, 0, tzinfo=UTC), SESSIONS)
    assert len(chunks) == 30
    assert all(str(c.duration) == "1 D" for c in chunks)
    assert all(c.end_utc.weekday() < 5 and c.end_utc.hour == 21 for c in chunks)
    assert len({c.end_utc for c in chunks}) == 30
    assert chunks[0].end_utc == datetime(2024, 2, 19, 21, 0, tzinfo=UTC)  # 30 sessions back


def test_session_chunks_from_a_weekend_end_at_fridays_close() -> None:
    saturday = datetime(2024, 3, 30, 12, 0, tzinfo=UTC)
    chunks = plan_chunks("2 D", "1 min", saturday, SESSIONS)
    assert [c.end_utc for c in chunks] == [
        datetime(2024, 3, 28, 21, 0, tzinfo=UTC),
        datetime(2024, 3, 29, 21, 0, tzinfo=UTC),
    ]


def test_session_chunks_end_inside_an_open_session() -> None:
    midday = datetime(2024, 3, 28, 17, 0, tzinfo=UTC)
    chunks = plan_chunks("2 D", "1 min", midday, SESSIONS)
    assert [c.end_utc for c in chunks] == [datetime(2024, 3, 27, 21, 0, tzinfo=UTC), midday]


def test_session_chunks_of_two_minute_bars_take_two_sessions_each() -> None:
    chunks = plan_chunks("1 W", "2 mins", datetime(2024, 3, 29, 21, 0, tzinfo=UTC), SESSIONS)
    assert [str(c.duration) for c in chunks] == ["1 D", "2 D", "2 D"]
    assert chunks[0].end_utc == datetime(2024, 3, 25, 21, 0, tzinfo=UTC)


def test_session_chunks_stop_at_the_first_known_session() -> None:
    few = SESSIONS[:3]
    chunks = plan_chunks("30 D", "1 min", datetime(2024, 1, 31, tzinfo=UTC), few)
    assert [c.end_utc for c in chunks] == [close for _, close in few]


@settings(max_examples=100, deadline=None)
@given(arrivals_strategy)
def test_the_sims_ledger_accepts_every_scheduled_request(arrivals: list[Arrival]) -> None:
    """Client and server agree: the sim's `PacingLedger` (written separately) refuses nothing."""
    sent, _ = run_scheduler(SMALL_RULES, arrivals)
    ledger = PacingLedger(SMALL_RULES)
    open_ids: set[int] = set()
    for i, request in enumerate(sent):  # in send order; answers ending by now close first
        for j in sorted(open_ids):
            done_s = sent[j].done_s
            if done_s is not None and done_s <= request.sent_s:
                ledger.close(j)
                open_ids.discard(j)
        if ledger.applies_to(parse_bar_size(request.key.bar_size).seconds):
            assert ledger.admit(request.key, request.sent_s, i) is None, (i, request.sent_s)
            open_ids.add(i)
