"""The exchange calendar (XNYS) as the two facts the backfill needs: sessions and closes.

A thin edge over exchange_calendars; days outside its range fall back to "weekdays are
sessions, regular 16:00 close" rather than failing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from functools import lru_cache
from typing import Any

from ibdesk.backfill.tasks import ET

REGULAR_CLOSE_ET = time(16, 0)


@dataclass(frozen=True, slots=True)
class ExchangeCalendar:
    """XNYS sessions and closes; `close_et` reports early closes (e.g. 13:00)."""

    name: str = "XNYS"

    def is_session(self, day: date) -> bool:
        cal = _calendar(self.name)
        if not _in_range(cal, day):
            return day.weekday() < 5
        return bool(cal.is_session(day.isoformat()))

    def close_et(self, day: date) -> time:
        cal = _calendar(self.name)
        if not _in_range(cal, day) or not cal.is_session(day.isoformat()):
            return REGULAR_CLOSE_ET
        close: datetime = cal.session_close(day.isoformat()).to_pydatetime()
        return close.astimezone(ET).time()


@lru_cache(maxsize=2)
def _calendar(name: str) -> Any:
    import exchange_calendars

    return exchange_calendars.get_calendar(name)


def _in_range(cal: Any, day: date) -> bool:
    return cal.first_session.date() <= day <= cal.last_session.date()
