"""`ibdesk data migrate-excel`: the old tool's Excel bar files -> Parquet bars files.

Headers are matched loosely (`Date`/`Datetime`/`Time` or separate Date + Time columns,
`Open High Low Close Volume`, optional `WAP`/`Average`, `BarCount`/`Count`, optional
`Symbol`/`Ticker`); the symbol comes from a column, else `--symbol`, else a leading
upper-case ticker in the file name (`AAPL_1min.xlsx`). Times without a zone are taken in
`tz` (US/Eastern by default, as the old tool wrote them). Rows that cannot be read, columns
that map to nothing and files that cannot be converted are reported, never guessed.
Parsing is pure (`map_columns`, `convert_rows`); `migrate_excel` reads workbooks and
merges the bars into the store through `store_bars` (so nothing already stored is lost).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyarrow as pa

from ibdesk.errors import UserInputError
from ibdesk.store import schemas
from ibdesk.store.bars import BarsWrite, check_symbol, normalize_bar_size, store_bars

EXCEL_SUFFIXES = (".xlsx", ".xlsm")
MAX_BAD_ROWS_LISTED = 20
HEADER_SEARCH_ROWS = 20

_ALIASES: dict[str, tuple[str, ...]] = {
    "datetime": ("datetime", "timestamp", "ts", "bartime", "dateandtime", "datetimeet", "barstart"),
    "date": ("date", "day", "tradedate"),
    "time": ("time", "bartimeofday"),
    "open": ("open", "o", "openprice"),
    "high": ("high", "h", "highprice"),
    "low": ("low", "l", "lowprice"),
    "close": ("close", "c", "closeprice", "last"),
    "volume": ("volume", "vol", "v"),
    "wap": ("wap", "average", "avg", "vwap", "averageprice"),
    "bar_count": ("barcount", "count", "trades", "numtrades", "tradecount"),
    "symbol": ("symbol", "ticker", "sym", "localsymbol"),
}
_REQUIRED = ("open", "high", "low", "close")
_FILE_SYMBOL_RE = re.compile(r"^([A-Z]{1,5}(?:\.[A-Z])?)(?=$|[_\s\-])")
_IB_TEXT_TS_RE = re.compile(r"^(\d{8})\s+(\d{2}:\d{2}:\d{2})(?:\s+(\S+))?$")


def _norm(header: Any) -> str:
    return re.sub(r"[^a-z0-9]", "", str(header).lower()) if header is not None else ""


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Index of each contract field in a sheet's rows, and the headers left unmapped."""

    fields: dict[str, int]
    unmapped: tuple[str, ...] = ()

    def missing(self) -> list[str]:
        missing = [name for name in _REQUIRED if name not in self.fields]
        if not any(k in self.fields for k in ("datetime", "date", "time")):
            missing.insert(0, "Date/Datetime/Time")
        return missing


def map_columns(headers: Sequence[Any]) -> ColumnMap:
    """Map a header row to contract fields by loose name matching (first match wins)."""
    fields: dict[str, int] = {}
    unmapped: list[str] = []
    for index, header in enumerate(headers):
        key = _norm(header)
        target = next((name for name, aliases in _ALIASES.items() if key in aliases), None)
        if target is None or target in fields:
            if key:
                unmapped.append(str(header))
            elif any(h is not None and str(h).strip() for h in headers[index + 1 :]):
                unmapped.append(f"(unnamed column {index + 1})")
            continue
        fields[target] = index
    return ColumnMap(fields, tuple(unmapped))


def symbol_from_filename(path: Path) -> str | None:
    """A leading upper-case ticker of the file name (`AAPL_1min.xlsx` -> AAPL), else None."""
    match = _FILE_SYMBOL_RE.match(path.stem)
    return match.group(1) if match else None


@dataclass(frozen=True, slots=True)
class BadRow:
    row: int  # 1-based row number in the sheet, as Excel shows it
    reason: str


@dataclass(slots=True)
class Converted:
    """Rows of one sheet converted to bars columns, and the rows that could not be."""

    columns: dict[str, list[Any]] = field(
        default_factory=lambda: {n: [] for n in schemas.bars_schema().names}
    )
    bad_rows: list[BadRow] = field(default_factory=list)
    rows_seen: int = 0

    def table(self) -> pa.Table:
        return pa.table(self.columns, schema=schemas.bars_schema())


def _to_float(value: Any, name: str, required: bool) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValueError(f"{name} is empty")
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name} is not a number ({value!r})")
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).replace(",", "").strip())
    except ValueError:
        raise ValueError(f"{name} is not a number ({value!r})") from None


def _to_int(value: Any, name: str) -> int | None:
    number = _to_float(value, name, required=False)
    if number is None:
        return None
    if not number.is_integer():
        raise ValueError(f"{name} is not a whole number ({value!r})")
    return int(number)


def _excel_serial(value: float) -> datetime:
    return datetime(1899, 12, 30) + timedelta(days=value)


def _parse_text_ts(text: str, zone: ZoneInfo) -> datetime:
    text = text.strip()
    match = _IB_TEXT_TS_RE.match(text)
    if match is not None:  # IB's "20240102  09:30:00 US/Eastern"
        moment = datetime.strptime(f"{match.group(1)} {match.group(2)}", "%Y%m%d %H:%M:%S")
        if match.group(3):
            try:
                return moment.replace(tzinfo=ZoneInfo(match.group(3)))
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {match.group(3)!r}") from None
        return moment
    if re.fullmatch(r"\d{8}", text):
        return datetime.strptime(text, "%Y%m%d")
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _to_datetime(value: Any, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    elif isinstance(value, int | float) and not isinstance(value, bool) and 1 <= value < 2958466:
        moment = _excel_serial(float(value))
    elif isinstance(value, str) and value.strip():
        try:
            moment = _parse_text_ts(value, zone)
        except ValueError:
            raise ValueError(f"bad date/time {value!r}") from None
    else:
        raise ValueError(f"bad date/time {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def _to_time(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, datetime):
        return value.time()
    if isinstance(value, timedelta):
        return (datetime.min + value).time()
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1:
        return (datetime.min + timedelta(days=float(value))).time()
    if isinstance(value, str) and value.strip():
        try:
            return time.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"bad time {value!r}")


def _row_ts(row: Sequence[Any], cmap: ColumnMap, zone: ZoneInfo) -> datetime:
    cols = cmap.fields
    if "datetime" in cols:
        return _to_datetime(row[cols["datetime"]], zone)
    if "date" in cols and "time" in cols:
        day_value = row[cols["date"]]
        day_moment = (
            _to_datetime(day_value, zone).astimezone(zone) if day_value is not None else None
        )
        if day_moment is None:
            raise ValueError("date is empty")
        clock = _to_time(row[cols["time"]])
        return datetime.combine(day_moment.date(), clock, tzinfo=zone).astimezone(UTC)
    key = "date" if "date" in cols else "time"
    return _to_datetime(row[cols[key]], zone)


def convert_rows(
    rows: Iterable[tuple[int, Sequence[Any]]], cmap: ColumnMap, symbol: str | None, zone: ZoneInfo
) -> Converted:
    """Convert `(sheet row number, cells)` pairs to bars columns; bad rows are recorded."""
    out = Converted()
    cols = cmap.fields
    width = max(cols.values()) + 1
    for number, raw in rows:
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in raw):
            continue
        out.rows_seen += 1
        row = list(raw) + [None] * (width - len(raw))
        try:
            ts = _row_ts(row, cmap, zone)
            prices = {n: _to_float(row[cols[n]], n, required=True) for n in _REQUIRED}
            volume = _to_float(row[cols["volume"]], "volume", False) if "volume" in cols else None
            wap = _to_float(row[cols["wap"]], "wap", False) if "wap" in cols else None
            count = _to_int(row[cols["bar_count"]], "bar_count") if "bar_count" in cols else None
            row_symbol = symbol
            if (
                "symbol" in cols
                and row[cols["symbol"]] is not None
                and str(row[cols["symbol"]]).strip()
            ):
                row_symbol = str(row[cols["symbol"]]).strip().upper()
            if row_symbol is None:
                raise ValueError("no symbol")
            check_symbol(row_symbol)
        except (ValueError, UserInputError) as exc:
            reason = exc.message if isinstance(exc, UserInputError) else str(exc)
            out.bad_rows.append(BadRow(number, reason))
            continue
        values = {
            "ts": ts,
            "symbol": row_symbol,
            **prices,
            "volume": volume,
            "wap": wap,
            "bar_count": count,
        }
        for name, value in values.items():
            out.columns[name].append(value)
    return out


# --- results -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SheetResult:
    sheet: str
    rows_seen: int = 0
    rows_converted: int = 0
    bad_rows: tuple[BadRow, ...] = ()
    unmapped_columns: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "sheet": self.sheet,
            "rows_seen": self.rows_seen,
            "rows_converted": self.rows_converted,
            "bad_rows": len(self.bad_rows),
            "bad_row_examples": [
                {"row": b.row, "reason": b.reason} for b in self.bad_rows[:MAX_BAD_ROWS_LISTED]
            ],
            "unmapped_columns": list(self.unmapped_columns),
            "symbols": list(self.symbols),
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class FileResult:
    path: Path
    sheets: tuple[SheetResult, ...] = ()
    written: tuple[Path, ...] = ()
    error: str | None = None

    @property
    def converted(self) -> bool:
        return self.error is None and any(s.rows_converted for s in self.sheets)

    @property
    def rows_converted(self) -> int:
        return sum(s.rows_converted for s in self.sheets)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "converted": self.converted,
            "rows_converted": self.rows_converted,
            "written": [str(p) for p in self.written],
            "error": self.error,
            "sheets": [s.to_json() for s in self.sheets],
        }


@dataclass(frozen=True, slots=True)
class MigrationReport:
    bar_size: str
    files: tuple[FileResult, ...]
    dry_run: bool = False

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if not f.converted]

    def to_json(self) -> dict[str, Any]:
        return {
            "bar_size": self.bar_size,
            "dry_run": self.dry_run,
            "files_converted": sum(1 for f in self.files if f.converted),
            "files_failed": len(self.failed),
            "rows_converted": sum(f.rows_converted for f in self.files),
            "rows_skipped": sum(len(s.bad_rows) for f in self.files for s in f.sheets),
            "files": [f.to_json() for f in self.files],
        }


# --- I/O -----------------------------------------------------------------------------------


def expand_inputs(paths: Sequence[Path]) -> list[Path]:
    """Files to migrate: given files as is, folders expanded to their Excel files (recursive).

    A path that does not exist is a `UserInputError` naming it, raised before any work.
    """
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise UserInputError(f"no such file or folder: {path}")
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.suffix.lower() in EXCEL_SUFFIXES and not p.name.startswith("~$")
            )
            if not found:
                raise UserInputError(f"no Excel files (.xlsx/.xlsm) in folder: {path}")
            files.extend(found)
        else:
            files.append(path)
    return list(dict.fromkeys(files))


def parse_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserInputError(
            f"unknown time zone {name!r}: use an IANA name such as America/New_York"
        ) from None


def _find_header(rows: list[tuple[int, Sequence[Any]]]) -> tuple[int, ColumnMap] | None:
    for position, (_, cells) in enumerate(rows):
        cmap = map_columns(cells)
        if not cmap.missing():
            return position, cmap
    return None


def _read_sheet(
    sheet: Any, symbol: str | None, zone: ZoneInfo
) -> tuple[SheetResult, pa.Table | None]:
    rows = sheet.iter_rows(values_only=True)
    head: list[tuple[int, Sequence[Any]]] = []
    for number, cells in enumerate(rows, start=1):
        head.append((number, cells))
        if len(head) >= HEADER_SEARCH_ROWS:
            break
    found = _find_header(head)
    if found is None:
        best = map_columns(head[0][1]) if head else ColumnMap({})
        missing = ", ".join(best.missing()) if head else "everything (empty sheet)"
        return SheetResult(
            sheet.title, error=f"no header row with the bar columns (missing {missing})"
        ), None
    position, cmap = found

    def body() -> Iterable[tuple[int, Sequence[Any]]]:
        yield from head[position + 1 :]
        yield from enumerate(rows, start=len(head) + 1)

    converted = convert_rows(body(), cmap, symbol, zone)
    table = converted.table()
    symbols = tuple(sorted(set(converted.columns["symbol"])))
    result = SheetResult(
        sheet.title,
        rows_seen=converted.rows_seen,
        rows_converted=table.num_rows,
        bad_rows=tuple(converted.bad_rows),
        unmapped_columns=cmap.unmapped,
        symbols=symbols,
        error=None if table.num_rows else "no row could be converted",
    )
    return result, table if table.num_rows else None


def _migrate_file(
    path: Path, root: Path, bar_size: str, symbol: str | None, zone: ZoneInfo, dry_run: bool
) -> FileResult:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    if path.suffix.lower() not in EXCEL_SUFFIXES:
        return FileResult(
            path, error=f"not an Excel workbook ({', '.join(EXCEL_SUFFIXES)}): {path.name}"
        )
    fallback = symbol or symbol_from_filename(path)
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (
        InvalidFileException,
        zipfile.BadZipFile,
        OSError,
        KeyError,
        ValueError,
        TypeError,
    ) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return FileResult(path, error=f"cannot open workbook: {reason}")
    try:
        results: list[SheetResult] = []
        tables: list[pa.Table] = []
        for sheet in workbook.worksheets:
            result, table = _read_sheet(sheet, fallback, zone)
            results.append(result)
            if table is not None:
                tables.append(table)
    finally:
        workbook.close()
    if not tables:
        reasons = "; ".join(f"{r.sheet}: {r.error}" for r in results if r.error)
        if fallback is None and all(b.reason == "no symbol" for r in results for b in r.bad_rows):
            reasons = "no symbol column and no ticker in the file name; pass --symbol"
        return FileResult(path, tuple(results), error=reasons or "nothing to convert")
    written: tuple[Path, ...] = ()
    if not dry_run:
        meta = {"source": "excel", "migrated_from": path.name}
        try:
            writes: list[BarsWrite] = store_bars(root, bar_size, pa.concat_tables(tables), meta)
        except UserInputError as exc:  # e.g. a stored day file of another bar size
            return FileResult(path, tuple(results), error=exc.message)
        written = tuple(w.path for w in writes)
    return FileResult(path, tuple(results), written)


def migrate_excel(
    paths: Sequence[Path],
    root: Path,
    *,
    bar_size: str = "1 min",
    symbol: str | None = None,
    tz: str = "America/New_York",
    dry_run: bool = False,
) -> MigrationReport:
    """Convert each Excel file's bars into the store under `root`; report what was not.

    Bad arguments (missing path, bad bar size, zone or symbol) raise `UserInputError`
    before anything is written; a file that cannot be converted is reported and the
    others are still migrated.
    """
    canonical = normalize_bar_size(bar_size)
    zone = parse_zone(tz)
    if symbol is not None:
        symbol = check_symbol(symbol.strip().upper())
    files = expand_inputs(paths)
    results = [_migrate_file(p, root, canonical, symbol, zone, dry_run) for p in files]
    return MigrationReport(canonical, tuple(results), dry_run)


def migration_json_schema() -> dict[str, Any]:
    sheet = {
        "type": "object",
        "properties": {
            "sheet": {"type": "string"},
            "rows_seen": {"type": "integer"},
            "rows_converted": {"type": "integer"},
            "bad_rows": {"type": "integer"},
            "bad_row_examples": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"row": {"type": "integer"}, "reason": {"type": "string"}},
                    "required": ["row", "reason"],
                },
            },
            "unmapped_columns": {"type": "array", "items": {"type": "string"}},
            "symbols": {"type": "array", "items": {"type": "string"}},
            "error": {"type": ["string", "null"]},
        },
        "required": [
            "sheet",
            "rows_seen",
            "rows_converted",
            "bad_rows",
            "unmapped_columns",
            "error",
        ],
    }
    file_schema = {
        "type": "object",
        "properties": {
            "path": {"type": "string"},
            "converted": {"type": "boolean"},
            "rows_converted": {"type": "integer"},
            "written": {"type": "array", "items": {"type": "string"}},
            "error": {"type": ["string", "null"]},
            "sheets": {"type": "array", "items": sheet},
        },
        "required": ["path", "converted", "rows_converted", "written", "error", "sheets"],
    }
    return {
        "type": "object",
        "properties": {
            "bar_size": {"type": "string"},
            "dry_run": {"type": "boolean"},
            "files_converted": {"type": "integer"},
            "files_failed": {"type": "integer"},
            "rows_converted": {"type": "integer"},
            "rows_skipped": {"type": "integer"},
            "files": {"type": "array", "items": file_schema},
        },
        "required": [
            "bar_size",
            "dry_run",
            "files_converted",
            "files_failed",
            "rows_converted",
            "files",
        ],
    }
