"""`ibdesk data scan`: what the data root holds (symbols, days, sources, rows, bytes) and
where bar series have gaps against the NYSE (XNYS) calendar.

Row counts and sources come from Parquet footers (no data is read); gap detection reads
only the `ts` column of bars files. Gap arithmetic is pure (`expected_bar_starts`,
`find_gaps`); sessions come from `ibdesk.calendar`. Only regular-hours bars
are expected: pre- and post-market bars are welcome but never counted missing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ibdesk.calendar import Session, to_et, xnys
from ibdesk.errors import UserInputError
from ibdesk.store import layout
from ibdesk.store.bars import bar_size_seconds, normalize_bar_size
from ibdesk.store.catalog import DataFile, find_data_files, select_files
from ibdesk.store.parquet import part_files
from ibdesk.store.readers import DataKind, SchemaMismatchError, read_data

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Gap:
    """A run of consecutive missing regular-hours bars: [start, end) in UTC."""

    day: date
    start_ns: int
    end_ns: int
    missing_bars: int

    def to_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "start": _iso(self.start_ns),
            "end": _iso(self.end_ns),
            "missing_bars": self.missing_bars,
        }


@dataclass(frozen=True, slots=True)
class SeriesGaps:
    """Missing sessions (no file) between a series' first and last day, and intraday gaps."""

    missing_days: tuple[date, ...] = ()
    intraday: tuple[Gap, ...] = ()

    @property
    def missing_bars(self) -> int:
        return sum(g.missing_bars for g in self.intraday)

    def to_json(self) -> dict[str, Any]:
        return {
            "missing_days": [d.isoformat() for d in self.missing_days],
            "intraday": [g.to_json() for g in self.intraday],
            "missing_bars": self.missing_bars,
        }


@dataclass(frozen=True, slots=True)
class Dataset:
    """All files of one kind for one symbol (and one bar size for bars)."""

    kind: DataKind
    symbol: str
    bar_size: str | None
    days: tuple[date, ...]
    sources: tuple[str, ...]
    files: int
    rows: int
    size_bytes: int
    gaps: SeriesGaps | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "symbol": self.symbol,
            "bar_size": self.bar_size,
            "days": len(self.days),
            "first_day": self.days[0].isoformat() if self.days else None,
            "last_day": self.days[-1].isoformat() if self.days else None,
            "sources": list(self.sources),
            "files": self.files,
            "rows": self.rows,
            "bytes": self.size_bytes,
            "gaps": self.gaps.to_json() if self.gaps is not None else None,
        }


@dataclass(frozen=True, slots=True)
class Problem:
    path: Path
    message: str


@dataclass(frozen=True, slots=True)
class Inventory:
    root: Path
    datasets: tuple[Dataset, ...]
    problems: tuple[Problem, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "symbols": sorted({d.symbol for d in self.datasets}),
            "totals": {
                "files": sum(d.files for d in self.datasets),
                "rows": sum(d.rows for d in self.datasets),
                "bytes": sum(d.size_bytes for d in self.datasets),
            },
            "datasets": [d.to_json() for d in self.datasets],
            "problems": [{"path": str(p.path), "message": p.message} for p in self.problems],
        }


def _iso(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / NS_PER_S, tz=UTC).isoformat().replace("+00:00", "Z")


# --- pure gap arithmetic ---------------------------------------------------------------


def expected_bar_starts(session: Session, step_ns: int, et_offset_ns: int) -> np.ndarray:
    """Regular-hours bar starts of a session: the open, then every clock-aligned multiple of
    `step_ns` (in ET wall time, `et_offset_ns` = UTC minus ET) before the close.

    IB aligns bars to the clock (hour bars start 09:30, 10:00, 11:00 ...); for sizes that
    divide 30 minutes this is simply every `step_ns` from the open.
    """
    local_open = session.open_ns - et_offset_ns
    first_aligned = -(-local_open // step_ns) * step_ns + et_offset_ns
    grid = np.arange(first_aligned, session.close_ns, step_ns, dtype=np.int64)
    if first_aligned != session.open_ns:
        grid = np.concatenate([np.array([session.open_ns], dtype=np.int64), grid])
    return grid


def find_gaps(
    day: date, present_ns: np.ndarray, expected_ns: np.ndarray, close_ns: int
) -> list[Gap]:
    """Runs of `expected_ns` starts absent from `present_ns`; a run ends at the next expected
    start (or the session close)."""
    missing = ~np.isin(expected_ns, present_ns)
    gaps: list[Gap] = []
    i = 0
    n = len(expected_ns)
    while i < n:
        if not missing[i]:
            i += 1
            continue
        j = i
        while j < n and missing[j]:
            j += 1
        end = int(expected_ns[j]) if j < n else close_ns
        gaps.append(Gap(day, int(expected_ns[i]), end, j - i))
        i = j
    return gaps


def missing_sessions(sessions: list[date], have: set[date]) -> tuple[date, ...]:
    return tuple(d for d in sessions if d not in have)


def _et_offset_ns(ts_ns: int) -> int:
    """UTC minus ET wall time at `ts_ns` (4 h in summer, 5 h in winter)."""
    offset = to_et(ts_ns).utcoffset()
    assert offset is not None
    return -int(offset.total_seconds()) * NS_PER_S


# --- I/O: scanning ---------------------------------------------------------------------


def _footer(path: Path) -> tuple[int, dict[str, str]]:
    meta = pq.read_metadata(path)
    kv = {k.decode(): v.decode() for k, v in (meta.metadata or {}).items()}
    return meta.num_rows, kv


def _source(data_file: DataFile, kv: dict[str, str]) -> str:
    if "source" in kv:
        return kv["source"]
    if data_file.final.stem.endswith("_databento"):
        return "databento"
    return "unknown"


def _bar_gaps(files: list[DataFile], bar_size: str, problems: list[Problem]) -> SeriesGaps:
    try:
        step_s = bar_size_seconds(bar_size)
    except UserInputError:
        return SeriesGaps()
    dated = sorted((f for f in files if f.day is not None), key=lambda f: f.day or date.min)
    if not dated or step_s >= 7 * 86400:
        return SeriesGaps()
    first, last = dated[0].day, dated[-1].day
    assert first is not None
    assert last is not None
    sessions = xnys().sessions_between(first, last)
    have = {f.day for f in dated}
    missing_days = missing_sessions([s.day for s in sessions], {d for d in have if d})
    if step_s >= 86400:
        return SeriesGaps(missing_days=missing_days)
    by_day = {s.day: s for s in sessions}
    step_ns = step_s * NS_PER_S
    gaps: list[Gap] = []
    for data_file in dated:
        session = by_day.get(data_file.day) if data_file.day else None
        if session is None:
            continue
        try:
            table = read_data(data_file.final, DataKind.BARS, columns=["ts"])
        except SchemaMismatchError as exc:
            problems.append(Problem(data_file.final, exc.message))
            continue
        present = table.column("ts").cast(pa.int64()).to_numpy()
        expected = expected_bar_starts(session, step_ns, _et_offset_ns(session.open_ns))
        gaps.extend(find_gaps(session.day, present, expected, session.close_ns))
    return SeriesGaps(missing_days=missing_days, intraday=tuple(gaps))


def missing_bar_ranges(
    root: Path, symbol: str, bar_size: str, first: date, last: date
) -> list[Gap]:
    """Regular-hours bars of `symbol` missing from the store between two days (inclusive).

    For `data update`: a session with no file is one gap over the whole session; a
    session with a file contributes its intraday gaps; daily bars yield one gap per
    missing session. Weekly and monthly bars are not tracked (empty list).
    """
    step_s = bar_size_seconds(bar_size)
    if step_s >= 7 * 86400:
        return []
    gaps: list[Gap] = []
    for session in xnys().sessions_between(first, last):
        path = layout.bars_path(root, symbol, normalize_bar_size(bar_size), session.day)
        exists = path.exists() or bool(part_files(path))
        if step_s >= 86400:
            if not exists:
                gaps.append(Gap(session.day, session.open_ns, session.close_ns, 1))
            continue
        expected = expected_bar_starts(session, step_s * NS_PER_S, _et_offset_ns(session.open_ns))
        present = (
            read_data(path, DataKind.BARS, columns=["ts"]).column("ts").cast(pa.int64()).to_numpy()
            if exists
            else np.empty(0, dtype=np.int64)
        )
        gaps.extend(find_gaps(session.day, present, expected, session.close_ns))
    return gaps


def scan(root: Path, symbols: list[str] | None = None, with_gaps: bool = True) -> Inventory:
    """Inventory of `root`: one `Dataset` per (kind, symbol, bar size), plus unreadable files."""
    files = select_files(find_data_files(root), symbols=symbols)
    groups: dict[tuple[DataKind, str, str | None], list[DataFile]] = defaultdict(list)
    for data_file in files:
        groups[(data_file.kind, data_file.symbol, data_file.bar_size)].append(data_file)
    problems: list[Problem] = []
    datasets: list[Dataset] = []
    kind_order = list(DataKind)
    for (kind, symbol, bar_size), members in sorted(
        groups.items(),
        key=lambda item: (item[0][1], kind_order.index(item[0][0]), item[0][2] or ""),
    ):
        rows = 0
        size = 0
        sources: set[str] = set()
        readable: list[DataFile] = []
        for data_file in members:
            try:
                footers = [_footer(p) for p in data_file.physical]
            except (OSError, pa.ArrowInvalid) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                problems.append(Problem(data_file.final, f"unreadable Parquet ({reason})"))
                continue
            readable.append(data_file)
            rows += sum(n for n, _ in footers)
            size += data_file.size_bytes
            sources.add(_source(data_file, footers[0][1]))
        days = tuple(sorted({f.day for f in readable if f.day is not None}))
        gaps = (
            _bar_gaps(readable, bar_size, problems)
            if kind is DataKind.BARS and bar_size and with_gaps
            else None
        )
        datasets.append(
            Dataset(
                kind,
                symbol,
                bar_size,
                days,
                tuple(sorted(sources)),
                len(readable),
                rows,
                size,
                gaps,
            )
        )
    return Inventory(root, tuple(datasets), tuple(problems))


def inventory_json_schema() -> dict[str, Any]:
    """JSON Schema of `Inventory.to_json()` (the `data scan --json` output)."""
    gap = {
        "type": "object",
        "properties": {
            "day": {"type": "string", "format": "date"},
            "start": {"type": "string", "format": "date-time"},
            "end": {"type": "string", "format": "date-time"},
            "missing_bars": {"type": "integer"},
        },
        "required": ["day", "start", "end", "missing_bars"],
    }
    dataset = {
        "type": "object",
        "properties": {
            "kind": {"type": "string", "enum": [k.value for k in DataKind]},
            "symbol": {"type": "string"},
            "bar_size": {"type": ["string", "null"]},
            "days": {"type": "integer"},
            "first_day": {"type": ["string", "null"]},
            "last_day": {"type": ["string", "null"]},
            "sources": {"type": "array", "items": {"type": "string"}},
            "files": {"type": "integer"},
            "rows": {"type": "integer"},
            "bytes": {"type": "integer"},
            "gaps": {
                "oneOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "properties": {
                            "missing_days": {"type": "array", "items": {"type": "string"}},
                            "intraday": {"type": "array", "items": gap},
                            "missing_bars": {"type": "integer"},
                        },
                        "required": ["missing_days", "intraday", "missing_bars"],
                    },
                ]
            },
        },
        "required": [
            "kind",
            "symbol",
            "bar_size",
            "days",
            "sources",
            "files",
            "rows",
            "bytes",
            "gaps",
        ],
    }
    return {
        "type": "object",
        "properties": {
            "root": {"type": "string"},
            "symbols": {"type": "array", "items": {"type": "string"}},
            "totals": {
                "type": "object",
                "properties": {k: {"type": "integer"} for k in ("files", "rows", "bytes")},
                "required": ["files", "rows", "bytes"],
            },
            "datasets": {"type": "array", "items": dataset},
            "problems": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"path": {"type": "string"}, "message": {"type": "string"}},
                    "required": ["path", "message"],
                },
            },
        },
        "required": ["root", "symbols", "totals", "datasets", "problems"],
    }
