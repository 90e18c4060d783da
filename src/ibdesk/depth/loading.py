"""Finding and reading the L2 snapshot and trades files of one symbol-day (edge: files).

Owns discovery under `DIR/SYMBOL/` (live captures `{date}_snapshots_{HHMMSS}.parquet`,
backfills `{date}_snapshots_databento.parquet`, the matching trades files, and part files
`{stem}.part-NNNN.parquet`, which are read as one file with their final file), the source
of each file (Parquet metadata `source`, else the `_databento` suffix, else `ibkr` for a
live-capture name), the choice of one source per day (ibkr, else databento, else sim:
sources are never concatenated, that would double rows and corrupt OFI) and chunked
reads, so memory is bounded by the chunk size. It computes nothing.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from itertools import islice
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ibdesk.depth.analysis import level_count, normalize_chunk, snapshot_columns
from ibdesk.errors import UserInputError
from ibdesk.store.layout import Source, level2_dir
from ibdesk.store.parquet import logical_files
from ibdesk.store.schemas import file_metadata

DEFAULT_CHUNK_ROWS = 65_536
SOURCE_PRIORITY: tuple[Source, ...] = (Source.IBKR, Source.DATABENTO, Source.SIM)
TRADE_COLUMNS = ("ts", "price", "size", "side")
_NAME_RE = re.compile(
    r"^(?P<day>\d{4}-\d{2}-\d{2})_(?P<kind>snapshots|trades)_(?P<tag>[A-Za-z0-9]+)\.parquet$"
)
_MAX_DAYS_LISTED = 15


class FileKind(StrEnum):
    SNAPSHOTS = "snapshots"
    TRADES = "trades"


class SourceChoice(StrEnum):
    """`--source`: one source, or `auto` for the best one present (ibkr > databento > sim)."""

    AUTO = "auto"
    IBKR = "ibkr"
    DATABENTO = "databento"
    SIM = "sim"


@dataclass(frozen=True, slots=True)
class DayFile:
    """One logical file (a final file and/or its parts) of a symbol-day."""

    path: Path
    physical: tuple[Path, ...]
    day: date
    kind: FileKind
    source: Source
    columns: tuple[str, ...]
    interval_ms: float | None


@dataclass(frozen=True, slots=True)
class DaySelection:
    """The files the analysis reads: one source's snapshots and trades of one day."""

    symbol: str
    day: date
    folder: Path
    source: Source
    sources: tuple[Source, ...]
    snapshots: tuple[DayFile, ...]
    trades: tuple[DayFile, ...]
    levels: int
    interval_ms: float | None


def _parse_name(path: Path) -> tuple[date, FileKind, str] | None:
    match = _NAME_RE.match(path.name)
    if match is None:
        return None
    try:
        day = date.fromisoformat(match.group("day"))
    except ValueError:
        return None
    return day, FileKind(match.group("kind")), match.group("tag")


def days_with_data(folder: Path) -> list[date]:
    """Days that have at least one snapshots file in `folder`, oldest first."""
    if not folder.is_dir():
        return []
    days: set[date] = set()
    for final in logical_files(folder, "*_snapshots_*.parquet"):
        parsed = _parse_name(final)
        if parsed is not None:
            days.add(parsed[0])
    return sorted(days)


def _file_source(path: Path, metadata: dict[str, str], tag: str) -> Source:
    raw = metadata.get("source")
    if raw is not None:
        try:
            return Source(raw.strip().lower())
        except ValueError:
            known = ", ".join(s.value for s in Source)
            raise UserInputError(
                f"{path}: unknown source {raw!r} in Parquet metadata (expected {known})"
            ) from None
    return Source.DATABENTO if tag == "databento" else Source.IBKR


def _describe_file(final: Path, physical: list[Path]) -> DayFile | None:
    parsed = _parse_name(final)
    if parsed is None or not physical:
        return None
    day, kind, tag = parsed
    try:
        schema = pq.read_schema(physical[0])
    except (OSError, pa.ArrowException) as exc:
        raise UserInputError(f"{physical[0]}: not a readable Parquet file ({exc})") from None
    metadata = file_metadata(schema)
    interval: float | None = None
    if "interval_ms" in metadata:
        try:
            interval = float(metadata["interval_ms"])
        except ValueError:
            interval = None
    return DayFile(
        path=final,
        physical=tuple(physical),
        day=day,
        kind=kind,
        source=_file_source(physical[0], metadata, tag),
        columns=tuple(schema.names),
        interval_ms=interval,
    )


def find_day_files(folder: Path, day: date) -> list[DayFile]:
    """Every snapshots and trades logical file of `day` in `folder`, in name order."""
    if not folder.is_dir():
        return []
    found: list[DayFile] = []
    for final, physical in logical_files(folder, f"{day.isoformat()}_*.parquet").items():
        described = _describe_file(final, physical)
        if described is not None:
            found.append(described)
    return found


def _days_text(days: list[date]) -> str:
    if not days:
        return "none"
    shown = [d.isoformat() for d in days[-_MAX_DAYS_LISTED:]]
    more = len(days) - len(shown)
    return ", ".join(shown) + (f" (and {more} earlier)" if more else "")


def select_day(
    level2_root: Path, symbol: str, day: date | None, choice: SourceChoice = SourceChoice.AUTO
) -> DaySelection:
    """The files to analyse for `symbol` on `day` (default: the latest day with snapshots).

    Raises `UserInputError` naming the folder and the days that exist when there is no
    data, and the sources found when the requested one is missing.
    """
    folder = level2_dir(level2_root, symbol).absolute()
    if day is None:
        days = days_with_data(folder)
        if not days:
            where = folder if folder.is_dir() else f"{folder} (folder does not exist)"
            raise UserInputError(f"no L2 snapshots for {symbol} in {where}; days with data: none")
        day = days[-1]
    files = find_day_files(folder, day)
    snapshots = [f for f in files if f.kind is FileKind.SNAPSHOTS]
    if not snapshots:
        where = folder if folder.is_dir() else f"{folder} (folder does not exist)"
        raise UserInputError(
            f"no L2 snapshots for {symbol} on {day.isoformat()} in {where}; "
            f"days with data: {_days_text(days_with_data(folder))}"
        )
    present = {f.source for f in snapshots}
    sources = tuple(s for s in SOURCE_PRIORITY if s in present)
    if choice is SourceChoice.AUTO:
        source = sources[0]
    else:
        source = Source(choice.value)
        if source not in present:
            raise UserInputError(
                f"no {source.value} snapshots for {symbol} on {day.isoformat()} in {folder}; "
                f"sources found: {', '.join(s.value for s in sources)}"
            )
    chosen = tuple(f for f in snapshots if f.source is source)
    levels = min(level_count(list(f.columns)) for f in chosen)
    for f in chosen:
        if "ts" not in f.columns or level_count(list(f.columns)) == 0:
            raise UserInputError(
                f"{f.path}: not an L2 snapshot file (needs ts, bid_px_00, bid_sz_00, "
                "ask_px_00, ask_sz_00 columns)"
            )
    trades = tuple(f for f in files if f.kind is FileKind.TRADES and f.source is source)
    for f in trades:
        missing = [c for c in ("ts", "price", "size") if c not in f.columns]
        if missing:
            raise UserInputError(f"{f.path}: trades file lacks columns {', '.join(missing)}")
    intervals = [f.interval_ms for f in chosen if f.interval_ms is not None]
    return DaySelection(
        symbol=symbol,
        day=day,
        folder=folder,
        source=source,
        sources=sources,
        snapshots=chosen,
        trades=trades,
        levels=levels,
        interval_ms=intervals[0] if intervals else None,
    )


def iter_snapshot_chunks(
    selection: DaySelection, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[pl.DataFrame]:
    """The selected snapshot rows in file order, `chunk_rows` at a time: only the columns
    the analysis uses (`snapshot_columns`), already in its types (`normalize_chunk`;
    missing values are left null, the analysis fills them where it reuses memory).

    Whole row groups (merged up to `chunk_rows`) are decoded by `READERS` background
    threads ahead of the caller (Parquet decoding releases the GIL), so the caller's work
    on one chunk overlaps the decoding of the next ones; memory is bounded by
    `READERS` + 1 spans of the larger of `chunk_rows` and the file's row-group size.
    """
    spans = [
        _Span(path, start, rows)
        for day_file in selection.snapshots
        for path in day_file.physical
        for start, rows in _read_spans(path, chunk_rows)
    ]
    return _read_ahead(spans, selection.levels, chunk_rows)


def snapshot_rows(selection: DaySelection) -> int:
    """The number of selected snapshot rows, from the files' metadata (nothing decoded)."""
    rows = 0
    for day_file in selection.snapshots:
        for path in day_file.physical:
            with pq.ParquetFile(path) as parquet:
                rows += parquet.metadata.num_rows
    return rows


READERS = 2


@dataclass(frozen=True, slots=True)
class _Span:
    """Rows [start, start + rows) of one physical file: whole row groups."""

    path: Path
    start: int
    rows: int


def _read_span(span: _Span, levels: int) -> pl.DataFrame:
    """Decode one span (polars decodes a row group faster than Arrow's batch reader)."""
    scan = pl.scan_parquet(span.path).select(snapshot_columns(levels))
    return normalize_chunk(scan.slice(span.start, span.rows).collect(), levels, fill_nulls=False)


def _read_ahead(spans: list[_Span], levels: int, chunk_rows: int) -> Iterator[pl.DataFrame]:
    with ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="ibdesk-depth-read") as pool:
        todo = iter(spans)
        pending = deque(pool.submit(_read_span, span, levels) for span in islice(todo, READERS))
        while pending:
            frame = pending.popleft().result()
            following = next(todo, None)
            if following is not None:
                pending.append(pool.submit(_read_span, following, levels))
            yield from frame.iter_slices(chunk_rows)


def _read_spans(path: Path, chunk_rows: int) -> list[tuple[int, int]]:
    """(start, rows) to read at once: consecutive row groups merged until `chunk_rows`."""
    with pq.ParquetFile(path) as parquet:
        metadata = parquet.metadata
    spans: list[tuple[int, int]] = []
    start = pending = 0
    for i in range(metadata.num_row_groups):
        pending += metadata.row_group(i).num_rows
        if pending >= chunk_rows:
            spans.append((start, pending))
            start, pending = start + pending, 0
    if pending:
        spans.append((start, pending))
    return spans


def read_trades(selection: DaySelection) -> pl.DataFrame | None:
    """All trades of the selected source and day, or None when it has no trades file."""
    frames: list[pl.DataFrame] = []
    for day_file in selection.trades:
        columns = [c for c in TRADE_COLUMNS if c in day_file.columns]
        for path in day_file.physical:
            with pq.ParquetFile(path) as parquet:
                frame = pl.from_arrow(parquet.read(columns=columns))
            assert isinstance(frame, pl.DataFrame)
            if "side" not in frame.columns:
                frame = frame.with_columns(pl.lit("N").alias("side"))
            frames.append(
                frame.select(
                    pl.col("ts").cast(pl.Datetime("ns", "UTC")),
                    pl.col("price").cast(pl.Float64),
                    pl.col("size").cast(pl.Float64),
                    pl.col("side").cast(pl.String),
                )
            )
    if not frames:
        return None
    return pl.concat(frames, how="vertical")
