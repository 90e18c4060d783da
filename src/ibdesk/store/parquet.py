"""The one atomic Parquet writer of the project, and readers that see part files as one.

Writers never leave a half file under a final name: data goes to `NAME.tmp` in the same
folder, is fsynced, then renamed over the final name (and the folder fsynced). A crash
leaves at most a `*.tmp` file, which readers ignore.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

TMP_SUFFIX = ".tmp"
_PART_RE = re.compile(r"^(?P<stem>.+)\.part-(?P<n>\d{4,})\.parquet$")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Open `path.tmp` for writing; on success fsync it and rename it over `path`.

    The one atomic-write mechanism of the project: on any error the temp file is removed
    and `path` keeps its previous content (or stays absent).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        with open(tmp, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


# Row groups of this many rows let readers stream a day of snapshots in bounded memory.
ROW_GROUP_ROWS = 65_536


def write_table_atomic(
    table: pa.Table, path: Path, *, compression: str = "zstd", row_group_rows: int = ROW_GROUP_ROWS
) -> Path:
    """Write `table` to `path` atomically (temp file in the same folder, fsync, rename)."""
    with atomic_file(path) as handle:
        pq.write_table(table, handle, compression=compression, row_group_size=row_group_rows)
    return path


def write_json_atomic(payload: Any, path: Path) -> Path:
    """Overwrite `path` with `payload` as indented JSON, atomically."""
    with atomic_file(path) as handle:
        handle.write((json.dumps(payload, indent=2) + "\n").encode("utf-8"))
    return path


def part_path(final: Path, n: int) -> Path:
    """Name of part `n` of a capture whose final file is `final` (`{stem}.part-NNNN.parquet`)."""
    return final.with_name(f"{final.stem}.part-{n:04d}.parquet")


def part_files(final: Path) -> list[Path]:
    """Existing part files of `final`, in part order."""
    found: list[tuple[int, Path]] = []
    if not final.parent.exists():
        return []
    for candidate in final.parent.iterdir():
        match = _PART_RE.match(candidate.name)
        if match and match.group("stem") == final.stem:
            found.append((int(match.group("n")), candidate))
    return [p for _, p in sorted(found)]


def logical_files(folder: Path, pattern: str = "*.parquet") -> dict[Path, list[Path]]:
    """Group the Parquet files of `folder` by logical file: final name -> physical files.

    A final file and its parts are one logical file (the final first, then parts in order);
    temp files are ignored.
    """
    groups: dict[Path, list[Path]] = {}
    for path in sorted(folder.glob(pattern)):
        if path.name.endswith(TMP_SUFFIX):
            continue
        match = _PART_RE.match(path.name)
        final = path.with_name(match.group("stem") + ".parquet") if match else path
        groups.setdefault(final, [])
    for final in groups:
        physical = [final] if final.exists() else []
        groups[final] = physical + _pending_parts(final)
    return groups


COMPACTED_KEY = b"ibdesk.compacted_parts"


def _compacted_through(final: Path) -> int:
    """Highest part number already merged into `final` (-1 when none or no final)."""
    if not final.exists():
        return -1
    try:
        meta = pq.read_schema(final).metadata or {}
    except (pa.ArrowInvalid, OSError):
        return -1  # unreadable final: listing still works; reading it reports the file
    raw = meta.get(COMPACTED_KEY)
    return int(raw) if raw is not None else -1


def _pending_parts(final: Path) -> list[Path]:
    """Parts not yet merged into `final` (a crash between compaction and cleanup leaves some)."""
    done = _compacted_through(final)
    return [p for p in part_files(final) if _part_number(p) > done]


def _part_number(path: Path) -> int:
    match = _PART_RE.match(path.name)
    return int(match.group("n")) if match else -1


def read_logical(final: Path, columns: Iterable[str] | None = None) -> pa.Table:
    """Read a logical file (final file and/or its parts) as one table."""
    physical = ([final] if final.exists() else []) + _pending_parts(final)
    if not physical:
        raise FileNotFoundError(final)
    cols = list(columns) if columns is not None else None
    tables = [pq.read_table(p, columns=cols) for p in physical]
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="default")


def compact_parts(final: Path) -> Path | None:
    """Merge `final` and its parts into `final` atomically, then remove the parts."""
    parts = part_files(final)
    if not parts:
        return final if final.exists() else None
    table = read_logical(final)
    last = max(_part_number(p) for p in parts)
    meta = dict(table.schema.metadata or {})
    meta[COMPACTED_KEY] = str(last).encode()
    write_table_atomic(table.replace_schema_metadata(meta), final)
    for part in parts:
        part.unlink(missing_ok=True)
    # A writer killed mid-flush leaves `{stem}.part-NNNN.parquet.tmp`: never data, now stale.
    for stale in final.parent.glob(f"{final.stem}.part-*.parquet{TMP_SUFFIX}"):
        stale.unlink(missing_ok=True)
    return final
