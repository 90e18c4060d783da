"""SQL over the data root with DuckDB: views `bars`, `l2_snapshots`, `trades`,
`depth_messages`, `signals` and a `files` table.

Views read the Parquet files in place (final files and pending part files, never `*.tmp`
leftovers nor parts already compacted), so a query sees exactly what readers see. The
`bars` view takes `symbol` and `bar_size` from the file's folders (`bars/AAPL/1_min/`),
the source of truth for where a bar belongs. A kind with no files is an empty view with
the v1 columns, so queries do not depend on what has been recorded yet. Read only: this
module never writes under the data root.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import duckdb
import pyarrow as pa

from ibdesk.errors import UserInputError, WorkFailedError
from ibdesk.store.catalog import DataFile, find_data_files
from ibdesk.store.readers import DataKind, v1_schema

VIEW_NAMES: tuple[str, ...] = tuple(kind.value for kind in DataKind)
_FILES_SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("symbol", pa.string()),
        ("day", pa.date32()),
        ("bar_size", pa.string()),
        ("path", pa.string()),
        ("part_files", pa.int32()),
    ]
)


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _paths_literal(files: Iterable[DataFile]) -> str:
    paths = [p.resolve().as_posix() for f in files for p in f.physical]
    return "[" + ", ".join(_sql_string(p) for p in paths) + "]"


def _empty(kind: DataKind) -> pa.Table:
    schema = v1_schema(kind)
    if kind is DataKind.BARS:
        schema = schema.append(pa.field("bar_size", pa.string()))
    return schema.empty_table()


def _files_table(files: list[DataFile]) -> pa.Table:
    rows = {
        "kind": [f.kind.value for f in files],
        "symbol": [f.symbol for f in files],
        "day": [f.day for f in files],
        "bar_size": [f.bar_size for f in files],
        "path": [f.final.as_posix() for f in files],
        "part_files": [sum(1 for p in f.physical if p != f.final) for f in files],
    }
    return pa.table(rows, schema=_FILES_SCHEMA)


def _columns(con: duckdb.DuckDBPyConnection, view: str) -> list[str]:
    return [row[0] for row in con.execute(f"DESCRIBE {view}").fetchall()]


def _create_bars_view(con: duckdb.DuckDBPyConnection, files: list[DataFile]) -> None:
    con.execute(
        "CREATE VIEW _bars_raw AS SELECT * FROM read_parquet("
        f"{_paths_literal(files)}, union_by_name = true, filename = '_ibdesk_file')"
    )
    present = set(_columns(con, "_bars_raw"))
    excluded = ["_ibdesk_file", "ts"] + [c for c in ("symbol", "bar_size") if c in present]
    folders = r"regexp_extract(_ibdesk_file, '([^/]+)/([^/]+)/[^/]+$', ['sym', 'size'])"
    con.execute(
        "CREATE VIEW bars AS SELECT ts, folders.sym AS symbol, "
        f"* EXCLUDE ({', '.join(excluded)}, folders), replace(folders.size, '_', ' ') AS bar_size "
        f"FROM (SELECT *, {folders} AS folders FROM _bars_raw)"
    )


def connect(root: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the data views over `root` (session zone UTC)."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    files = find_data_files(root)
    con.register("files", _files_table(files))
    for kind in DataKind:
        of_kind = [f for f in files if f.kind is kind]
        if not of_kind:
            con.register(kind.value, _empty(kind))
        elif kind is DataKind.BARS:
            _create_bars_view(con, of_kind)
        else:
            con.execute(
                f"CREATE VIEW {kind.value} AS SELECT * FROM read_parquet("
                f"{_paths_literal(of_kind)}, union_by_name = true)"
            )
    return con


def run_query(root: Path, sql: str) -> pa.Table:
    """Run one SQL statement over the data views and return its result as an Arrow table.

    Bad SQL (syntax, unknown table or column) is a `UserInputError` naming the problem;
    failing to read a data file is a `WorkFailedError`.
    """
    if not sql.strip():
        raise UserInputError("empty SQL query")
    try:
        con = connect(root)
    except duckdb.Error as exc:
        raise WorkFailedError(f"cannot open the data under {root}: {_first_line(exc)}") from None
    try:
        relation = con.sql(sql)
        return pa.table({}) if relation is None else relation.to_arrow_table()
    except (duckdb.ParserException, duckdb.CatalogException, duckdb.BinderException) as exc:
        raise UserInputError(f"bad SQL: {_first_line(exc)}") from None
    except (duckdb.IOException, duckdb.InvalidInputException) as exc:
        raise WorkFailedError(f"query failed reading data: {_first_line(exc)}") from None
    except duckdb.Error as exc:
        raise UserInputError(f"query failed: {_first_line(exc)}") from None
    finally:
        con.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
