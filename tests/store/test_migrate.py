"""`data migrate-excel`: the old tool's Excel bars -> Parquet bars files."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from ibdesk.errors import UserInputError
from ibdesk.store import schemas
from ibdesk.store.bars import store_bars
from ibdesk.store.migrate import (
    convert_rows,
    map_columns,
    migrate_excel,
    symbol_from_filename,
)
from ibdesk.store.readers import read_data
from tests.store.factories import bars, utc

ET = ZoneInfo("America/New_York")
HEADER = ["Date", "Open", "High", "Low", "Close", "Volume", "Average", "BarCount"]


def workbook(path: Path, sheets: dict[str, Sequence[Sequence[Any]]]) -> Path:
    """An .xlsx file with the given sheets (rows of cells), like the old tool wrote."""
    book = openpyxl.Workbook()
    default = book.active
    assert default is not None
    book.remove(default)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(list(row))
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path


def minute_rows(count: int, start: datetime = datetime(2024, 1, 2, 9, 30)) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for i in range(count):
        moment = start.replace(minute=start.minute + i)
        price = 100 + i
        rows.append(
            [moment, price, price + 1, price - 1, price + 0.5, 1000 + i, price + 0.2, 10 + i]
        )
    return rows


def test_headers_map_loosely_and_unknown_ones_are_reported() -> None:
    cmap = map_columns(
        ["Datetime", " open ", "HIGH", "Low", "close", "Vol", "WAP", "Count", "Notes", None]
    )

    assert cmap.fields == {
        "datetime": 0,
        "open": 1,
        "high": 2,
        "low": 3,
        "close": 4,
        "volume": 5,
        "wap": 6,
        "bar_count": 7,
    }
    assert cmap.unmapped == ("Notes",)
    assert cmap.missing() == []


def test_missing_required_columns_are_named() -> None:
    assert map_columns(["Open", "Close"]).missing() == ["Date/Datetime/Time", "high", "low"]


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("AAPL_1min_2024.xlsx", "AAPL"),
        ("TSLA.xlsx", "TSLA"),
        ("BRK.B bars.xlsx", "BRK.B"),
        ("bars_export.xlsx", None),
        ("Aapl.xlsx", None),
    ],
)
def test_symbol_from_file_name(name: str, symbol: str | None) -> None:
    assert symbol_from_filename(Path(name)) == symbol


def test_naive_times_are_eastern_and_stored_as_utc() -> None:
    cmap = map_columns(HEADER)
    rows = [(2, [datetime(2024, 7, 1, 9, 30), 1, 2, 0.5, 1.5, 10, 1.2, 3])]

    out = convert_rows(rows, cmap, "AAPL", ET)

    assert out.table().column("ts").to_pylist() == [utc(2024, 7, 1, 13, 30)]  # EDT
    assert out.bad_rows == []


def test_separate_date_and_time_columns_are_combined() -> None:
    cmap = map_columns(["Date", "Time", "Open", "High", "Low", "Close"])
    rows = [
        (2, [date(2024, 1, 2), time(9, 30), 1, 2, 0.5, 1.5]),
        (3, ["2024-01-02", "09:31:00", 1, 2, 0.5, 1.5]),
    ]

    out = convert_rows(rows, cmap, "AAPL", ET)

    assert out.table().column("ts").to_pylist() == [
        utc(2024, 1, 2, 14, 30),
        utc(2024, 1, 2, 14, 31),
    ]


def test_ib_text_times_with_a_zone_are_understood() -> None:
    cmap = map_columns(["date", "open", "high", "low", "close"])
    rows = [
        (2, ["20240102  09:30:00 US/Eastern", 1, 2, 0.5, 1.5]),
        (3, ["20240103", 1, 2, 0.5, 1.5]),
    ]

    out = convert_rows(rows, cmap, "AAPL", ET)

    assert out.table().column("ts").to_pylist() == [utc(2024, 1, 2, 14, 30), utc(2024, 1, 3, 5)]


def test_bad_rows_are_reported_with_their_row_number_and_reason() -> None:
    cmap = map_columns(HEADER)
    rows = [
        (2, [datetime(2024, 1, 2, 9, 30), 1, 2, 0.5, 1.5, 10, None, None]),
        (3, ["yesterday", 1, 2, 0.5, 1.5, 10, None, None]),
        (4, [datetime(2024, 1, 2, 9, 31), "n/a", 2, 0.5, 1.5, 10, None, None]),
        (5, [datetime(2024, 1, 2, 9, 32), 1, 2, None, 1.5, 10, None, None]),
        (6, [None, None, None]),  # blank trailing row: not an error
        (7, [datetime(2024, 1, 2, 9, 33), "1,001.5", 1002, 1000, 1001, "1,000", None, 2.5]),
    ]

    out = convert_rows(rows, cmap, "AAPL", ET)

    assert [(b.row, b.reason) for b in out.bad_rows] == [
        (3, "bad date/time 'yesterday'"),
        (4, "open is not a number ('n/a')"),
        (5, "low is empty"),
        (7, "bar_count is not a whole number (2.5)"),
    ]
    assert out.rows_seen == 5
    assert out.table().num_rows == 1


def test_migrates_a_workbook_into_day_files(data_root: Path, tmp_path: Path) -> None:
    rows = minute_rows(5) + minute_rows(3, datetime(2024, 1, 3, 9, 30))
    path = workbook(tmp_path / "in" / "AAPL_1min.xlsx", {"Sheet1": [HEADER, *rows]})

    report = migrate_excel([path], data_root)

    (result,) = report.files
    assert result.converted
    assert result.rows_converted == 8
    assert sorted(p.name for p in result.written) == ["2024-01-02.parquet", "2024-01-03.parquet"]
    stored = read_data(data_root / "bars/AAPL/1_min/2024-01-02.parquet")
    assert stored.column("ts").to_pylist()[0] == utc(2024, 1, 2, 14, 30)
    assert stored.column("wap").to_pylist()[0] == 100.2
    assert stored.column("bar_count").to_pylist()[0] == 10
    meta = schemas.file_metadata(stored.schema)
    assert (meta["source"], meta["migrated_from"], meta["bar_size"]) == (
        "excel",
        "AAPL_1min.xlsx",
        "1 min",
    )


def test_symbol_column_splits_rows_by_symbol(data_root: Path, tmp_path: Path) -> None:
    header = ["Ticker", *HEADER]
    rows = [["msft", *r] for r in minute_rows(2)] + [["AAPL", *r] for r in minute_rows(3)]
    path = workbook(tmp_path / "mixed.xlsx", {"bars": [header, *rows]})

    report = migrate_excel([path], data_root, bar_size="1_min")

    assert report.files[0].sheets[0].symbols == ("AAPL", "MSFT")
    assert read_data(data_root / "bars/MSFT/1_min/2024-01-02.parquet").num_rows == 2


def test_header_below_a_title_row_and_extra_columns(data_root: Path, tmp_path: Path) -> None:
    sheet = [["AAPL one minute bars"], [], ["", *HEADER, "Comment"]]
    sheet += [["", *r, "ok"] for r in minute_rows(2)]
    path = workbook(tmp_path / "AAPL.xlsx", {"data": sheet})

    report = migrate_excel([path], data_root)

    (sheet_result,) = report.files[0].sheets
    assert sheet_result.rows_converted == 2
    assert sheet_result.unmapped_columns == ("(unnamed column 1)", "Comment")


def test_migrating_twice_adds_no_duplicates_and_keeps_stored_bars(
    data_root: Path, tmp_path: Path
) -> None:
    store_bars(data_root, "1 min", bars("AAPL", utc(2024, 1, 2, 20, 0), 5))  # 15:00 ET, IB data
    path = workbook(tmp_path / "AAPL.xlsx", {"Sheet1": [HEADER, *minute_rows(5)]})

    migrate_excel([path], data_root)
    migrate_excel([path], data_root)

    assert read_data(data_root / "bars/AAPL/1_min/2024-01-02.parquet").num_rows == 10


def test_files_that_cannot_be_converted_are_reported_and_the_rest_migrated(
    data_root: Path, tmp_path: Path
) -> None:
    good = workbook(tmp_path / "AAPL.xlsx", {"Sheet1": [HEADER, *minute_rows(2)]})
    no_symbol = workbook(tmp_path / "export.xlsx", {"Sheet1": [HEADER, *minute_rows(2)]})
    no_header = workbook(tmp_path / "MSFT.xlsx", {"Sheet1": [["Price", "Qty"], [1, 2]]})
    corrupt = tmp_path / "TSLA.xlsx"
    corrupt.write_bytes(b"this is no zip")
    text = tmp_path / "NVDA.csv"
    text.write_text("Date,Open\n")

    report = migrate_excel([good, no_symbol, no_header, corrupt, text], data_root)

    errors = {f.path.name: f.error for f in report.failed}
    assert set(errors) == {"export.xlsx", "MSFT.xlsx", "TSLA.xlsx", "NVDA.csv"}
    assert errors["export.xlsx"] == "no symbol column and no ticker in the file name; pass --symbol"
    assert "missing Date/Datetime/Time, open, high, low, close" in (errors["MSFT.xlsx"] or "")
    assert (errors["TSLA.xlsx"] or "").startswith("cannot open workbook")
    assert (errors["NVDA.csv"] or "").startswith("not an Excel workbook")
    assert read_data(data_root / "bars/AAPL/1_min/2024-01-02.parquet").num_rows == 2
    assert report.to_json()["files_converted"] == 1


def test_symbol_option_names_files_without_one(data_root: Path, tmp_path: Path) -> None:
    path = workbook(tmp_path / "export.xlsx", {"Sheet1": [HEADER, *minute_rows(2)]})

    migrate_excel([path], data_root, symbol="nvda", bar_size="5 mins")

    assert (data_root / "bars/NVDA/5_mins/2024-01-02.parquet").exists()


def test_a_folder_is_expanded_to_its_workbooks(data_root: Path, tmp_path: Path) -> None:
    workbook(tmp_path / "files" / "AAPL.xlsx", {"Sheet1": [HEADER, *minute_rows(2)]})
    workbook(tmp_path / "files" / "sub" / "MSFT.xlsx", {"Sheet1": [HEADER, *minute_rows(2)]})
    (tmp_path / "files" / "~$AAPL.xlsx").write_bytes(b"excel lock file")

    report = migrate_excel([tmp_path / "files"], data_root)

    assert [f.path.name for f in report.files] == ["AAPL.xlsx", "MSFT.xlsx"]


def test_dry_run_writes_nothing(data_root: Path, tmp_path: Path) -> None:
    path = workbook(tmp_path / "AAPL.xlsx", {"Sheet1": [HEADER, *minute_rows(2)]})

    report = migrate_excel([path], data_root, dry_run=True)

    assert report.files[0].rows_converted == 2
    assert not data_root.exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bar_size": "7 mins"}, "invalid bar size '7 mins'"),
        ({"tz": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"symbol": "../etc"}, "bad symbol '../ETC'"),
    ],
)
def test_bad_arguments_fail_before_anything_is_written(
    data_root: Path, tmp_path: Path, kwargs: dict[str, str], message: str
) -> None:
    path = workbook(tmp_path / "AAPL.xlsx", {"Sheet1": [HEADER, *minute_rows(2)]})

    with pytest.raises(UserInputError, match=message):
        migrate_excel([path], data_root, **kwargs)  # type: ignore[arg-type]

    assert not data_root.exists()


def test_a_missing_path_fails_before_anything_is_written(data_root: Path, tmp_path: Path) -> None:
    good = workbook(tmp_path / "AAPL.xlsx", {"Sheet1": [HEADER, *minute_rows(2)]})

    with pytest.raises(UserInputError, match=r"no such file or folder: .*nope\.xlsx"):
        migrate_excel([good, tmp_path / "nope.xlsx"], data_root)

    assert not data_root.exists()
