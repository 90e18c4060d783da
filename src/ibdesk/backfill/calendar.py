"""The exchange calendar (XNYS) as the two facts the backfill needs: sessions and closes.

An edge over `ibdesk.calendar`; days outside its range fall back to "weekdays are sessions,
regular 16:00 close" rather than failing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time

from ibdesk.calendar import to_et, xnys
from ibdesk.domain.hours import RTH_END_S, time_of_day

REGULAR_CLOSE_ET = time_of_day(RTH_END_S)


@dataclass(frozen=True, slots=True)
class ExchangeCalendar:
    """XNYS sessions and closes; `close_et` reports early closes (e.g. 13:00)."""

    def is_session(self, day: date) -> bool:
        calendar = xnys()
        if not calendar.covers(day):
            return day.weekday() < 5
        return calendar.session_on(day) is not None

    def close_et(self, day: date) -> time:
        session = xnys().session_on(day)
        return REGULAR_CLOSE_ET if session is None else to_et(session.close_ns).time()
