"""Pure task discovery: rows -> unique (symbol, ET day) tasks, filters, date parsing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ibdesk.backfill.tasks import (
    BackfillTask,
    DropReason,
    TaskFilter,
    apply_filter,
    coerce_task,
    find_columns,
    parse_since,
    parse_when,
    tasks_from_rows,
)


def weekdays(day: date) -> bool:
    return day.weekday() < 5


def test_tasks_are_unique_in_order_of_first_appearance() -> None:
    rows = [
        (2, "2024-03-08 09:31", "AAPL"),
        (3, "2024-03-07 10:00", "TSLA"),
        (4, "2024-03-08 10:15", "aapl"),
        (5, "2024-03-07", "AAPL"),
    ]
    found = tasks_from_rows(rows, weekdays)
    assert found.tasks == [
        BackfillTask("AAPL", date(2024, 3, 8)),
        BackfillTask("TSLA", date(2024, 3, 7)),
        BackfillTask("AAPL", date(2024, 3, 7)),
    ]


def test_zone_less_times_are_eastern_and_zoned_times_convert_to_the_et_date() -> None:
    rows = [
        (2, "2024-03-08 23:30:00", "AAPL"),  # ET already: stays the 8th
        (3, "2024-03-09T02:30:00Z", "TSLA"),  # 21:30 ET on the 8th
        (4, datetime(2024, 3, 8, 3, 0, tzinfo=UTC), "NVDA"),  # 22:00 ET on the 7th
    ]
    found = tasks_from_rows(rows, weekdays)
    assert [(t.symbol, t.trading_day) for t in found.tasks] == [
        ("AAPL", date(2024, 3, 8)),
        ("TSLA", date(2024, 3, 8)),
        ("NVDA", date(2024, 3, 7)),
    ]


def test_weekends_and_holidays_are_dropped_with_a_reason() -> None:
    def is_session(day: date) -> bool:
        return day.weekday() < 5 and day != date(2024, 7, 4)

    rows = [(2, "2024-07-06", "AAPL"), (3, "2024-07-04", "AAPL"), (4, "2024-07-05", "AAPL")]
    found = tasks_from_rows(rows, is_session)
    assert found.tasks == [BackfillTask("AAPL", date(2024, 7, 5))]
    assert [(d.task.trading_day, d.reason) for d in found.dropped] == [
        (date(2024, 7, 6), DropReason.WEEKEND),
        (date(2024, 7, 4), DropReason.HOLIDAY),
    ]


def test_bad_rows_are_reported_with_their_row_numbers_and_skipped() -> None:
    rows = [
        (2, "not a date", "AAPL"),
        (3, "2024-03-08", ""),
        (4, "2024-03-08", "MSFT"),
        (5, None, None),  # blank line: ignored, not an error
        (6, "2024-13-45", "AAPL"),
    ]
    found = tasks_from_rows(rows, weekdays)
    assert found.tasks == [BackfillTask("MSFT", date(2024, 3, 8))]
    assert [b.row for b in found.bad_rows] == [2, 3, 6]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (["Trade Date", "Ticker", "Qty"], (0, 1)),
        (["qty", " SYMBOL ", "Date/Time"], (2, 1)),
        (["Datetime", "Symbol"], (0, 1)),
        (["Entry Date", "Stock"], (0, 1)),
        (["Price", "Qty"], None),
    ],
)
def test_headers_are_matched_loosely(headers: list[str], expected: tuple[int, int] | None) -> None:
    assert find_columns(headers) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-08", date(2024, 3, 8)),
        ("03/08/2024", date(2024, 3, 8)),
        ("3/8/2024 9:31:05 AM", datetime(2024, 3, 8, 9, 31, 5)),
        ("2024-03-08 14:30", datetime(2024, 3, 8, 14, 30)),
    ],
)
def test_common_trade_log_date_forms_parse(text: str, expected: object) -> None:
    assert parse_when(text) == expected


def test_last_keeps_the_n_latest_distinct_days_in_input_order() -> None:
    tasks = [
        BackfillTask("A", date(2024, 3, 4)),
        BackfillTask("B", date(2024, 3, 6)),
        BackfillTask("C", date(2024, 3, 5)),
        BackfillTask("D", date(2024, 3, 6)),
    ]
    assert apply_filter(tasks, TaskFilter(last=2)) == [tasks[1], tasks[2], tasks[3]]


def test_since_date_range_symbol_and_max_tasks_filters() -> None:
    tasks = [BackfillTask(s, date(2024, 3, d)) for s, d in [("A", 4), ("B", 5), ("A", 6), ("A", 7)]]
    assert apply_filter(tasks, TaskFilter(since=date(2024, 3, 5))) == tasks[1:]
    assert (
        apply_filter(tasks, TaskFilter(start=date(2024, 3, 5), end=date(2024, 3, 6))) == tasks[1:3]
    )
    assert apply_filter(tasks, TaskFilter(symbols=("a",))) == [tasks[0], tasks[2], tasks[3]]
    assert apply_filter(tasks, TaskFilter(symbols=("A",), max_tasks=2)) == [tasks[0], tasks[2]]


def test_since_accepts_days_or_a_date_and_rejects_anything_else() -> None:
    today = date(2024, 3, 10)
    assert parse_since("7", today) == date(2024, 3, 3)
    assert parse_since("2024-01-02", today) == date(2024, 1, 2)
    with pytest.raises(ValueError, match="--since"):
        parse_since("last week", today)


def test_coerce_task_accepts_pairs_and_dicts() -> None:
    expected = BackfillTask("AAPL", date(2024, 3, 8))
    assert coerce_task(("aapl", "2024-03-08")) == expected
    assert coerce_task({"symbol": "AAPL", "trading_day": "2024-03-08"}) == expected
    assert coerce_task(expected) is expected


@given(
    st.lists(
        st.tuples(st.sampled_from(["AAA", "BBB", "CCC"]), st.integers(0, 30)),
        max_size=60,
    )
)
def test_discovery_yields_each_pair_once_in_first_seen_order(pairs: list[tuple[str, int]]) -> None:
    base = date(2024, 1, 1)
    rows = [(i + 2, (base + timedelta(days=d)).isoformat(), s) for i, (s, d) in enumerate(pairs)]
    found = tasks_from_rows(rows, lambda _day: True)
    expected = list(dict.fromkeys(BackfillTask(s, base + timedelta(days=d)) for s, d in pairs))
    weekday_expected = [t for t in expected if t.trading_day.weekday() < 5]
    assert found.tasks == weekday_expected
