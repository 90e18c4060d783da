"""IB's historical-data pacing rules, as data, shared by the client scheduler and the sim.

Pure: no I/O, no clock of its own (callers pass times in seconds). The same `PacingRules`
value drives `ibdesk sim` (which answers a violation with error 162) and the scheduler of
the IB layer (which spaces requests so IB never has to refuse one). Tests scale the rules
down with `PacingRules.scaled()` so they do not wait ten minutes.

Rules (IB "Historical Data Limitations", bars of 30 seconds or less):
- no identical request within 15 s;
- no 6 or more requests for the same contract, exchange and tick type within 2 s;
- no more than 60 requests within any 10-minute period;
- no more than 50 requests open at once;
- a BID_ASK request counts twice.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import numpy as np
import pyarrow as pa

from ibdesk.domain.bars import (
    BarSize,
    Duration,
    DurationUnit,
    max_duration,
    parse_bar_size,
    parse_duration,
)
from ibdesk.errors import UserInputError


@dataclass(frozen=True, slots=True)
class PacingRules:
    """The limits, in seconds and counts; `weight_bid_ask` is how much a BID_ASK request counts."""

    identical_window_s: float = 15.0
    same_contract_window_s: float = 2.0
    same_contract_max: int = 5  # 6 or more within the window is a violation
    rolling_window_s: float = 600.0
    rolling_max: int = 60
    max_open: int = 50
    weight_bid_ask: int = 2
    small_bar_max_s: float = 30.0  # the rules apply to bars of this size or smaller

    def scaled(self, factor: float) -> PacingRules:
        """The same rules with every time window multiplied by `factor` (counts unchanged)."""
        return PacingRules(
            identical_window_s=self.identical_window_s * factor,
            same_contract_window_s=self.same_contract_window_s * factor,
            same_contract_max=self.same_contract_max,
            rolling_window_s=self.rolling_window_s * factor,
            rolling_max=self.rolling_max,
            max_open=self.max_open,
            weight_bid_ask=self.weight_bid_ask,
            small_bar_max_s=self.small_bar_max_s,
        )


IB_PACING_RULES = PacingRules()


@dataclass(frozen=True, slots=True)
class HistoricalRequestKey:
    """What makes two historical requests "identical" or "for the same contract" to IB."""

    con_id: int
    exchange: str
    what_to_show: str
    end: str
    duration: str
    bar_size: str
    use_rth: bool

    @property
    def contract_key(self) -> tuple[int, str, str]:
        return (self.con_id, self.exchange, self.what_to_show)

    @property
    def weight(self) -> int:
        return 2 if self.what_to_show.upper() == "BID_ASK" else 1


# --------------------------------------------------------------------------------------
# Client side: the reference violation checker, the scheduler, and the minimum schedule.
# A window rule counts a request sent at `s` for a later time `t` while `s + window > t`;
# written that way everywhere so a request sent exactly at `s + window` is allowed and the
# scheduler's answer and the checker agree to the last bit of floating point.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SentRequest:
    """A historical request as sent: when, and when its answer ended (None = still open)."""

    key: HistoricalRequestKey
    sent_s: float
    done_s: float | None = None


@dataclass(frozen=True, slots=True)
class RequestViolation:
    """Request number `index` (in the list given to `find_violations`) broke `rule`.

    `rule` is a `PacingRule` (defined with the server-side `PacingLedger` below).
    """

    rule: PacingRule
    index: int
    key: HistoricalRequestKey
    sent_s: float


def _bar_seconds(bar_size: str) -> float | None:
    try:
        return float(parse_bar_size(bar_size).seconds)
    except UserInputError:
        return None


def window_rules_apply(rules: PacingRules, key: HistoricalRequestKey) -> bool:
    """Whether the identical / same-contract / rolling rules cover `key`.

    IB applies them to bars of `rules.small_bar_max_s` (30 s) or less; an unknown bar size
    is treated as covered. Set `small_bar_max_s=math.inf` to pace every request. The
    open-request limit covers every historical request.
    """
    bar_s = _bar_seconds(key.bar_size)
    return bar_s is None or bar_s <= rules.small_bar_max_s


def find_violations(
    rules: PacingRules,
    sent: Sequence[SentRequest | tuple[HistoricalRequestKey, float]],
) -> list[RequestViolation]:
    """Every rule broken by a sequence of sent requests: the reference the scheduler obeys.

    Deliberately brute force (quadratic) and independent of `PacingScheduler`. Requests are
    taken in send-time order (ties in list order); a `(key, t)` tuple is a request that
    never completed. A BID_ASK request counts twice everywhere (same-contract, rolling and
    open counts), as the sim's `PacingLedger` counts it.
    """
    items = [s if isinstance(s, SentRequest) else SentRequest(s[0], s[1]) for s in sent]
    order = sorted(range(len(items)), key=lambda i: (items[i].sent_s, i))
    found: list[RequestViolation] = []
    for pos, i in enumerate(order):
        req = items[i]
        t = req.sent_s
        earlier = [items[j] for j in order[:pos]]
        open_before = sum(e.key.weight for e in earlier if e.done_s is None or e.done_s > t)
        if open_before + req.key.weight > rules.max_open:
            found.append(RequestViolation(PacingRule.MAX_OPEN, i, req.key, t))
        if not window_rules_apply(rules, req.key):
            continue
        paced = [e for e in earlier if window_rules_apply(rules, e.key)]
        if any(e.key == req.key and e.sent_s + rules.identical_window_s > t for e in paced):
            found.append(RequestViolation(PacingRule.IDENTICAL, i, req.key, t))
        same = sum(
            e.key.weight
            for e in paced
            if e.key.contract_key == req.key.contract_key
            and e.sent_s + rules.same_contract_window_s > t
        )
        if same + req.key.weight > rules.same_contract_max:
            found.append(RequestViolation(PacingRule.SAME_CONTRACT, i, req.key, t))
        rolling = sum(e.key.weight for e in paced if e.sent_s + rules.rolling_window_s > t)
        if rolling + req.key.weight > rules.rolling_max:
            found.append(RequestViolation(PacingRule.ROLLING, i, req.key, t))
    return found


def _window_bound(
    entries: deque[tuple[float, int]], window_s: float, max_weight: int, weight: int
) -> float:
    """Earliest t at which `weight` more fits: all entries older than the budget must age out."""
    budget = max_weight - weight
    if budget < 0:
        raise ValueError(f"a request of weight {weight} can never fit a limit of {max_weight}")
    total = 0
    for sent_s, w in reversed(entries):
        total += w
        if total > budget:
            return sent_s + window_s
    return -math.inf


class PacingScheduler:
    """Spaces historical requests so that IB never has to refuse one (error 162).

    Pure and clock-free: callers pass `now_s` (monotonic seconds). Ask `next_allowed_s`,
    send at (or after) that time, then `record_sent`; call `record_done` when the answer
    (or an error) ends the request. A request sent at `next_allowed_s` breaks no rule of
    `find_violations`, and that time is the earliest such time not before `now_s` and the
    last send (time never runs backwards). `math.inf` means "wait for a request to finish".
    `margin_s` pads every window for clocks that disagree with IB's (0 = exact).
    """

    def __init__(self, rules: PacingRules = IB_PACING_RULES, *, margin_s: float = 0.0) -> None:
        self._rules = rules
        self._margin_s = margin_s
        self._identical_last: dict[HistoricalRequestKey, float] = {}
        self._identical_order: deque[tuple[float, HistoricalRequestKey]] = deque()
        self._by_contract: dict[tuple[int, str, str], deque[tuple[float, int]]] = {}
        self._all: deque[tuple[float, int]] = deque()
        self._open: Counter[HistoricalRequestKey] = Counter()
        self._latest_s = -math.inf
        self._applies: dict[str, bool] = {}

    @property
    def rules(self) -> PacingRules:
        return self._rules

    @property
    def open_count(self) -> int:
        """Requests sent and not yet done."""
        return self._open.total()

    @property
    def open_weight(self) -> int:
        """Open requests as the open limit counts them (BID_ASK twice)."""
        return sum(key.weight * n for key, n in self._open.items())

    def _paced(self, key: HistoricalRequestKey) -> bool:
        cached = self._applies.get(key.bar_size)
        if cached is None:
            cached = window_rules_apply(self._rules, key)
            self._applies[key.bar_size] = cached
        return cached

    def next_allowed_s(self, key: HistoricalRequestKey, now_s: float) -> float:
        """Earliest time >= `now_s` at which `key` may be sent without breaking a rule."""
        rules = self._rules
        if self.open_weight + key.weight > rules.max_open:
            return math.inf
        earliest = max(now_s, self._latest_s)
        if not self._paced(key):
            return earliest
        pad = self._margin_s
        last = self._identical_last.get(key)
        if last is not None:
            earliest = max(earliest, last + rules.identical_window_s + pad)
        contract = self._by_contract.get(key.contract_key)
        if contract:
            bound = _window_bound(
                contract, rules.same_contract_window_s, rules.same_contract_max, key.weight
            )
            earliest = max(earliest, bound + pad)
        bound = _window_bound(self._all, rules.rolling_window_s, rules.rolling_max, key.weight)
        return max(earliest, bound + pad)

    def record_sent(self, key: HistoricalRequestKey, now_s: float) -> None:
        """Note that `key` went out at `now_s` (it stays open until `record_done`)."""
        self._open[key] += 1
        self._latest_s = max(self._latest_s, now_s)
        if not self._paced(key):
            return
        rules = self._rules
        self._identical_last[key] = now_s
        self._identical_order.append((now_s, key))
        while self._identical_order:
            sent_s, old = self._identical_order[0]
            if sent_s + rules.identical_window_s > now_s:
                break
            self._identical_order.popleft()
            if self._identical_last.get(old) == sent_s:
                del self._identical_last[old]
        contract = self._by_contract.setdefault(key.contract_key, deque())
        contract.append((now_s, key.weight))
        while contract and contract[0][0] + rules.same_contract_window_s <= now_s:
            contract.popleft()
        self._all.append((now_s, key.weight))
        while self._all and self._all[0][0] + rules.rolling_window_s <= now_s:
            self._all.popleft()

    def record_done(self, key: HistoricalRequestKey) -> None:
        """Note that the answer to `key` ended (data, end marker or error)."""
        if self._open[key] <= 0:
            raise ValueError(f"no open historical request for {key}")
        self._open[key] -= 1
        if self._open[key] == 0:
            del self._open[key]


def minimum_send_times(
    rules: PacingRules, keys: Sequence[HistoricalRequestKey], start_s: float = 0.0
) -> list[float]:
    """The earliest send time of each request, in order, when answers are instantaneous.

    This is the fastest any client can go for that sequence: each constraint is of the form
    "t >= an earlier send + a window", so sending each request as early as allowed never
    delays a later one. Benchmarks divide their wall time by `minimum_total_s`.
    """
    scheduler = PacingScheduler(rules)
    times: list[float] = []
    for key in keys:
        t = scheduler.next_allowed_s(key, start_s)
        scheduler.record_sent(key, t)
        scheduler.record_done(key)
        times.append(t)
    return times


def minimum_total_s(
    rules: PacingRules, keys: Sequence[HistoricalRequestKey], start_s: float = 0.0
) -> float:
    """Seconds from `start_s` to the last send of the fastest rule-abiding schedule."""
    times = minimum_send_times(rules, keys, start_s)
    return times[-1] - start_s if times else 0.0


# --------------------------------------------------------------------------------------
# Long requests: split into chunks IB serves in one request, stitch the answers.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistoricalChunk:
    """One request of a split download: `duration` of bars ending at `end_utc`."""

    end_utc: datetime
    duration: Duration

    @property
    def start_utc(self) -> datetime:
        """Calendar start covered (months/years counted generously, see `Duration`)."""
        return self.end_utc - timedelta(seconds=self.duration.calendar_s)

    @property
    def ib_end(self) -> str:
        """`end_utc` in the form IB accepts for UTC end times (`YYYYMMDD-HH:MM:SS`)."""
        return self.end_utc.astimezone(UTC).strftime("%Y%m%d-%H:%M:%S")


def fits_one_request(duration: Duration, bar_size: BarSize) -> bool:
    """True when IB serves `duration` of `bar_size` bars in a single request."""
    return duration.calendar_s <= max_duration(bar_size).calendar_s


def plan_chunks(
    duration: Duration | str,
    bar_size: BarSize | str,
    end_utc: datetime,
    sessions: Sequence[tuple[datetime, datetime]] | None = None,
) -> list[HistoricalChunk]:
    """Split `duration` of `bar_size` bars ending at `end_utc` into requests IB allows.

    Chunks use IB's longest duration for the bar size (`ibdesk.domain.bars.max_duration`),
    walk back from `end_utc` without gaps and are returned oldest first; the oldest may be
    shorter. A duration IB serves at once stays one chunk. Answers may overlap at the edges:
    `stitch_bars` removes the duplicates.

    By default days are calendar days. IB counts `D` in trading sessions; pass the
    exchange's `sessions` as aware (open, close) pairs in ascending order to plan in
    sessions instead: when the per-request limit is in days (1-2 min bars) and the duration
    in days or weeks (a week = 5 sessions), chunks end at session closes (or at `end_utc`
    inside a session still open) and cover `limit` sessions each, so no request falls on a
    closed day and no session is fetched twice.
    """
    if end_utc.tzinfo is None:
        raise ValueError("end_utc must be timezone-aware")
    total = parse_duration(duration) if isinstance(duration, str) else duration
    bar = parse_bar_size(bar_size) if isinstance(bar_size, str) else bar_size
    if fits_one_request(total, bar):
        return [HistoricalChunk(end_utc, total)]
    limit = max_duration(bar)
    day_units = (DurationUnit.DAYS, DurationUnit.WEEKS)
    if sessions is not None and limit.unit is DurationUnit.DAYS and total.unit in day_units:
        return _plan_session_chunks(int(total.sessions), limit, end_utc, sessions)
    step_s = limit.calendar_s
    unit_s = Duration(1, limit.unit).calendar_s
    chunks: list[HistoricalChunk] = []
    covered_s = 0
    while covered_s < total.calendar_s:
        remaining_s = min(step_s, total.calendar_s - covered_s)
        count = -(-remaining_s // unit_s)
        end = end_utc - timedelta(seconds=covered_s)
        chunks.append(HistoricalChunk(end, Duration(count, limit.unit)))
        covered_s += step_s
    chunks.reverse()
    return chunks


def _plan_session_chunks(
    count: int,
    limit: Duration,
    end_utc: datetime,
    sessions: Sequence[tuple[datetime, datetime]],
) -> list[HistoricalChunk]:
    if any(o.tzinfo is None or c.tzinfo is None for o, c in sessions):
        raise ValueError("sessions must be timezone-aware (open, close) pairs")
    ends = [min(close, end_utc) for open_, close in sessions if open_ < end_utc]
    ends.reverse()  # newest first
    chunks: list[HistoricalChunk] = []
    covered = 0
    while covered < min(count, len(ends)):
        size = min(limit.count, count - covered)
        chunks.append(HistoricalChunk(ends[covered], Duration(size, DurationUnit.DAYS)))
        covered += limit.count
    chunks.reverse()
    return chunks


def stitch_bars(tables: Sequence[pa.Table]) -> pa.Table:
    """One table from chunk answers: sorted by (symbol, ts), one row per (symbol, ts).

    Where answers overlap, the row from the table given LAST wins, so pass chunks oldest
    first (as `plan_chunks` orders them) and a newer answer replaces an older partial bar.
    All tables must share the first table's columns (the bars schema); empty input -> error.
    """
    if not tables:
        raise ValueError("stitch_bars needs at least one table")
    schema = tables[0].schema
    combined = pa.concat_tables([t.select(schema.names).cast(schema) for t in tables])
    if combined.num_rows == 0:
        return combined
    ts = combined.column("ts").cast(pa.int64()).to_numpy()
    if "symbol" in schema.names:
        symbols = combined.column("symbol").combine_chunks().dictionary_encode()
        sym = symbols.indices.to_numpy(zero_copy_only=False)
    else:
        sym = np.zeros(len(ts), dtype=np.int64)
    row = np.arange(len(ts))
    order = np.lexsort((row, ts, sym))
    ts_sorted = ts[order]
    sym_sorted = sym[order]
    keep = np.ones(len(order), dtype=bool)
    keep[:-1] = (ts_sorted[1:] != ts_sorted[:-1]) | (sym_sorted[1:] != sym_sorted[:-1])
    return combined.take(pa.array(order[keep]))


class PacingRule(StrEnum):
    """Which of IB's pacing rules a request broke."""

    IDENTICAL = "identical request within the window"
    SAME_CONTRACT = "too many requests for the same contract, exchange and tick type"
    ROLLING = "too many requests in the rolling window"
    MAX_OPEN = "too many requests open at once"


@dataclass(frozen=True, slots=True)
class PacingViolation:
    rule: PacingRule
    key: HistoricalRequestKey


class PacingLedger:
    """The requests one connection made, checked against `PacingRules` (the server's view).

    Pure: callers pass `now_s` (any monotonic seconds). `admit` checks a request and, when it
    passes, records it; a refused request is not recorded. `close` ends an open request
    (answered or cancelled). Self-contained: the client-side scheduler lives elsewhere.
    """

    def __init__(self, rules: PacingRules = IB_PACING_RULES) -> None:
        self.rules = rules
        self._history: deque[tuple[float, HistoricalRequestKey]] = deque()
        self._open: dict[int, int] = {}

    def applies_to(self, bar_size_s: float) -> bool:
        return bar_size_s <= self.rules.small_bar_max_s

    def check(self, key: HistoricalRequestKey, now_s: float) -> PacingViolation | None:
        rules = self.rules
        self._expire(now_s)
        if sum(self._open.values()) + key.weight > rules.max_open:
            return PacingViolation(PacingRule.MAX_OPEN, key)
        rolling = 0
        same_contract = 0
        for when, seen in self._history:
            rolling += seen.weight
            if now_s - when < rules.identical_window_s and seen == key:
                return PacingViolation(PacingRule.IDENTICAL, key)
            if (
                now_s - when < rules.same_contract_window_s
                and seen.contract_key == key.contract_key
            ):
                same_contract += seen.weight
        if same_contract + key.weight > rules.same_contract_max:
            return PacingViolation(PacingRule.SAME_CONTRACT, key)
        if rolling + key.weight > rules.rolling_max:
            return PacingViolation(PacingRule.ROLLING, key)
        return None

    def admit(
        self, key: HistoricalRequestKey, now_s: float, request_id: int
    ) -> PacingViolation | None:
        violation = self.check(key, now_s)
        if violation is None:
            self._history.append((now_s, key))
            self._open[request_id] = key.weight
        return violation

    def close(self, request_id: int) -> None:
        self._open.pop(request_id, None)

    @property
    def open_weight(self) -> int:
        return sum(self._open.values())

    def _expire(self, now_s: float) -> None:
        horizon = max(self.rules.rolling_window_s, self.rules.identical_window_s)
        while self._history and now_s - self._history[0][0] >= horizon:
            self._history.popleft()
