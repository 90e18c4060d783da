"""Which data files exist under the data root, by kind, symbol and day (paths only).

Walks the layout of README's Data layout and groups part files with their final file, skipping
`*.tmp` leftovers and parts already compacted into their final file, so every consumer
(queries, scan, export) sees each logical file exactly once. Reads no file contents.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ibdesk.store.parquet import logical_files
from ibdesk.store.readers import DataKind

_DAY_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})")
LEVEL2_PATTERNS: dict[DataKind, str] = {
    DataKind.L2_SNAPSHOTS: "*_snapshots_*.parquet",
    DataKind.TRADES: "*_trades_*.parquet",
    DataKind.DEPTH_MESSAGES: "*_messages_*.parquet",
}


@dataclass(frozen=True, slots=True)
class DataFile:
    """One logical data file: its final name and the physical files that hold its rows."""

    kind: DataKind
    symbol: str
    final: Path
    physical: tuple[Path, ...]
    day: date | None
    bar_size_folder: str | None = None

    @property
    def bar_size(self) -> str | None:
        return self.bar_size_folder.replace("_", " ") if self.bar_size_folder else None

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.physical if p.exists())


def _day_of(name: str) -> date | None:
    match = _DAY_RE.match(name)
    if match is None:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def _logical(folder: Path, pattern: str) -> Iterable[tuple[Path, tuple[Path, ...]]]:
    for final, physical in logical_files(folder, pattern).items():
        if physical:
            yield final, tuple(physical)


def find_data_files(root: Path, kinds: Iterable[DataKind] | None = None) -> list[DataFile]:
    """Every logical data file under `root` of the given kinds (all kinds by default)."""
    wanted = set(kinds) if kinds is not None else set(DataKind)
    found: list[DataFile] = []
    if DataKind.BARS in wanted:
        for symbol_dir in _subdirs(root / "bars"):
            for size_dir in _subdirs(symbol_dir):
                for final, physical in _logical(size_dir, "*.parquet"):
                    found.append(
                        DataFile(
                            DataKind.BARS,
                            symbol_dir.name,
                            final,
                            physical,
                            _day_of(final.name),
                            size_dir.name,
                        )
                    )
    for kind, pattern in LEVEL2_PATTERNS.items():
        if kind not in wanted:
            continue
        for symbol_dir in _subdirs(root / "level2"):
            for final, physical in _logical(symbol_dir, pattern):
                found.append(DataFile(kind, symbol_dir.name, final, physical, _day_of(final.name)))
    if DataKind.SIGNALS in wanted:
        for symbol_dir in _subdirs(root / "signals"):
            for final, physical in _logical(symbol_dir, "*.parquet"):
                found.append(
                    DataFile(
                        DataKind.SIGNALS, symbol_dir.name, final, physical, _day_of(final.name)
                    )
                )
    return found


def select_files(
    files: Iterable[DataFile],
    *,
    symbols: Iterable[str] | None = None,
    start: date | None = None,
    end: date | None = None,
    bar_size_folder: str | None = None,
) -> list[DataFile]:
    """Files matching every given filter; symbols compare case-insensitively."""
    wanted = {s.upper() for s in symbols} if symbols else None
    out: list[DataFile] = []
    for f in files:
        if wanted is not None and f.symbol.upper() not in wanted:
            continue
        if (start or end) and f.day is None:
            continue
        if start and f.day and f.day < start:
            continue
        if end and f.day and f.day > end:
            continue
        if bar_size_folder and f.kind is DataKind.BARS and f.bar_size_folder != bar_size_folder:
            continue
        out.append(f)
    return out
