"""ibdesk.calendar: the one XNYS session calendar of the package."""

from __future__ import annotations

from datetime import date, time

from ibdesk.backfill.calendar import ExchangeCalendar
from ibdesk.calendar import to_et, xnys


def test_sessions_between_skips_weekends_and_holidays_and_keeps_early_closes() -> None:
    week = xnys().sessions_between(date(2024, 6, 29), date(2024, 7, 7))
    assert [s.day for s in week] == [date(2024, 7, d) for d in (1, 2, 3, 5)]  # 4th: holiday
    closes = [to_et(s.close_ns).time() for s in week]
    assert closes == [time(16), time(16), time(13), time(16)]
    assert [s.index for s in week] == list(range(week[0].index, week[0].index + 4))


def test_session_on_and_range() -> None:
    calendar = xnys()
    assert calendar.session_on(date(2024, 12, 25)) is None
    assert calendar.session_on(date(2024, 12, 28)) is None  # a Saturday
    session = calendar.session_on(date(2024, 12, 24))
    assert session is not None
    assert to_et(session.open_ns).time() == time(9, 30)
    assert calendar.covers(date(2024, 12, 25))
    assert not calendar.covers(date(1990, 1, 2))
    assert calendar.sessions_between(date(2024, 7, 5), date(2024, 7, 1)) == []


def test_backfill_calendar_falls_back_to_weekdays_outside_the_range() -> None:
    cal = ExchangeCalendar()
    assert not cal.is_session(date(2024, 7, 4))
    assert cal.close_et(date(2024, 11, 29)) == time(13, 0)
    assert cal.is_session(date(1990, 1, 2))  # a Tuesday before the calendar's range
    assert not cal.is_session(date(1990, 1, 6))  # a Saturday
    assert cal.close_et(date(1990, 1, 2)) == time(16, 0)
