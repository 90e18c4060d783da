"""Trade-log rows -> backfill tasks: unique (symbol, trading day) pairs, filtered.

Pure: works on rows already read (see `tradelog`) and on an injected session predicate
(the exchange calendar), so it is tested without files or calendars.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from ibdesk.domain.hours import ET

_DATE_HEADERS = ("datetime", "tradedate", "date", "timestamp", "entrytime", "opentime", "time")
_SYMBOL_HEADERS = ("symbol", "ticker", "sym", "stock", "instrument")

_DATETIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y",
    "%m/%d/%y",
    "%m-%d-%Y",
    "%Y/%m/%d",
    "%d-%b-%Y",
    "%b %d, %Y",
    "%Y%m%d",
)
_SYMBOL_RE = re.compile(r"^[A-Z][A-Z0-9.\-/]{0,14}$")


@dataclass(frozen=True, slots=True)
class BackfillTask:
    """One unit of work: a symbol's book on one trading day (ET date)."""

    symbol: str
    trading_day: date

    def to_json(self) -> dict[str, str]:
        return {"symbol": self.symbol, "trading_day": self.trading_day.isoformat()}


class DropReason(StrEnum):
    WEEKEND = "weekend"
    HOLIDAY = "exchange holiday"


@dataclass(frozen=True, slots=True)
class BadRow:
    """A trade-log row that could not be read; `row` is the 1-based row in the file."""

    row: int
    reason: str


@dataclass(frozen=True, slots=True)
class DroppedTask:
    task: BackfillTask
    reason: DropReason


@dataclass(frozen=True, slots=True)
class TaskDiscovery:
    """Tasks in order of first appearance, plus what was skipped and why."""

    tasks: list[BackfillTask]
    bad_rows: list[BadRow] = field(default_factory=list)
    dropped: list[DroppedTask] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """The CLI filters. `since` keeps days >= it; `last` keeps the N latest distinct days."""

    since: date | None = None
    last: int | None = None
    max_tasks: int | None = None
    start: date | None = None
    end: date | None = None
    symbols: tuple[str, ...] = ()


def normalise_header(name: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name or "").lower())


def find_columns(headers: Sequence[object]) -> tuple[int, int] | None:
    """Indexes of the (date, symbol) columns, matched loosely; None when either is missing."""
    normal = [normalise_header(h) for h in headers]

    def pick(candidates: tuple[str, ...]) -> int | None:
        for wanted in candidates:
            if wanted in normal:
                return normal.index(wanted)
        for wanted in candidates:
            for i, name in enumerate(normal):
                if name.endswith(wanted) or name.startswith(wanted):
                    return i
        return None

    date_col = pick(_DATE_HEADERS)
    symbol_col = pick(_SYMBOL_HEADERS)
    if date_col is None or symbol_col is None:
        return None
    return date_col, symbol_col


def parse_when(value: object) -> datetime | date:
    """A trade-log cell as a datetime (maybe zone-aware) or a date; ValueError when unreadable."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return value
    text = str(value).strip() if value is not None else ""
    if not text:
        raise ValueError("empty date")
    iso = text.replace("Z", "+00:00") if text.endswith("Z") else text
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        pass
    else:
        if len(text) == 10 and parsed.time() == time(0):
            return parsed.date()
        return parsed
    for fmt in _DATETIME_FORMATS:
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return parsed if ("%H" in fmt or "%I" in fmt) else parsed.date()
    raise ValueError(f"unreadable date {text!r}")


def trading_day_of(when: datetime | date) -> date:
    """The ET date of a trade time; times without a zone are already US/Eastern."""
    if isinstance(when, datetime):
        if when.tzinfo is not None:
            return when.astimezone(ET).date()
        return when.date()
    return when


def parse_symbol(value: object) -> str:
    text = str(value).strip().upper() if value is not None else ""
    if not _SYMBOL_RE.match(text):
        raise ValueError(f"unreadable symbol {text!r}" if text else "empty symbol")
    return text


def tasks_from_rows(
    rows: Iterable[tuple[int, object, object]],
    is_session: Callable[[date], bool],
) -> TaskDiscovery:
    """Unique (symbol, ET day) in order of first appearance from (row number, when, symbol).

    Weekends and exchange holidays are dropped (reported in `dropped`); unreadable rows are
    reported in `bad_rows` with their row numbers and skipped.
    """
    seen: set[BackfillTask] = set()
    tasks: list[BackfillTask] = []
    bad: list[BadRow] = []
    dropped: list[DroppedTask] = []
    dropped_seen: set[BackfillTask] = set()
    for row_number, when_cell, symbol_cell in rows:
        if _blank(when_cell) and _blank(symbol_cell):
            continue
        try:
            symbol = parse_symbol(symbol_cell)
            day = trading_day_of(parse_when(when_cell))
        except ValueError as exc:
            bad.append(BadRow(row_number, str(exc)))
            continue
        task = BackfillTask(symbol, day)
        if task in seen or task in dropped_seen:
            continue
        if day.weekday() >= 5:
            dropped.append(DroppedTask(task, DropReason.WEEKEND))
            dropped_seen.add(task)
        elif not is_session(day):
            dropped.append(DroppedTask(task, DropReason.HOLIDAY))
            dropped_seen.add(task)
        else:
            seen.add(task)
            tasks.append(task)
    return TaskDiscovery(tasks, bad, dropped)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def apply_filter(tasks: Sequence[BackfillTask], flt: TaskFilter) -> list[BackfillTask]:
    """Apply the CLI filters, keeping input order; `max_tasks` applies last."""
    wanted = {s.upper() for s in flt.symbols}
    out = [
        t
        for t in tasks
        if (flt.since is None or t.trading_day >= flt.since)
        and (flt.start is None or t.trading_day >= flt.start)
        and (flt.end is None or t.trading_day <= flt.end)
        and (not wanted or t.symbol in wanted)
    ]
    if flt.last is not None:
        days = sorted({t.trading_day for t in out}, reverse=True)[: flt.last]
        keep = set(days)
        out = [t for t in out if t.trading_day in keep]
    if flt.max_tasks is not None:
        out = out[: flt.max_tasks]
    return out


def parse_since(text: str, today: date) -> date:
    """`--since DAYS` (days back from today) or `--since YYYY-MM-DD`; ValueError otherwise."""
    value = text.strip()
    if value.isdigit():
        return today - timedelta(days=int(value))
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--since {text!r}: expected a number of days or YYYY-MM-DD") from None


def parse_day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{option} {text!r}: expected YYYY-MM-DD") from None


def coerce_task(value: Any) -> BackfillTask:
    """A task from a `BackfillTask`, a (symbol, day) pair or a {"symbol", "trading_day"} dict."""
    if isinstance(value, BackfillTask):
        return value
    if isinstance(value, dict):
        symbol, day = value.get("symbol"), value.get("trading_day", value.get("date"))
    else:
        symbol, day = value
    parsed = parse_when(day)
    return BackfillTask(parse_symbol(symbol), trading_day_of(parsed))
