"""Readers for every ibdesk data kind, accepting every schema version and foreign files.

A file written by ibdesk says its kind and version in the `ibdesk.schema` metadata key; a
file without it (made by hand, by pandas, by the old tool) is read as v1 when its columns
fit, with column types cast to the v1 contract. Anything else is a `SchemaMismatchError`
whose one-line message names the file. Part files of a capture are read as one file.
This module reads; it never writes or repairs files.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as _compute
import pyarrow.parquet as pq

from ibdesk.errors import UserInputError
from ibdesk.store import schemas
from ibdesk.store.parquet import part_files, read_logical

pc: Any = _compute  # pyarrow.compute functions are generated at import time


class DataKind(StrEnum):
    """The data contracts of ARCHITECTURE.md; the value is the schema name in metadata."""

    BARS = "bars"
    L2_SNAPSHOTS = "l2_snapshots"
    TRADES = "trades"
    DEPTH_MESSAGES = "depth_messages"
    SIGNALS = "signals"


CURRENT_VERSION: dict[DataKind, int] = dict.fromkeys(DataKind, 1)


class SchemaMismatchError(UserInputError):
    """A file is not of the expected kind, is from a newer ibdesk, or its columns do not fit."""


@dataclass(frozen=True, slots=True)
class SchemaTag:
    """A parsed `ibdesk.schema` value such as `bars/1`."""

    kind: DataKind
    version: int

    def __str__(self) -> str:
        return f"{self.kind.value}/{self.version}"


_TAG_RE = re.compile(r"^(?P<kind>[a-z0-9_]+)/(?P<version>\d+)$")


def parse_tag(text: str) -> SchemaTag | None:
    """`bars/1` -> SchemaTag(BARS, 1); None when the text is not a known kind/version."""
    match = _TAG_RE.match(text.strip())
    if match is None:
        return None
    try:
        kind = DataKind(match.group("kind"))
    except ValueError:
        return None
    return SchemaTag(kind, int(match.group("version")))


def v1_schema(kind: DataKind, levels: int = 10) -> pa.Schema:
    """The v1 Arrow schema of `kind` (L2 snapshots with `levels` levels)."""
    builders: dict[DataKind, Callable[[], pa.Schema]] = {
        DataKind.BARS: schemas.bars_schema,
        DataKind.TRADES: schemas.trades_schema,
        DataKind.DEPTH_MESSAGES: schemas.depth_messages_schema,
        DataKind.SIGNALS: schemas.signals_schema,
        DataKind.L2_SNAPSHOTS: lambda: schemas.l2_snapshot_schema(levels),
    }
    return builders[kind]()


# Columns a foreign file may lack; they are added as nulls.
_OPTIONAL_COLUMNS: dict[DataKind, frozenset[str]] = {
    DataKind.BARS: frozenset({"symbol", "wap", "bar_count"}),
    DataKind.TRADES: frozenset({"exchange"}),
    DataKind.DEPTH_MESSAGES: frozenset({"market_maker", "is_smart"}),
    DataKind.SIGNALS: frozenset({"reason"}),
    DataKind.L2_SNAPSHOTS: frozenset(),
}

_LEVEL_RE = re.compile(r"^bid_px_(\d{2})$")


def snapshot_levels(names: list[str]) -> int:
    """Levels of a snapshot table: the count of consecutive `bid_px_NN` columns from 00."""
    present = {int(m.group(1)) for n in names if (m := _LEVEL_RE.match(n))}
    levels = 0
    while levels in present:
        levels += 1
    return levels


def kind_of_path(path: Path) -> DataKind | None:
    """The data kind a path's place in the layout implies (None when it implies none)."""
    parts = path.parts
    name = path.name
    if "bars" in parts[:-1]:
        return DataKind.BARS
    if "signals" in parts[:-1]:
        return DataKind.SIGNALS
    if "level2" in parts[:-1] or re.match(r"^\d{4}-\d{2}-\d{2}_", name):
        if "_snapshots_" in name:
            return DataKind.L2_SNAPSHOTS
        if "_trades_" in name:
            return DataKind.TRADES
        if "_messages_" in name:
            return DataKind.DEPTH_MESSAGES
    return None


def symbol_of_path(path: Path, kind: DataKind) -> str | None:
    """The symbol folder of a layout path (`bars/SYM/1_min/D.parquet`, `level2/SYM/...`)."""
    depth = 3 if kind is DataKind.BARS else 2
    parts = path.parts
    return parts[-depth] if len(parts) >= depth else None


def _fits(kind: DataKind, table: pa.Table, path: Path) -> pa.Schema:
    """The v1 target schema for a foreign table, or a SchemaMismatchError naming `path`."""
    names = table.column_names
    levels = snapshot_levels(names) if kind is DataKind.L2_SNAPSHOTS else 10
    if kind is DataKind.L2_SNAPSHOTS and levels == 0:
        raise SchemaMismatchError(f"{path}: not an {kind.value} v1 file (no bid_px_00 column)")
    target = v1_schema(kind, min(levels, schemas.MAX_LEVELS))
    missing = [
        f.name for f in target if f.name not in names and f.name not in _OPTIONAL_COLUMNS[kind]
    ]
    if missing:
        raise SchemaMismatchError(
            f"{path}: columns do not fit {kind.value} v1 (missing {', '.join(missing)})"
        )
    return target


def _cast_ts(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Any timestamp as timestamp[ns, UTC]; a zone-less timestamp is taken as UTC."""
    if pa.types.is_timestamp(column.type) and column.type.tz is None:
        column = pc.assume_timezone(column, "UTC")
    return column.cast(schemas.TS_TYPE)


def conform(
    table: pa.Table, kind: DataKind, path: Path, metadata: Mapping[bytes, bytes] | None = None
) -> pa.Table:
    """Cast `table` to the v1 contract of `kind`: contract columns first, extra columns kept.

    Optional columns a foreign file lacks are added as nulls. Metadata of the file is kept,
    with `ibdesk.schema` set, so a file written back says what it is.
    """
    target = _fits(kind, table, path)
    arrays: list[pa.ChunkedArray | pa.Array] = []
    fields: list[pa.Field] = []
    for field in target:
        if field.name in table.column_names:
            column = table.column(field.name)
            try:
                column = _cast_ts(column) if field.name == "ts" else column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                reason = str(exc).splitlines()[0]
                raise SchemaMismatchError(
                    f"{path}: column {field.name} cannot be read as {field.type} ({reason})"
                ) from None
        elif field.name == "symbol" and (symbol := symbol_of_path(path, kind)) is not None:
            column = pa.array([symbol] * table.num_rows, pa.string())
        else:
            column = pa.nulls(table.num_rows, field.type)
        arrays.append(column)
        fields.append(field)
    for name in table.column_names:
        if name not in target.names:
            arrays.append(table.column(name))
            fields.append(table.schema.field(name))
    meta = dict(metadata or {})
    for key, value in (target.metadata or {}).items():
        if key == schemas.SCHEMA_KEY or key not in meta:
            meta[key] = value
    if kind is DataKind.L2_SNAPSHOTS:
        meta[b"levels"] = str(snapshot_levels(table.column_names)).encode()
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=meta))


# Upgrades from an older version to the next one; v1 is the first, so there are none yet.
_UPGRADES: dict[SchemaTag, Callable[[pa.Table], pa.Table]] = {}


def _upgrade(table: pa.Table, tag: SchemaTag, path: Path) -> pa.Table:
    current = CURRENT_VERSION[tag.kind]
    if tag.version > current:
        raise SchemaMismatchError(
            f"{path}: schema {tag} is newer than this ibdesk reads ({tag.kind.value}/{current}); "
            "upgrade ibdesk"
        )
    version = tag.version
    while version < current:
        step = _UPGRADES.get(SchemaTag(tag.kind, version))
        if step is None:
            raise SchemaMismatchError(f"{path}: no upgrade from {tag.kind.value}/{version}")
        table = step(table)
        version += 1
    return table


def read_data(
    path: Path, kind: DataKind | None = None, columns: list[str] | None = None
) -> pa.Table:
    """Read a logical file (final file and/or part files) as the current schema of its kind.

    `kind` defaults to what the file says, else what its place in the layout implies.
    `columns` limits the read (the result then has only those contract columns).
    """
    try:
        meta_schema = _first_schema(path)
    except FileNotFoundError:
        raise SchemaMismatchError(f"{path}: no such data file") from None
    tag_text = schemas.schema_version(meta_schema)
    tag = parse_tag(tag_text) if tag_text is not None else None
    if tag_text is not None and tag is None:
        raise SchemaMismatchError(f"{path}: unknown schema {tag_text!r}")
    expected = kind or (tag.kind if tag else None) or kind_of_path(path)
    if expected is None:
        raise SchemaMismatchError(f"{path}: cannot tell which kind of data this file holds")
    if tag is not None and tag.kind is not expected:
        raise SchemaMismatchError(f"{path}: holds {tag.kind.value}, expected {expected.value}")
    try:
        table = read_logical(path, columns=columns)
    except (pa.ArrowInvalid, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SchemaMismatchError(f"{path}: unreadable Parquet ({reason})") from None
    if tag is not None:
        table = _upgrade(table, tag, path)
    if columns is not None:
        return _conform_columns(table, expected, path)
    return conform(table, expected, path, meta_schema.metadata)


def _conform_columns(table: pa.Table, kind: DataKind, path: Path) -> pa.Table:
    """Cast just the requested contract columns (a partial read cannot be checked whole)."""
    target = v1_schema(kind, max(1, min(snapshot_levels(table.column_names), schemas.MAX_LEVELS)))
    out = table
    for i, name in enumerate(table.column_names):
        if name not in target.names:
            continue
        want = target.field(name).type
        try:
            column = _cast_ts(table.column(i)) if name == "ts" else table.column(i).cast(want)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            reason = str(exc).splitlines()[0]
            raise SchemaMismatchError(
                f"{path}: column {name} cannot be read as {want} ({reason})"
            ) from None
        out = out.set_column(i, pa.field(name, want), column)
    return out


def _first_schema(path: Path) -> pa.Schema:
    """Schema (with metadata) of the final file, else of its first part."""
    if path.exists():
        physical = path
    else:
        parts = part_files(path)
        if not parts:
            raise FileNotFoundError(path)
        physical = parts[0]
    try:
        return pq.read_schema(physical)
    except (pa.ArrowInvalid, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SchemaMismatchError(f"{physical}: unreadable Parquet ({reason})") from None
