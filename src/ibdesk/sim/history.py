"""The sim's past: per-session trade tapes and the bars aggregated from them.

Pure (numpy only, no I/O). Every (symbol, session) tape is generated from the seed alone,
so history is the same for the same seed and clock, and every bar of every size is the
aggregation of that tape: TRADES from trades, MIDPOINT and BID_ASK from the quote in force
at each trade. Daily closes chain from the universe's reference price, which is the
previous close of the session the clock is in.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from itertools import pairwise
from zoneinfo import ZoneInfo

import numpy as np

from ibdesk.calendar import (
    NS,
    Session,
    SessionCalendar,
    et_midnight_ns,
    months_back,
    to_et,
)
from ibdesk.domain import bars as domain_bars
from ibdesk.domain.bars import BarSize, BarUnit, Duration, DurationUnit
from ibdesk.domain.hours import ET
from ibdesk.errors import UserInputError
from ibdesk.sim.universe import Ticker

MINUTE_NS = 60 * NS


class WhatToShow(StrEnum):
    TRADES = "TRADES"
    MIDPOINT = "MIDPOINT"
    BID_ASK = "BID_ASK"


def parse_bar_size(text: str) -> BarSize:
    """A request's barSizeSetting, read by the one parser (`ibdesk.domain.bars`).

    Bad text is a `ValueError` worded as the sim's error 162 words it (`invalid bar size
    '7 mins'`), not the user error with its list of accepted sizes.
    """
    try:
        return domain_bars.parse_bar_size(text)
    except UserInputError:
        raise ValueError(f"invalid bar size {text!r}") from None


def parse_duration(text: str) -> Duration:
    """A request's durationStr (`60 S`, `1 D`, `2 W`, `1 M`, `1 Y`) by the one parser;
    bad text is a `ValueError` worded for the sim's error 162."""
    try:
        return domain_bars.parse_duration(text)
    except UserInputError:
        raise ValueError(f"invalid duration {text!r}") from None


def parse_end(text: str, now_ns: int) -> int:
    """A request's endDateTime: empty = now; `YYYYMMDD HH:MM:SS [TZ]` (ET when no zone);
    `YYYYMMDD-HH:MM:SS` is UTC."""
    text = text.strip()
    if not text:
        return now_ns
    try:
        if "-" in text[:9] and len(text) >= 17 and text[8] == "-":
            moment = datetime.strptime(text[:17], "%Y%m%d-%H:%M:%S").replace(tzinfo=ZoneInfo("UTC"))
        else:
            parts = text.split()
            moment = datetime.strptime(parts[0] + " " + parts[1], "%Y%m%d %H:%M:%S")
            zone = ZoneInfo(parts[2]) if len(parts) > 2 else ET
            moment = moment.replace(tzinfo=zone)
    except (ValueError, IndexError, KeyError) as exc:
        raise ValueError(f"invalid end date/time {text!r}") from exc
    return int(moment.timestamp()) * NS


@dataclass(frozen=True, slots=True)
class Tape:
    """Trades in time order; prices in cents; the quote (bid/ask) in force at each trade."""

    ts_ns: np.ndarray
    price_c: np.ndarray
    size: np.ndarray
    side: np.ndarray
    bid_c: np.ndarray
    ask_c: np.ndarray

    def __len__(self) -> int:
        return len(self.ts_ns)

    def between(self, start_ns: int, end_ns: int) -> Tape:
        lo = int(np.searchsorted(self.ts_ns, start_ns, side="left"))
        hi = int(np.searchsorted(self.ts_ns, end_ns, side="left"))
        return Tape(
            self.ts_ns[lo:hi],
            self.price_c[lo:hi],
            self.size[lo:hi],
            self.side[lo:hi],
            self.bid_c[lo:hi],
            self.ask_c[lo:hi],
        )

    @staticmethod
    def concat(parts: list[Tape]) -> Tape:
        if len(parts) == 1:
            return parts[0]
        return Tape(*(np.concatenate([getattr(p, name) for p in parts]) for name in _TAPE_FIELDS))

    @staticmethod
    def empty() -> Tape:
        z = np.zeros(0, dtype=np.int64)
        return Tape(z, z, z, z.astype(np.int8), z, z)


_TAPE_FIELDS = ("ts_ns", "price_c", "size", "side", "bid_c", "ask_c")


def _daily_vol(ticker: Ticker) -> float:
    return 0.035 if ticker.is_small_cap else 0.016


class TapeModel:
    """Generates each (symbol, session) trade tape from the seed; `current` is the session
    the clock is in, whose previous close is the ticker's reference price."""

    def __init__(self, seed: int, calendar: SessionCalendar, current: int, cache_size: int = 256):
        self.seed = seed
        self.calendar = calendar
        self.current = current
        self._cache: OrderedDict[tuple[str, int], Tape] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()  # history requests run on worker threads

    @functools.lru_cache(maxsize=512)  # noqa: B019 - one model per server, lives as long
    def closes_c(self, ticker: Ticker) -> np.ndarray:
        """Official (regular-hours) close of every calendar session, in cents."""
        rng = np.random.default_rng([self.seed, ticker.con_id, 1])
        returns = rng.normal(0.0, _daily_vol(ticker), len(self.calendar))
        anchor = self.current - 1
        log_ref = np.log(ticker.ref_price_usd)
        cum = np.cumsum(returns)
        log_close = log_ref + (cum - cum[anchor])
        return np.clip(np.rint(np.exp(log_close) * 100), 5, 10_000_000).astype(np.int64)

    def prev_close_c(self, ticker: Ticker, index: int) -> int:
        return int(self.closes_c(ticker)[index - 1])

    def gap(self, ticker: Ticker, index: int) -> float:
        """The session's opening gap as a fraction of the previous close."""
        if index == self.current and ticker.gap_pct:
            return ticker.gap_pct / 100.0
        rng = np.random.default_rng([self.seed, ticker.con_id, index, 2])
        return float(rng.normal(0.0, 0.004))

    def tape(self, ticker: Ticker, session: Session) -> Tape:
        key = (ticker.symbol, session.index)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        tape = self._generate(ticker, session)
        with self._lock:
            self._cache[key] = tape
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return tape

    def _generate(self, ticker: Ticker, session: Session) -> Tape:
        idx = session.index
        rng = np.random.default_rng([self.seed, ticker.con_id, idx, 3])
        boost = ticker.volume_boost if idx == self.current else 1.0
        minutes = (session.ext_close_ns - session.ext_open_ns) // MINUTE_NS
        minute_start = session.ext_open_ns + np.arange(minutes, dtype=np.int64) * MINUTE_NS
        in_rth = (minute_start >= session.open_ns) & (minute_start < session.close_ns)
        pre = minute_start < session.open_ns
        rate = np.where(in_rth, 10.0, np.where(pre, 1.0 * boost, 0.6))
        counts = 1 + rng.poisson(rate)
        ts = np.repeat(minute_start, counts) + rng.integers(0, 60_000, counts.sum()) * 1_000_000
        ts.sort()
        n = len(ts)
        open_c = max(1, round(self.prev_close_c(ticker, idx) * (1.0 + self.gap(ticker, idx))))
        close_c = int(self.closes_c(ticker)[idx])
        n_main = int(np.searchsorted(ts, session.close_ns, side="left"))
        vol = _daily_vol(ticker)
        steps = rng.normal(0.0, vol / np.sqrt(max(n_main, 1)), n)
        walk = np.concatenate(([0.0], np.cumsum(steps[1:n_main])))
        frac = np.linspace(0.0, 1.0, n_main) if n_main > 1 else np.zeros(n_main)
        log_o, log_c = np.log(open_c), np.log(close_c)
        main = log_o + walk - frac * walk[-1] + frac * (log_c - log_o) if n_main else walk
        post = log_c + np.cumsum(steps[n_main:]) * 0.3
        log_px = np.concatenate((main, post))
        price = np.maximum(1, np.rint(np.exp(log_px))).astype(np.int64)
        if n_main:
            price[n_main - 1] = close_c
        weights = rng.exponential(1.0, n) * np.where(
            (ts >= session.open_ns) & (ts < session.close_ns), 1.0, 0.4 * boost
        )
        target = ticker.adv_shares * boost * float(np.exp(rng.normal(0.0, 0.25)))
        size = np.maximum(1, np.rint(weights / weights.sum() * target)).astype(np.int64)
        change = np.diff(price, prepend=price[0])
        coin = rng.integers(0, 2, n) * 2 - 1
        side = np.where(change > 0, 1, np.where(change < 0, -1, coin)).astype(np.int8)
        spread = rng.integers(1, 4, n) if ticker.is_small_cap else np.ones(n, dtype=np.int64)
        bid = np.where(side > 0, price - spread, price)
        bid = np.maximum(bid, 1)
        ask = np.where(side > 0, price, price + spread)
        ask = np.maximum(ask, bid + 1)
        return Tape(ts, price, size, side, bid.astype(np.int64), ask.astype(np.int64))


@dataclass(frozen=True, slots=True)
class BarSet:
    """Columnar bars: `label` is epoch seconds (intraday) or a `YYYYMMDD` day (daily+)."""

    start_ns: np.ndarray
    day_label: list[str] | None
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    wap: np.ndarray
    count: np.ndarray

    def __len__(self) -> int:
        return len(self.start_ns)


@dataclass(frozen=True, slots=True)
class BarRequest:
    end_ns: int
    duration: Duration
    bar_size: BarSize
    what: WhatToShow
    use_rth: bool


def sessions_for(calendar: SessionCalendar, request: BarRequest) -> tuple[list[Session], int]:
    """The sessions a request covers (oldest first) and the earliest time it may include."""
    end_ns = request.end_ns
    last = calendar.latest_started(end_ns - 1, request.use_rth)
    if last < 0:
        return [], end_ns
    duration = request.duration
    if duration.unit is DurationUnit.SECONDS:
        start_ns = end_ns - duration.count * NS
        first = max(0, calendar.latest_started(start_ns, request.use_rth))
        return [calendar.session(i) for i in range(first, last + 1)], start_ns
    if duration.unit is DurationUnit.DAYS:
        first = max(0, last - duration.count + 1)
        return [calendar.session(i) for i in range(first, last + 1)], 0
    end_day = to_et(end_ns).date()
    if duration.unit is DurationUnit.WEEKS:
        from_day = date.fromordinal(end_day.toordinal() - 7 * duration.count + 1)
    else:
        months = duration.count * (12 if duration.unit is DurationUnit.YEARS else 1)
        from_day = date.fromordinal(months_back(end_day, months).toordinal() + 1)
    first = calendar.first_on_or_after(from_day)
    return [calendar.session(i) for i in range(first, last + 1)], 0


def bin_edges(
    session: Session, bar_size: BarSize, use_rth: bool, lo_ns: int, hi_ns: int
) -> np.ndarray:
    """Edges of the bars of one session clipped to [lo, hi): the window start, then every
    multiple of the bar size (counted from ET midnight), then the window end."""
    w0, w1 = session.window(use_rth)
    w0, w1 = max(w0, lo_ns), min(w1, hi_ns)
    if w0 >= w1:
        return np.zeros(0, dtype=np.int64)
    if not bar_size.is_intraday:
        return np.array([w0, w1], dtype=np.int64)
    step = bar_size.seconds * NS
    midnight = et_midnight_ns(session.day)
    first = midnight + ((w0 - midnight) // step + 1) * step
    grid = np.arange(first, w1, step, dtype=np.int64)
    return np.concatenate(([w0], grid, [w1])).astype(np.int64)


def aggregate(tape: Tape, edges: np.ndarray, what: WhatToShow) -> BarSet:
    """Bars over consecutive bins `edges[k]..edges[k+1]`; bins without trades give no bar."""
    if len(edges) < 2 or len(tape) == 0:
        return _empty_bars()
    idx = np.searchsorted(tape.ts_ns, edges, side="left")
    starts, ends = idx[:-1], idx[1:]
    keep = ends > starts
    s, e = starts[keep], ends[keep]
    label = edges[:-1][keep]
    if len(s) == 0:
        return _empty_bars()
    pairs = np.empty(2 * len(s), dtype=np.int64)
    pairs[0::2], pairs[1::2] = s, e

    def reduce(ufunc: np.ufunc, values: np.ndarray) -> np.ndarray:
        padded = np.append(values, values[-1:])
        return ufunc.reduceat(padded, pairs)[0::2]

    count = e - s
    if what is WhatToShow.TRADES:
        price = tape.price_c.astype(np.float64) / 100.0
        volume = reduce(np.add, tape.size)
        notional = reduce(np.add, tape.price_c.astype(np.float64) * tape.size)
        wap = np.round(notional / volume / 100.0, 6)
        return BarSet(
            label,
            None,
            price[s],
            reduce(np.maximum, price),
            reduce(np.minimum, price),
            price[e - 1],
            volume,
            wap,
            count,
        )
    minus_one = np.full(len(s), -1, dtype=np.int64)
    if what is WhatToShow.MIDPOINT:
        mid = (tape.bid_c + tape.ask_c).astype(np.float64) / 200.0
        return BarSet(
            label,
            None,
            mid[s],
            reduce(np.maximum, mid),
            reduce(np.minimum, mid),
            mid[e - 1],
            minus_one,
            minus_one.astype(np.float64),
            minus_one,
        )
    bid = tape.bid_c.astype(np.float64) / 100.0
    ask = tape.ask_c.astype(np.float64) / 100.0
    return BarSet(
        label,
        None,
        np.round(reduce(np.add, bid) / count, 6),
        reduce(np.maximum, ask),
        reduce(np.minimum, bid),
        np.round(reduce(np.add, ask) / count, 6),
        minus_one,
        minus_one.astype(np.float64),
        minus_one,
    )


def _empty_bars() -> BarSet:
    z = np.zeros(0, dtype=np.int64)
    f = z.astype(np.float64)
    return BarSet(z, None, f, f, f, f, z, f, z)


def concat_bars(parts: list[BarSet], labels: list[str] | None = None) -> BarSet:
    if not parts:
        return _empty_bars()
    names = ("start_ns", "open", "high", "low", "close", "volume", "wap", "count")
    cols = {n: np.concatenate([getattr(p, n) for p in parts]) for n in names}
    return BarSet(
        cols["start_ns"],
        labels,
        cols["open"],
        cols["high"],
        cols["low"],
        cols["close"],
        cols["volume"],
        cols["wap"],
        cols["count"],
    )


def group_days(days: list[date], unit: BarUnit) -> list[int]:
    """Start positions of weekly/monthly groups among consecutive session days."""
    starts: list[int] = []
    previous: tuple[int, int] | None = None
    for i, day in enumerate(days):
        key = day.isocalendar()[:2] if unit is BarUnit.WEEKS else (day.year, day.month)
        if key != previous:
            starts.append(i)
            previous = key
    return starts


def build_bars(
    calendar: SessionCalendar,
    request: BarRequest,
    tape_of: Callable[[Session], Tape],
) -> BarSet:
    """The bars a historical request returns, aggregated from `tape_of(session)`."""
    sessions, lo_ns = sessions_for(calendar, request)
    parts: list[BarSet] = []
    days: list[str] = []
    day_values: list[date] = []
    for session in sessions:
        edges = bin_edges(session, request.bar_size, request.use_rth, lo_ns, request.end_ns)
        if len(edges) < 2:
            continue
        tape = tape_of(session).between(int(edges[0]), int(edges[-1]))
        bars = aggregate(tape, edges, request.what)
        if len(bars):
            parts.append(bars)
            if not request.bar_size.is_intraday:
                days.append(session.day.strftime("%Y%m%d"))
                day_values.append(session.day)
    if request.bar_size.is_intraday:
        return concat_bars(parts)
    daily = concat_bars(parts, days)
    if request.bar_size.unit is BarUnit.DAYS:
        return daily
    return _regroup(daily, day_values, request)


def _regroup(daily: BarSet, days: list[date], request: BarRequest) -> BarSet:
    if not len(daily):
        return daily
    starts = group_days(days, request.bar_size.unit)
    bounds = [*starts, len(days)]
    rows = []
    for a, b in pairwise(bounds):
        if request.what is WhatToShow.TRADES:
            vol = int(daily.volume[a:b].sum())
            wap = (
                float(np.round((daily.wap[a:b] * daily.volume[a:b]).sum() / vol, 6)) if vol else 0.0
            )
        else:
            vol, wap = -1, -1.0
        count = int(daily.count[a:b].sum()) if request.what is WhatToShow.TRADES else -1
        rows.append(
            (
                int(daily.start_ns[a]),
                days[a].strftime("%Y%m%d"),
                float(daily.open[a]),
                float(daily.high[a:b].max()),
                float(daily.low[a:b].min()),
                float(daily.close[b - 1]),
                vol,
                wap,
                count,
            )
        )
    cols = list(zip(*rows, strict=True))
    return BarSet(
        np.array(cols[0], dtype=np.int64),
        list(cols[1]),
        np.array(cols[2]),
        np.array(cols[3]),
        np.array(cols[4]),
        np.array(cols[5]),
        np.array(cols[6], dtype=np.int64),
        np.array(cols[7]),
        np.array(cols[8], dtype=np.int64),
    )


def format_bar_time(start_ns: int, format_date: int) -> str:
    """IB's bar date: epoch seconds (formatDate 2) or `YYYYMMDD HH:MM:SS US/Eastern`."""
    if format_date == 2:
        return str(start_ns // NS)
    return to_et(start_ns).strftime("%Y%m%d %H:%M:%S") + " US/Eastern"
