"""IB duration strings and bar sizes as typed values, and how many bars a session holds.

Pure and dependency-free (standard library and `ibdesk.errors` only): parsing, validation
and arithmetic; no clock, no I/O. This is the one parser of duration and bar-size text for
the whole package (client, store, pipeline and sim). Bad text raises
`ibdesk.errors.UserInputError` naming the value and listing the accepted forms, so the CLI
can print it as is (exit 2).

IB's own rules (TWS API "Historical Data Limitations", step sizes): a duration is
`"<integer> <unit>"` with unit S, D, W, M or Y; the legal bar sizes are the ones in
`BAR_SIZES`; each bar size has a longest duration IB accepts in one request
(`max_duration`), which the chunk planner in `ibdesk.ib.pacing` uses to split long requests.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum

from ibdesk.domain.hours import RTH_END_S, RTH_SESSION_S, RTH_START_S, SECONDS_PER_DAY
from ibdesk.errors import UserInputError


class DurationUnit(StrEnum):
    """IB duration units: seconds, days, weeks, months, years."""

    SECONDS = "S"
    DAYS = "D"
    WEEKS = "W"
    MONTHS = "M"
    YEARS = "Y"


# Calendar length of one unit, used to split and compare durations. Months and years are
# approximations (IB's own are calendar-based); the chunk planner over-covers, never under.
_UNIT_SECONDS: dict[DurationUnit, int] = {
    DurationUnit.SECONDS: 1,
    DurationUnit.DAYS: SECONDS_PER_DAY,
    DurationUnit.WEEKS: 7 * SECONDS_PER_DAY,
    DurationUnit.MONTHS: 31 * SECONDS_PER_DAY,
    DurationUnit.YEARS: 366 * SECONDS_PER_DAY,
}

# Trading sessions in one unit (US equities), for bar-count estimates.
_UNIT_SESSIONS: dict[DurationUnit, float] = {
    DurationUnit.DAYS: 1.0,
    DurationUnit.WEEKS: 5.0,
    DurationUnit.MONTHS: 21.0,
    DurationUnit.YEARS: 252.0,
}

DURATION_FORMS = '"<n> S" (seconds), "<n> D", "<n> W", "<n> M" or "<n> Y", e.g. "1 D", "3600 S"'

_DURATION_RE = re.compile(r"^\s*(\d+)\s*([A-Za-z])\s*$")


@dataclass(frozen=True, slots=True)
class Duration:
    """An IB duration such as `5 D`; `str()` gives the exact text IB expects."""

    count: int
    unit: DurationUnit

    def __str__(self) -> str:
        return f"{self.count} {self.unit.value}"

    @property
    def calendar_s(self) -> int:
        """Calendar seconds covered (months as 31 days, years as 366: never too short)."""
        return self.count * _UNIT_SECONDS[self.unit]

    @property
    def sessions(self) -> float:
        """Trading sessions covered (D=1, W=5, M=21, Y=252 per unit; S as a share of RTH)."""
        if self.unit is DurationUnit.SECONDS:
            return self.count / RTH_SESSION_S
        return self.count * _UNIT_SESSIONS[self.unit]


def parse_duration(text: str) -> Duration:
    """Parse `"5 D"` (case and spacing tolerated: `"5d"`) into a `Duration`.

    Raises `UserInputError` naming `text` when it is not `<positive integer> <S|D|W|M|Y>`.
    """
    match = _DURATION_RE.match(text) if isinstance(text, str) else None
    if match is None or int(match.group(1)) <= 0:
        raise UserInputError(f"invalid duration {text!r}: accepted forms are {DURATION_FORMS}")
    unit_text = match.group(2).upper()
    try:
        unit = DurationUnit(unit_text)
    except ValueError:
        raise UserInputError(
            f"invalid duration {text!r}: accepted forms are {DURATION_FORMS}"
        ) from None
    return Duration(int(match.group(1)), unit)


class BarUnit(StrEnum):
    """Units of IB bar sizes."""

    SECONDS = "secs"
    MINUTES = "mins"
    HOURS = "hours"
    DAYS = "day"
    WEEKS = "week"
    MONTHS = "month"


_BAR_UNIT_SECONDS: dict[BarUnit, int] = {
    BarUnit.SECONDS: 1,
    BarUnit.MINUTES: 60,
    BarUnit.HOURS: 3600,
    BarUnit.DAYS: SECONDS_PER_DAY,
    BarUnit.WEEKS: 7 * SECONDS_PER_DAY,
    BarUnit.MONTHS: 31 * SECONDS_PER_DAY,
}


@dataclass(frozen=True, slots=True)
class BarSize:
    """A legal IB bar size; `str()` is IB's exact spelling (`1 secs`, `1 min`, `2 mins`, ...)."""

    count: int
    unit: BarUnit

    def __str__(self) -> str:
        if self.unit is BarUnit.MINUTES:
            return f"{self.count} {'min' if self.count == 1 else 'mins'}"
        if self.unit is BarUnit.HOURS:
            return f"{self.count} {'hour' if self.count == 1 else 'hours'}"
        return f"{self.count} {self.unit.value}"

    @property
    def seconds(self) -> int:
        """Length of one bar in seconds (a month counted as 31 days)."""
        return self.count * _BAR_UNIT_SECONDS[self.unit]

    @property
    def folder_name(self) -> str:
        """The data layout's folder name: spaces as underscores (`1_min`, `5_mins`, `1_day`)."""
        return str(self).replace(" ", "_")

    @property
    def is_intraday(self) -> bool:
        return self.seconds < SECONDS_PER_DAY


BAR_SIZES: tuple[BarSize, ...] = (
    BarSize(1, BarUnit.SECONDS),
    BarSize(5, BarUnit.SECONDS),
    BarSize(10, BarUnit.SECONDS),
    BarSize(15, BarUnit.SECONDS),
    BarSize(30, BarUnit.SECONDS),
    BarSize(1, BarUnit.MINUTES),
    BarSize(2, BarUnit.MINUTES),
    BarSize(3, BarUnit.MINUTES),
    BarSize(5, BarUnit.MINUTES),
    BarSize(10, BarUnit.MINUTES),
    BarSize(15, BarUnit.MINUTES),
    BarSize(20, BarUnit.MINUTES),
    BarSize(30, BarUnit.MINUTES),
    BarSize(1, BarUnit.HOURS),
    BarSize(2, BarUnit.HOURS),
    BarSize(3, BarUnit.HOURS),
    BarSize(4, BarUnit.HOURS),
    BarSize(8, BarUnit.HOURS),
    BarSize(1, BarUnit.DAYS),
    BarSize(1, BarUnit.WEEKS),
    BarSize(1, BarUnit.MONTHS),
)

BAR_SIZE_FORMS = ", ".join(f'"{b}"' for b in BAR_SIZES)

_UNIT_ALIASES: dict[str, BarUnit] = {
    "sec": BarUnit.SECONDS,
    "secs": BarUnit.SECONDS,
    "second": BarUnit.SECONDS,
    "seconds": BarUnit.SECONDS,
    "min": BarUnit.MINUTES,
    "mins": BarUnit.MINUTES,
    "minute": BarUnit.MINUTES,
    "minutes": BarUnit.MINUTES,
    "hour": BarUnit.HOURS,
    "hours": BarUnit.HOURS,
    "day": BarUnit.DAYS,
    "days": BarUnit.DAYS,
    "week": BarUnit.WEEKS,
    "weeks": BarUnit.WEEKS,
    "month": BarUnit.MONTHS,
    "months": BarUnit.MONTHS,
}

_BAR_RE = re.compile(r"^\s*(\d+)\s*([A-Za-z]+)\s*$")


def parse_bar_size(text: str) -> BarSize:
    """Parse an IB bar size (`"1 min"`, `"5 mins"`, `"1 hour"`, `"1 day"`, also `1_min`).

    Singular/plural and case are tolerated (`"1 sec"` means IB's `"1 secs"`); the result is
    always one of `BAR_SIZES`. Raises `UserInputError` naming `text` and the legal sizes.
    """
    normalized = text.replace("_", " ") if isinstance(text, str) else ""
    match = _BAR_RE.match(normalized)
    unit = _UNIT_ALIASES.get(match.group(2).lower()) if match else None
    if match is not None and unit is not None:
        candidate = BarSize(int(match.group(1)), unit)
        if candidate in BAR_SIZES:
            return candidate
    raise UserInputError(f"invalid bar size {text!r}: accepted sizes are {BAR_SIZE_FORMS}")


# IB step sizes: the longest duration one request may ask for, per bar size (TWS API
# "Historical Data Limitations": 1800 S for 1 secs, 3600 S for 5 secs, 14400 S for 10-15
# secs, 28800 S for 30 secs, 1 D for 1 min, 2 D for 2 mins, 1 W for 3-20 mins, 1 M for
# 30 mins-8 hours, 1 Y for daily and longer).
_MAX_DURATION: dict[BarSize, Duration] = {}
for _bar in BAR_SIZES:
    if _bar.seconds <= 1:
        _max = Duration(1800, DurationUnit.SECONDS)
    elif _bar.seconds <= 5:
        _max = Duration(3600, DurationUnit.SECONDS)
    elif _bar.seconds <= 15:
        _max = Duration(14400, DurationUnit.SECONDS)
    elif _bar.seconds <= 30:
        _max = Duration(28800, DurationUnit.SECONDS)
    elif _bar.seconds <= 60:
        _max = Duration(1, DurationUnit.DAYS)
    elif _bar.seconds <= 120:
        _max = Duration(2, DurationUnit.DAYS)
    elif _bar.seconds <= 20 * 60:
        _max = Duration(1, DurationUnit.WEEKS)
    elif _bar.seconds <= 8 * 3600:
        _max = Duration(1, DurationUnit.MONTHS)
    else:
        _max = Duration(1, DurationUnit.YEARS)
    _MAX_DURATION[_bar] = _max


def max_duration(bar_size: BarSize) -> Duration:
    """The longest duration IB serves in one request for `bar_size` (its step-size table)."""
    return _MAX_DURATION[bar_size]


def expected_bar_count(
    bar_size: BarSize,
    start_s_of_day: int = RTH_START_S,
    end_s_of_day: int = RTH_END_S,
) -> int:
    """Bars IB returns for one session `[start, end)` given in seconds after local midnight.

    IB aligns intraday bars to the clock (hourly bars start on the hour), so the first bar
    of a 09:30 session with `1 hour` bars is the 09:30-10:00 stub: RTH gives 390 `1 min`
    bars, 78 `5 mins`, 13 `30 mins` and 7 `1 hour` bars. Daily and longer bars: one.
    """
    if end_s_of_day <= start_s_of_day:
        return 0
    if not bar_size.is_intraday:
        return 1
    bar_s = bar_size.seconds
    first_bucket = start_s_of_day // bar_s
    last_bucket = (end_s_of_day - 1) // bar_s
    return last_bucket - first_bucket + 1


def expected_bar_count_for(
    duration: Duration,
    bar_size: BarSize,
    start_s_of_day: int = RTH_START_S,
    end_s_of_day: int = RTH_END_S,
) -> int:
    """Bars in `duration` of full sessions (D/W/M/Y counted as 1/5/21/252 sessions).

    A seconds duration counts the bars in that many seconds of one session, capped at the
    session's bar count.
    """
    per_session = expected_bar_count(bar_size, start_s_of_day, end_s_of_day)
    if duration.unit is DurationUnit.SECONDS:
        if not bar_size.is_intraday:
            return 1
        return min(per_session, math.ceil(duration.count / bar_size.seconds))
    return int(duration.sessions) * per_session
