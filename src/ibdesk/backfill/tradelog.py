"""Reads the trader's trade log (.xlsx or .csv) into (row number, when, symbol) cells.

The only file reading of task discovery; interpretation lives in `tasks`. A file that
cannot be read at all is a `UserInputError` naming it (exit 2).
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

from ibdesk.backfill.tasks import find_columns
from ibdesk.errors import UserInputError

Row = tuple[int, object, object]


def read_trade_cells(path: Path) -> list[Row]:
    """(1-based file row, date cell, symbol cell) for every data row of the trade log."""
    if not path.is_file():
        raise UserInputError(
            f"trade log {path} not found (set WARRIOR_TRADES_FILE or --trades-file)"
        )
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            table = _read_xlsx(path)
        elif suffix in (".csv", ".txt"):
            table = _read_csv(path)
        else:
            raise UserInputError(
                f"trade log {path}: unsupported file type {suffix!r} (use .xlsx or .csv)"
            )
    except (
        OSError,
        UnicodeDecodeError,
        csv.Error,
        zipfile.BadZipFile,
        KeyError,
        ValueError,
    ) as exc:
        raise UserInputError(f"trade log {path} cannot be read: {exc}") from None
    header_at = next((i for i, row in enumerate(table) if find_columns(row) is not None), None)
    if header_at is None:
        raise UserInputError(
            f"trade log {path}: no date column (Date/Trade Date/Datetime) and symbol column "
            "(Symbol/Ticker) found"
        )
    columns = find_columns(table[header_at])
    assert columns is not None
    date_col, symbol_col = columns
    rows: list[Row] = []
    for offset, row in enumerate(table[header_at + 1 :], start=header_at + 2):
        when = row[date_col] if date_col < len(row) else None
        symbol = row[symbol_col] if symbol_col < len(row) else None
        rows.append((offset, when, symbol))
    return rows


def _read_csv(path: Path) -> list[list[object]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        sample = handle.read(4096)
        handle.seek(0)
        try:
            dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
                sample, delimiters=",;\t"
            )
        except csv.Error:
            dialect = csv.excel
        return [list(row) for row in csv.reader(handle, dialect)]


def _read_xlsx(path: Path) -> list[list[object]]:
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = book.worksheets[0]
        return [list(row) for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()
