"""XNYS sessions for the whole package (sim, IB layer, store, backfill): hours and holidays.

Pure apart from loading `exchange_calendars` once. Times are UTC epoch nanoseconds.
Extended hours run 04:00-20:00 ET on a full day and 04:00 to four hours after an early
close (17:00 ET) otherwise; the zone and the session clock come from `ibdesk.domain.hours`.
"""

from __future__ import annotations

import bisect
import functools
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

from ibdesk.domain.hours import ET, POST_MARKET_S, PREMARKET_START_S, RTH_SESSION_S

NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Session:
    """One trading day of XNYS; `index` is its position in the calendar (stable for a seed)."""

    index: int
    day: date
    open_ns: int
    close_ns: int
    ext_open_ns: int
    ext_close_ns: int

    @property
    def is_early_close(self) -> bool:
        return self.close_ns - self.open_ns < RTH_SESSION_S * NS

    def window(self, use_rth: bool) -> tuple[int, int]:
        """[start, end) of the session's bars: regular hours or extended hours."""
        return (self.open_ns, self.close_ns) if use_rth else (self.ext_open_ns, self.ext_close_ns)


class SessionCalendar:
    """All XNYS sessions the calendar knows, searchable by time."""

    def __init__(self) -> None:
        import exchange_calendars as xcals
        import pandas as pd

        cal = xcals.get_calendar("XNYS")
        days = cal.sessions
        opens = np.asarray(pd.DatetimeIndex(cal.opens).asi8, dtype=np.int64)
        closes = np.asarray(pd.DatetimeIndex(cal.closes).asi8, dtype=np.int64)
        ext_open = (
            (pd.DatetimeIndex(days) + pd.Timedelta(seconds=PREMARKET_START_S))
            .tz_localize(ET)
            .tz_convert("UTC")
            .asi8
        )
        self._days: list[date] = [d.date() for d in days]
        self._open = opens
        self._close = closes
        self._ext_open = np.asarray(ext_open, dtype=np.int64)
        self._ext_close = closes + POST_MARKET_S * NS
        self._ext_open_list: list[int] = self._ext_open.tolist()
        self._open_list: list[int] = opens.tolist()

    def __len__(self) -> int:
        return len(self._days)

    def session(self, index: int) -> Session:
        return Session(
            index,
            self._days[index],
            int(self._open[index]),
            int(self._close[index]),
            int(self._ext_open[index]),
            int(self._ext_close[index]),
        )

    def latest_started(self, ts_ns: int, use_rth: bool = False) -> int:
        """Index of the most recent session whose window started at or before `ts_ns`."""
        starts = self._open_list if use_rth else self._ext_open_list
        return bisect.bisect_right(starts, ts_ns) - 1

    def index_of_day(self, day: date) -> int | None:
        i = bisect.bisect_left(self._days, day)
        return i if i < len(self._days) and self._days[i] == day else None

    def covers(self, day: date) -> bool:
        """Whether `day` lies within the calendar's range (outside it nothing is known)."""
        return bool(self._days) and self._days[0] <= day <= self._days[-1]

    def session_on(self, day: date) -> Session | None:
        """The session held on `day`; None on a weekend, a holiday or outside the range."""
        i = self.index_of_day(day)
        return None if i is None else self.session(i)

    def sessions_between(self, first: date, last: date) -> list[Session]:
        """The sessions from `first` to `last`, both included, in order."""
        lo, hi = bisect.bisect_left(self._days, first), bisect.bisect_right(self._days, last)
        return [self.session(i) for i in range(lo, hi)]

    def first_on_or_after(self, day: date) -> int:
        return bisect.bisect_left(self._days, day)

    def day(self, index: int) -> date:
        return self._days[index]


@functools.cache
def xnys() -> SessionCalendar:
    """The XNYS calendar, loaded once per process."""
    return SessionCalendar()


def parse_clock(text: str, wall_now: datetime | None = None) -> int:
    """`now` or an ISO-8601 time (naive = ET) as UTC epoch ns; ValueError names the input."""
    if text.strip().lower() == "now":
        now = wall_now or datetime.now(tz=ET)
        return int(now.timestamp() * NS)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"invalid clock {text!r}: expected now or ISO-8601") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ET)
    return int(moment.timestamp()) * NS + moment.microsecond * 1000


def to_et(ts_ns: int) -> datetime:
    return datetime.fromtimestamp(ts_ns / NS, tz=ET)


def et_midnight_ns(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=ET).timestamp()) * NS


def months_back(day: date, months: int) -> date:
    """The same day of month `months` earlier (clamped to the month's end)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    for dd in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(dd, day.day))
        except ValueError:
            continue
    return date(year, month, 28)


def days_back(day: date, days: int) -> date:
    return day - timedelta(days=days)
