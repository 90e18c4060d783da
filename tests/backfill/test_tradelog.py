"""Reading the trade log from real .csv and .xlsx files, down to tasks."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook

from ibdesk.backfill.calendar import ExchangeCalendar
from ibdesk.backfill.orchestrator import discover_tasks
from ibdesk.backfill.tasks import BackfillTask, TaskFilter
from ibdesk.backfill.tradelog import read_trade_cells
from ibdesk.errors import UserInputError


def test_csv_with_messy_headers_duplicates_holiday_and_bad_rows(tmp_path: Path) -> None:
    log = tmp_path / "trades.csv"
    log.write_text(
        "\ufeff Trade Date ,TICKER,Qty\n"
        "2024-07-03 09:45,AAPL,100\n"
        "2024-07-03 10:10,AAPL,100\n"  # duplicate pair
        "2024-07-04 10:00,TSLA,5\n"  # Independence Day
        "2024-07-06,TSLA,5\n"  # Saturday
        "garbage,NVDA,1\n"
        "07/05/2024 9:35 AM,nvda,1\n",
        encoding="utf-8",
    )
    tasks = discover_tasks(log, TaskFilter(), ExchangeCalendar())
    assert tasks == [BackfillTask("AAPL", date(2024, 7, 3)), BackfillTask("NVDA", date(2024, 7, 5))]


def test_xlsx_with_datetime_cells_and_a_title_row(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Warrior trades export"])
    sheet.append(["Symbol", "Datetime", "P&L"])
    sheet.append(["MSFT", datetime(2024, 3, 8, 9, 31), 12.5])
    sheet.append(["TSLA", datetime(2024, 3, 11, 10, 0), -3])
    sheet.append(["MSFT", datetime(2024, 3, 8, 15, 0), 1])
    path = tmp_path / "warrior_trades.xlsx"
    book.save(path)
    cells = read_trade_cells(path)
    assert [row for row, _, _ in cells] == [3, 4, 5]
    tasks = discover_tasks(path, TaskFilter(last=1), ExchangeCalendar())
    assert tasks == [BackfillTask("TSLA", date(2024, 3, 11))]


def test_missing_file_is_a_user_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.xlsx"
    with pytest.raises(UserInputError, match=r"nope\.xlsx"):
        read_trade_cells(missing)


def test_corrupt_xlsx_is_a_user_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "broken.xlsx"
    bad.write_bytes(b"this is not a zip file")
    with pytest.raises(UserInputError, match=r"broken\.xlsx"):
        read_trade_cells(bad)


def test_file_without_date_and_symbol_columns_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("price,qty\n1,2\n", encoding="utf-8")
    with pytest.raises(UserInputError, match="no date column"):
        read_trade_cells(path)
