"""The per-day request window in UTC: DST, trading-window clamp, early closes, dataset end."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from ibdesk.backfill.calendar import ExchangeCalendar
from ibdesk.backfill.window import effective_window, request_window
from ibdesk.config import TimeWindow

NINE_TO_ELEVEN = TimeWindow(time(9), time(11))


def test_march_dst_switch_moves_the_utc_window_by_an_hour() -> None:
    before = request_window(date(2024, 3, 8), NINE_TO_ELEVEN, "America/New_York")  # EST
    after = request_window(date(2024, 3, 11), NINE_TO_ELEVEN, "America/New_York")  # EDT
    assert before.window_start == datetime(2024, 3, 8, 14, 0, tzinfo=UTC)
    assert before.window_end == datetime(2024, 3, 8, 16, 0, tzinfo=UTC)
    assert after.window_start == datetime(2024, 3, 11, 13, 0, tzinfo=UTC)
    assert after.request_start == datetime(2024, 3, 11, 12, 55, tzinfo=UTC)


def test_november_dst_end_moves_it_back() -> None:
    edt = request_window(date(2024, 11, 1), NINE_TO_ELEVEN, "America/New_York")
    est = request_window(date(2024, 11, 4), NINE_TO_ELEVEN, "America/New_York")
    assert edt.window_start == datetime(2024, 11, 1, 13, 0, tzinfo=UTC)
    assert est.window_start == datetime(2024, 11, 4, 14, 0, tzinfo=UTC)
    assert est.window_start_ns == int(datetime(2024, 11, 4, 14, 0, tzinfo=UTC).timestamp()) * 10**9


def test_trading_window_and_early_close_clamp_the_backfill_window() -> None:
    wide = TimeWindow(time(8), time(15))
    trading = TimeWindow(time(9, 30), time(16))
    assert effective_window(wide, trading, time(16)) == TimeWindow(time(9, 30), time(15))
    assert effective_window(wide, None, time(13)) == TimeWindow(time(8), time(13))
    assert effective_window(TimeWindow(time(13, 30), time(15)), None, time(13)) is None


def test_exchange_calendar_knows_early_closes_and_holidays() -> None:
    cal = ExchangeCalendar()
    assert cal.close_et(date(2024, 7, 3)) == time(13, 0)
    assert cal.close_et(date(2024, 7, 5)) == time(16, 0)
    assert not cal.is_session(date(2024, 7, 4))
    assert cal.is_session(date(2024, 7, 5))


def test_dataset_end_cuts_or_removes_the_window() -> None:
    window = request_window(date(2024, 3, 8), NINE_TO_ELEVEN, "America/New_York")
    cut = window.clamp_end(window.window_start + timedelta(minutes=30))
    assert cut is not None
    assert cut.window_end == datetime(2024, 3, 8, 14, 30, tzinfo=UTC)
    assert window.clamp_end(window.window_start) is None
    assert window.clamp_end(window.window_end + timedelta(days=1)) is window
