"""Bars files: bar sizes, merging without duplicates, ET-day split, atomic day files."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ibdesk.errors import UserInputError
from ibdesk.store import schemas
from ibdesk.store.bars import (
    bar_size_seconds,
    merge_bars,
    normalize_bar_size,
    split_by_et_day,
    store_bars,
)
from ibdesk.store.readers import read_data
from tests.store.factories import bars, utc


@pytest.mark.parametrize(
    ("text", "canonical", "seconds"),
    [
        ("1 min", "1 min", 60),
        ("1_min", "1 min", 60),
        ("5 mins", "5 mins", 300),
        ("5mins", "5 mins", 300),
        ("1 mins", "1 min", 60),
        ("1 hour", "1 hour", 3600),
        ("1 secs", "1 secs", 1),
        ("1 day", "1 day", 86400),
    ],
)
def test_bar_sizes_are_read_loosely_and_spelled_like_ib(
    text: str, canonical: str, seconds: int
) -> None:
    assert normalize_bar_size(text) == canonical
    assert bar_size_seconds(text) == seconds


@pytest.mark.parametrize("text", ["7 mins", "", "min", "2 days"])
def test_unknown_bar_size_is_a_user_error_naming_it(text: str) -> None:
    with pytest.raises(UserInputError, match=f"invalid bar size {text!r}"):
        normalize_bar_size(text)


def test_merge_keeps_one_row_per_ts_and_new_rows_win() -> None:
    old = bars("AAPL", utc(2024, 1, 2, 14, 30), 3, price=100)
    new = bars("AAPL", utc(2024, 1, 2, 14, 31), 3, price=200)

    merged = merge_bars(old, new)

    assert merged.column("ts").to_pylist() == [utc(2024, 1, 2, 14, 30 + i) for i in range(4)]
    assert merged.column("open").to_pylist()[0] == 100
    assert merged.column("open").to_pylist()[1:] == [200, 200.1, 200.2]


def test_merge_sorts_unordered_input_and_last_duplicate_wins() -> None:
    first = bars("AAPL", utc(2024, 1, 2, 14, 32), 1, price=1)
    second = bars("AAPL", utc(2024, 1, 2, 14, 30), 1, price=2)
    again = bars("AAPL", utc(2024, 1, 2, 14, 32), 1, price=3)

    merged = merge_bars(None, pa.concat_tables([first, second, again]))

    assert merged.column("open").to_pylist() == [2, 3]


@given(
    old_minutes=st.sets(st.integers(0, 60), max_size=30),
    new_minutes=st.sets(st.integers(0, 60), max_size=30),
)
def test_merge_is_the_keyed_union_with_new_values(
    old_minutes: set[int], new_minutes: set[int]
) -> None:
    start = utc(2024, 1, 2, 14, 30)

    def table(minutes: set[int], price: float) -> pa.Table:
        rows = [bars("A", start + timedelta(minutes=m), 1, price=price) for m in sorted(minutes)]
        return pa.concat_tables(rows) if rows else schemas.bars_schema().empty_table()

    merged = merge_bars(table(old_minutes, 1.0), table(new_minutes, 2.0))

    ts = merged.column("ts").to_pylist()
    assert ts == sorted(start + timedelta(minutes=m) for m in old_minutes | new_minutes)
    expected_open = [2.0 if m in new_minutes else 1.0 for m in sorted(old_minutes | new_minutes)]
    assert merged.column("open").to_pylist() == expected_open


def test_split_uses_the_et_date_across_midnight_utc_and_dst() -> None:
    # 2024-03-10 is the DST switch: 03:59 UTC on the 11th is 23:59 EDT on the 10th.
    table = pa.concat_tables(
        [
            bars("A", utc(2024, 1, 3, 4, 59), 2),  # 23:59 and 00:00 EST
            bars("A", utc(2024, 3, 11, 3, 59), 2),  # 23:59 and 00:00 EDT
        ]
    )

    days = split_by_et_day(table)

    assert {d: t.num_rows for d, t in days.items()} == {
        date(2024, 1, 2): 1,
        date(2024, 1, 3): 1,
        date(2024, 3, 10): 1,
        date(2024, 3, 11): 1,
    }


def test_store_writes_one_file_per_symbol_and_et_day(data_root: Path) -> None:
    table = pa.concat_tables(
        [
            bars("AAPL", utc(2024, 1, 2, 14, 30), 3),
            bars("AAPL", utc(2024, 1, 3, 14, 30), 2),
            bars("MSFT", utc(2024, 1, 2, 14, 30), 4),
        ]
    )

    writes = store_bars(data_root, "1 min", table)

    found = sorted(p.relative_to(data_root).as_posix() for p in data_root.rglob("*"))
    assert [p for p in found if p.endswith(".parquet")] == [
        "bars/AAPL/1_min/2024-01-02.parquet",
        "bars/AAPL/1_min/2024-01-03.parquet",
        "bars/MSFT/1_min/2024-01-02.parquet",
    ]
    assert [w.rows_added for w in writes] == [3, 2, 4]
    meta = schemas.file_metadata(pq.read_schema(writes[0].path))
    assert meta["ibdesk.schema"] == "bars/1"
    assert meta["bar_size"] == "1 min"


def test_storing_the_same_bars_again_adds_no_duplicates(data_root: Path) -> None:
    table = bars("AAPL", utc(2024, 1, 2, 14, 30), 10)
    store_bars(data_root, "1 min", table)

    again = store_bars(data_root, "1 min", table)

    assert again[0].rows_added == 0
    assert read_data(again[0].path).num_rows == 10


def test_appending_new_bars_merges_with_the_stored_day(data_root: Path) -> None:
    store_bars(data_root, "1 min", bars("AAPL", utc(2024, 1, 2, 14, 30), 10, price=1))

    writes = store_bars(data_root, "1 min", bars("AAPL", utc(2024, 1, 2, 14, 35), 10, price=2))

    stored = read_data(writes[0].path)
    assert (writes[0].rows_before, writes[0].rows_after) == (10, 15)
    assert stored.column("open").to_pylist()[4] == 1.4  # untouched
    assert stored.column("open").to_pylist()[5] == 2  # refetched bar wins
    assert not list(data_root.rglob("*.tmp"))


def test_a_day_file_of_another_bar_size_is_never_overwritten(data_root: Path) -> None:
    writes = store_bars(data_root, "1 min", bars("AAPL", utc(2024, 1, 2, 14, 30), 3))
    path = writes[0].path
    before = path.read_bytes()
    other = path.parent.parent / "5_mins" / path.name
    other.parent.mkdir()
    path.rename(other)  # a 1-min file misplaced in the 5-min folder

    with pytest.raises(UserInputError, match="holds 1 min bars"):
        store_bars(data_root, "5 mins", bars("AAPL", utc(2024, 1, 2, 14, 30), 3, step_s=300))

    assert other.read_bytes() == before


def test_bars_without_symbol_are_refused_before_writing(data_root: Path) -> None:
    table = bars("AAPL", utc(2024, 1, 2, 14, 30), 2)
    table = table.set_column(1, "symbol", pa.array([None, "AAPL"], pa.string()))

    with pytest.raises(UserInputError, match="without a symbol"):
        store_bars(data_root, "1 min", table)

    assert not data_root.exists()


def test_a_symbol_that_is_not_a_folder_name_is_refused(data_root: Path) -> None:
    with pytest.raises(UserInputError, match=r"bad symbol '\.\./x'"):
        store_bars(data_root, "1 min", bars("../x", utc(2024, 1, 2, 14, 30), 1))
