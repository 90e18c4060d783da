"""The slice of a trading day fetched per task, in tz-aware UTC (never naive).

Pure: the ET window from settings, clamped by the trading window and the day's close,
converted with DST via zoneinfo; the request starts `lead` earlier so the book is known
when the window opens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ibdesk.config import TimeWindow

DEFAULT_LEAD = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class RequestWindow:
    """What to ask the vendor for (`request_*`) and what to sample (`window_*`), all UTC."""

    request_start: datetime
    window_start: datetime
    window_end: datetime

    @property
    def window_start_ns(self) -> int:
        return _ns(self.window_start)

    @property
    def window_end_ns(self) -> int:
        return _ns(self.window_end)

    @property
    def request_start_ns(self) -> int:
        return _ns(self.request_start)

    def clamp_end(self, available_end: datetime) -> RequestWindow | None:
        """The window cut at the dataset's available end; None when nothing of it is left."""
        if available_end >= self.window_end:
            return self
        if available_end <= self.window_start:
            return None
        return RequestWindow(self.request_start, self.window_start, available_end)


def _ns(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def effective_window(
    backfill: TimeWindow, trading: TimeWindow | None, close_et: time | None
) -> TimeWindow | None:
    """The backfill window ∩ the trading window (when enforced), ended by the day's close."""
    start, end = backfill.start, backfill.end
    if trading is not None:
        start, end = max(start, trading.start), min(end, trading.end)
    if close_et is not None:
        end = min(end, close_et)
    if start >= end:
        return None
    return TimeWindow(start, end)


def request_window(
    day: date, window: TimeWindow, tz_name: str, lead: timedelta = DEFAULT_LEAD
) -> RequestWindow:
    """The ET wall-clock `window` on `day` as UTC instants (DST-aware), with the lead."""
    zone = ZoneInfo(tz_name)
    start = datetime.combine(day, window.start, tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day, window.end, tzinfo=zone).astimezone(UTC)
    return RequestWindow(start - lead, start, end)
