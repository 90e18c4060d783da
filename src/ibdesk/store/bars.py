"""Bars files: IB bar sizes, merging new bars into a day's file, splitting bars by ET day.

A bars file holds one symbol, one bar size and one ET trading day
(`bars/{SYMBOL}/{bar_size}/{YYYY-MM-DD}.parquet`). Appending merges on `ts` (the bar
start): a bar fetched again replaces the stored one, so re-running a download never
duplicates rows. Every write goes through the one atomic writer. Merging and splitting
are pure functions on Arrow tables; `store_bars` is the only function here that does I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as _compute

from ibdesk.domain.bars import parse_bar_size
from ibdesk.domain.hours import ET_NAME
from ibdesk.errors import UserInputError
from ibdesk.store import layout, schemas
from ibdesk.store.parquet import write_table_atomic
from ibdesk.store.readers import DataKind, conform, read_data

BAR_SIZE_KEY = "bar_size"

_SYMBOL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-_ ]{0,31}$")

pc: Any = _compute  # pyarrow.compute functions are generated at import time


def normalize_bar_size(text: str) -> str:
    """A bar size in IB's spelling ("1 min", "5 mins"); accepts "1_min", "5min", "1 mins".

    One parser for the whole project (`ibdesk.domain.bars.parse_bar_size`); raises
    `UserInputError` naming the value when IB has no such bar size.
    """
    return str(parse_bar_size(text))


def bar_size_seconds(bar_size: str) -> int:
    """Length of one bar in seconds (only intraday sizes need it exact)."""
    return parse_bar_size(bar_size).seconds


def is_intraday(bar_size: str) -> bool:
    return bar_size_seconds(bar_size) < 86400


def check_symbol(symbol: str) -> str:
    """A symbol safe to use as a folder name, or `UserInputError` naming it."""
    if not _SYMBOL_RE.match(symbol) or symbol in {".", ".."}:
        raise UserInputError(f"bad symbol {symbol!r}: letters, digits, '.', '-', '_' only")
    return symbol


def merge_bars(existing: pa.Table | None, new: pa.Table) -> pa.Table:
    """Union of two bars tables keyed on `ts`: newer rows win, result sorted by `ts`.

    Both tables must already follow the bars contract. Within `new`, a later row for the
    same `ts` wins too (the last value IB sent is the final one).
    """
    tables = [t for t in (existing, new) if t is not None]
    combined = (
        tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")
    )
    if combined.num_rows == 0:
        return combined
    ts_ns = combined.column("ts").cast(pa.int64()).to_numpy()
    arrival = np.arange(len(ts_ns))
    order = np.lexsort((-arrival, ts_ns))  # by ts, then latest arrival first
    sorted_ts = ts_ns[order]
    first_of_ts = np.ones(len(order), dtype=bool)
    first_of_ts[1:] = sorted_ts[1:] != sorted_ts[:-1]
    return combined.take(pa.array(order[first_of_ts]))


def et_days(ts: pa.ChunkedArray | pa.Array) -> pa.Array:
    """ET calendar date (date32) of each UTC timestamp; DST-aware."""
    local = pc.local_timestamp(ts.cast(pa.timestamp("ns", tz=ET_NAME)))
    result = local.cast(pa.date32())
    return result.combine_chunks() if isinstance(result, pa.ChunkedArray) else result


def split_by_et_day(table: pa.Table) -> dict[date, pa.Table]:
    """Rows of a bars table grouped by the ET date of their `ts` (the day folder of a bar)."""
    if table.num_rows == 0:
        return {}
    days = et_days(table.column("ts"))
    out: dict[date, pa.Table] = {}
    for day in pc.unique(days).to_pylist():
        out[day] = table.filter(pc.equal(days, pa.scalar(day, pa.date32())))
    return dict(sorted(out.items()))


@dataclass(frozen=True, slots=True)
class BarsWrite:
    """What `store_bars` did to one day's file."""

    path: Path
    symbol: str
    day: date
    rows_before: int
    rows_after: int

    @property
    def rows_added(self) -> int:
        return self.rows_after - self.rows_before


def _bars_metadata(bar_size: str, extra: dict[str, str] | None) -> dict[bytes, bytes]:
    schema = schemas.bars_schema({BAR_SIZE_KEY: bar_size, **(extra or {})})
    return dict(schema.metadata or {})


def store_bars(
    root: Path, bar_size: str, table: pa.Table, metadata: dict[str, str] | None = None
) -> list[BarsWrite]:
    """Merge `table` (any symbols, any days) into the day files under `root/bars`.

    Each (symbol, ET day) file is read, merged with `merge_bars` and rewritten atomically;
    a file already holding another bar size is refused before anything is written.
    """
    bar_size = normalize_bar_size(bar_size)
    incoming = conform(table, DataKind.BARS, Path("<new bars>"))
    if incoming.num_rows and incoming.column("symbol").null_count:
        raise UserInputError("bars to store have rows without a symbol")
    plan: list[tuple[Path, str, date, pa.Table]] = []
    for symbol in sorted(pc.unique(incoming.column("symbol")).to_pylist()):
        check_symbol(symbol)
        rows = incoming.filter(pc.equal(incoming.column("symbol"), symbol))
        for day, day_rows in split_by_et_day(rows).items():
            path = layout.bars_path(root, symbol, bar_size, day)
            plan.append((path, symbol, day, day_rows))
    existing: dict[Path, pa.Table | None] = {}
    for path, *_ in plan:
        existing[path] = _read_existing(path, bar_size)
    meta = _bars_metadata(bar_size, metadata)
    results: list[BarsWrite] = []
    for path, symbol, day, day_rows in plan:
        before = existing[path]
        merged = merge_bars(before, day_rows)
        old_meta = dict(before.schema.metadata or {}) if before is not None else {}
        merged = merged.replace_schema_metadata({**old_meta, **meta})
        write_table_atomic(merged, path)
        rows_before = before.num_rows if before is not None else 0
        results.append(BarsWrite(path, symbol, day, rows_before, merged.num_rows))
    return results


def _read_existing(path: Path, bar_size: str) -> pa.Table | None:
    if not path.exists():
        return None
    table = read_data(path, DataKind.BARS)
    stored = schemas.file_metadata(table.schema).get(BAR_SIZE_KEY)
    if stored is not None and normalize_bar_size(stored) != bar_size:
        raise UserInputError(f"{path}: holds {stored} bars, refusing to merge {bar_size} bars")
    return table
