"""`ibdesk data export`: a CSV backup of chosen data, mirroring the data root's layout.

`data/bars/AAPL/1_min/2024-01-02.parquet` becomes
`$ML_BACKUP_PATH/data/bars/AAPL/1_min/2024-01-02.csv`. A backup newer than its source is
kept as is (an incremental backup), unless forced. Each CSV is written atomically (temp
file in the same folder, fsync, rename), so a backup file is never half written. The data
root is only read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as _compute
import pyarrow.csv as pacsv

from ibdesk.store.catalog import DataFile, find_data_files, select_files
from ibdesk.store.parquet import atomic_file
from ibdesk.store.readers import DataKind, SchemaMismatchError, read_data

BACKUP_SUBDIR = "data"

pc: Any = _compute  # pyarrow.compute functions are generated at import time


class ExportStatus(StrEnum):
    WRITTEN = "written"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ExportItem:
    source: Path
    target: Path
    status: ExportStatus
    rows: int = 0
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "target": str(self.target),
            "status": self.status.value,
            "rows": self.rows,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class ExportReport:
    target_root: Path
    items: tuple[ExportItem, ...]

    def count(self, status: ExportStatus) -> int:
        return sum(1 for item in self.items if item.status is status)

    @property
    def failed(self) -> list[ExportItem]:
        return [item for item in self.items if item.status is ExportStatus.FAILED]

    def to_json(self) -> dict[str, Any]:
        return {
            "target": str(self.target_root),
            "counts": {s.value: self.count(s) for s in ExportStatus},
            "rows": sum(item.rows for item in self.items if item.status is ExportStatus.WRITTEN),
            "files": [item.to_json() for item in self.items],
        }


def backup_path(root: Path, target_root: Path, data_file: DataFile) -> Path:
    """Where the CSV backup of a data file goes: same relative path, `.csv` suffix."""
    relative = data_file.final.relative_to(root)
    return (target_root / BACKUP_SUBDIR / relative).with_suffix(".csv")


def _is_current(target: Path, data_file: DataFile) -> bool:
    if not target.exists():
        return False
    newest_source = max(p.stat().st_mtime_ns for p in data_file.physical)
    return target.stat().st_mtime_ns >= newest_source


def _csv_ready(table: pa.Table) -> pa.Table:
    """Timestamps as ISO-8601 UTC text (`2024-01-02T14:30:00.000000000Z`), readable anywhere."""
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            text = pc.strftime(table.column(i), format="%Y-%m-%dT%H:%M:%S")
            table = table.set_column(
                i, pa.field(field.name, pa.string()), pc.binary_join_element_wise(text, "Z", "")
            )
    return table


def write_csv_atomic(table: pa.Table, path: Path) -> Path:
    """Write `table` as CSV to `path` through the project's one atomic-write mechanism."""
    with atomic_file(path) as handle:
        pacsv.write_csv(_csv_ready(table), handle)
    return path


def export_csv(
    root: Path,
    target_root: Path,
    *,
    kinds: Iterable[DataKind] | None = None,
    symbols: Iterable[str] | None = None,
    start: date | None = None,
    end: date | None = None,
    bar_size_folder: str | None = None,
    force: bool = False,
) -> ExportReport:
    """Back up the selected data files of `root` as CSV under `target_root/data/`.

    A file that cannot be read is reported as failed and the others are still exported.
    """
    files = select_files(
        find_data_files(root, kinds),
        symbols=symbols,
        start=start,
        end=end,
        bar_size_folder=bar_size_folder,
    )
    items: list[ExportItem] = []
    for data_file in files:
        target = backup_path(root, target_root, data_file)
        if not force and _is_current(target, data_file):
            items.append(ExportItem(data_file.final, target, ExportStatus.SKIPPED))
            continue
        try:
            table = read_data(data_file.final, data_file.kind)
            write_csv_atomic(table, target)
        except SchemaMismatchError as exc:
            items.append(
                ExportItem(data_file.final, target, ExportStatus.FAILED, message=exc.message)
            )
            continue
        except OSError as exc:
            message = f"{target}: {exc.strerror or exc}"
            items.append(ExportItem(data_file.final, target, ExportStatus.FAILED, message=message))
            continue
        items.append(ExportItem(data_file.final, target, ExportStatus.WRITTEN, rows=table.num_rows))
    return ExportReport(target_root, tuple(items))


def export_json_schema() -> dict[str, Any]:
    item = {
        "type": "object",
        "properties": {
            "source": {"type": "string"},
            "target": {"type": "string"},
            "status": {"type": "string", "enum": [s.value for s in ExportStatus]},
            "rows": {"type": "integer"},
            "message": {"type": "string"},
        },
        "required": ["source", "target", "status", "rows", "message"],
    }
    return {
        "type": "object",
        "properties": {
            "target": {"type": "string"},
            "counts": {
                "type": "object",
                "properties": {s.value: {"type": "integer"} for s in ExportStatus},
                "required": [s.value for s in ExportStatus],
            },
            "rows": {"type": "integer"},
            "files": {"type": "array", "items": item},
        },
        "required": ["target", "counts", "rows", "files"],
    }
