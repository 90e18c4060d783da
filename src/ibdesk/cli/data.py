"""`ibdesk data ...`: SQL over the store, inventory, CSV backup, Excel migration.

Thin: parse options, call one `ibdesk.store` function, render. `data_app` is the group;
other modules add their `data` commands (e.g. `update`) to it.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import typer
from rich.table import Table

from ibdesk.cli import runtime
from ibdesk.cli.framework import new_app
from ibdesk.describe import output_schema
from ibdesk.errors import UserInputError
from ibdesk.ib.session import open_session
from ibdesk.store import export as export_mod
from ibdesk.store import inventory, migrate, query
from ibdesk.store.bars import normalize_bar_size
from ibdesk.store.layout import bar_size_folder
from ibdesk.store.readers import DataKind
from ibdesk.update import UpdateSummary, symbols_to_update, update_bars

data_app = new_app("data", "Data store: SQL queries, inventory, CSV backup, Excel migration.")

VERBOSE = typer.Option(False, "--verbose", "-v", help="Debug logging on the console.")
JSON_FLAG = typer.Option(False, "--json", help="Print the result as JSON.")


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _parse_day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserInputError(f"bad {option} {value!r}: expected YYYY-MM-DD") from None


def _human_bytes(size: int) -> str:
    amount = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if amount < 1024 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GB"


def _parse_kinds(values: list[str] | None) -> list[DataKind] | None:
    if not values:
        return None
    kinds: list[DataKind] = []
    for value in values:
        try:
            kinds.append(DataKind(value.strip().lower()))
        except ValueError:
            allowed = ", ".join(k.value for k in DataKind)
            raise UserInputError(f"bad --kinds value {value!r}: expected {allowed}") from None
    return kinds


# --- query ---------------------------------------------------------------------------


def _render_table(table: pa.Table, max_rows: int) -> None:
    shown = table.slice(0, max_rows) if max_rows > 0 else table
    out = Table(show_lines=False)
    for name in table.column_names:
        out.add_column(name)
    for row in shown.to_pylist():
        out.add_row(*("" if v is None else str(v) for v in row.values()))
    runtime.stdout.print(out)
    if shown.num_rows < table.num_rows:
        runtime.stderr.print(
            f"{table.num_rows - shown.num_rows} more rows not shown "
            "(raise --max-rows, or use --csv/--json)"
        )
    else:
        runtime.stderr.print(f"{table.num_rows} rows")


@data_app.command("query")
@output_schema(
    {
        "description": "rows of the result: a table, or with --json an array of objects "
        "(timestamps ISO-8601), or with --csv CSV with a header row",
        "type": "array",
        "items": {"type": "object"},
    }
)
def query_command(
    sql: str = typer.Argument(
        ...,
        help="SQL over views bars, l2_snapshots, trades, depth_messages, signals and table files.",
    ),
    as_json: bool = JSON_FLAG,
    as_csv: bool = typer.Option(False, "--csv", help="Print the result as CSV."),
    max_rows: int = typer.Option(
        100, "--max-rows", min=0, help="Rows shown in the table (0 = all)."
    ),
    verbose: bool = VERBOSE,
) -> None:
    """Run SQL (DuckDB) over the data root and print the result.

    Views: bars (with symbol and bar_size from the folders), l2_snapshots, trades,
    depth_messages, signals; table files lists every data file. Times are UTC.
    """
    if as_json and as_csv:
        raise UserInputError("--json and --csv exclude each other")
    settings = runtime.start(verbose=verbose)
    result = query.run_query(settings.data_root, sql)
    if as_json:
        typer.echo(json.dumps(_jsonable(result.to_pylist())))
    elif as_csv:
        buffer = io.BytesIO()
        pacsv.write_csv(result, buffer)
        typer.echo(buffer.getvalue().decode(), nl=False)
    else:
        _render_table(result, max_rows)


# --- scan ----------------------------------------------------------------------------


def _gaps_text(dataset: inventory.Dataset) -> str:
    gaps = dataset.gaps
    if gaps is None:
        return ""
    if not gaps.missing_days and not gaps.intraday:
        return "none"
    parts: list[str] = []
    if gaps.missing_days:
        parts.append(f"{len(gaps.missing_days)} missing days")
    if gaps.intraday:
        parts.append(f"{len(gaps.intraday)} intraday gaps ({gaps.missing_bars} bars)")
    return ", ".join(parts)


def _render_inventory(report: inventory.Inventory) -> None:
    table = Table(title=f"data under {report.root}")
    for column in (
        "symbol",
        "kind",
        "bar size",
        "days",
        "first",
        "last",
        "sources",
        "files",
        "rows",
        "size",
        "gaps",
    ):
        table.add_column(column)
    for d in report.datasets:
        table.add_row(
            d.symbol,
            d.kind.value,
            d.bar_size or "",
            str(len(d.days)),
            d.days[0].isoformat() if d.days else "",
            d.days[-1].isoformat() if d.days else "",
            ",".join(d.sources),
            str(d.files),
            str(d.rows),
            _human_bytes(d.size_bytes),
            _gaps_text(d),
        )
    runtime.stdout.print(table)
    totals = report.to_json()["totals"]
    runtime.stdout.print(
        f"{len({d.symbol for d in report.datasets})} symbols, {totals['files']} files, "
        f"{totals['rows']} rows, {_human_bytes(totals['bytes'])}"
    )
    for problem in report.problems:
        runtime.stderr.print(f"problem: {problem.path}: {problem.message}")


@data_app.command("scan")
@output_schema(inventory.inventory_json_schema())
def scan_command(
    symbols: list[str] | None = typer.Option(None, "--symbols", help="Only these symbols."),
    no_gaps: bool = typer.Option(False, "--no-gaps", help="Skip the bar-gap check (faster)."),
    as_json: bool = JSON_FLAG,
    verbose: bool = VERBOSE,
) -> None:
    """Inventory of the data root: symbols, days, sources, rows, bytes and gaps in bar series.

    Gaps are regular-hours bars missing against the NYSE calendar (early closes included)
    and sessions with no file between a series' first and last day. Exits 1 when a file
    cannot be read, naming it.
    """
    settings = runtime.start(verbose=verbose)
    report = inventory.scan(settings.data_root, symbols=symbols, with_gaps=not no_gaps)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        _render_inventory(report)
    if report.problems:
        raise typer.Exit(1)


# --- export --------------------------------------------------------------------------


@data_app.command("export")
@output_schema(export_mod.export_json_schema())
def export_command(
    kinds: list[str] | None = typer.Option(
        None,
        "--kinds",
        help="Data kinds: bars l2_snapshots trades depth_messages signals (default all).",
    ),
    symbols: list[str] | None = typer.Option(None, "--symbols", help="Only these symbols."),
    start: str | None = typer.Option(None, "--start", help="First day, YYYY-MM-DD."),
    end: str | None = typer.Option(None, "--end", help="Last day, YYYY-MM-DD."),
    bar_size: str | None = typer.Option(
        None, "--bar-size", help='Only bars of this size, e.g. "1 min".'
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Backup root (default ML_BACKUP_PATH)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Rewrite backups that are already up to date."
    ),
    as_json: bool = JSON_FLAG,
    verbose: bool = VERBOSE,
) -> None:
    """Back up chosen data as CSV under ML_BACKUP_PATH/data/, mirroring the data root's layout.

    Backups newer than their source are kept unless --force. Exits 1 when a file could not
    be exported (the others still are).
    """
    wanted = _parse_kinds(kinds)
    first = _parse_day(start, "--start")
    last = _parse_day(end, "--end")
    if first and last and first > last:
        raise UserInputError(f"--start {start} is after --end {end}")
    folder = bar_size_folder(normalize_bar_size(bar_size)) if bar_size else None
    settings = runtime.start(verbose=verbose)
    report = export_mod.export_csv(
        settings.data_root,
        output or settings.ml_backup_path,
        kinds=wanted,
        symbols=symbols,
        start=first,
        end=last,
        bar_size_folder=folder,
        force=force,
    )
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        counts = {s: report.count(s) for s in export_mod.ExportStatus}
        runtime.stdout.print(
            f"export to {report.target_root / export_mod.BACKUP_SUBDIR}: "
            + " ".join(f"{s.value}={n}" for s, n in counts.items())
        )
    for item in report.failed:
        runtime.stderr.print(f"failed: {item.message}")
    if report.failed:
        raise typer.Exit(1)


# --- migrate-excel -------------------------------------------------------------------


def _render_migration(report: migrate.MigrationReport) -> None:
    table = Table(
        title=f"Excel -> Parquet ({report.bar_size} bars){' [dry run]' if report.dry_run else ''}"
    )
    for column in (
        "file",
        "sheet",
        "rows",
        "converted",
        "skipped rows",
        "unmapped columns",
        "problem",
    ):
        table.add_column(column)
    for f in report.files:
        if not f.sheets:
            table.add_row(str(f.path), "", "", "0", "", "", f.error or "")
        for s in f.sheets:
            table.add_row(
                str(f.path),
                s.sheet,
                str(s.rows_seen),
                str(s.rows_converted),
                str(len(s.bad_rows)),
                ", ".join(s.unmapped_columns),
                s.error or (f.error or ""),
            )
    runtime.stdout.print(table)
    for f in report.files:
        for s in f.sheets:
            for bad in s.bad_rows[: migrate.MAX_BAD_ROWS_LISTED]:
                runtime.stderr.print(f"skipped {f.path} [{s.sheet}] row {bad.row}: {bad.reason}")
    data = report.to_json()
    runtime.stdout.print(
        f"{data['files_converted']} files converted, {data['files_failed']} not converted, "
        f"{data['rows_converted']} rows written, {data['rows_skipped']} rows skipped"
    )


@data_app.command("migrate-excel")
@output_schema(migrate.migration_json_schema())
def migrate_excel_command(
    paths: list[Path] | None = typer.Argument(
        None, help="Excel files (.xlsx/.xlsm) or folders holding them; default FILES_PATH."
    ),
    bar_size: str = typer.Option(
        "1 min", "--bar-size", help="IB bar size of the bars in the files."
    ),
    symbol: str | None = typer.Option(
        None,
        "--symbol",
        help="Symbol for files without a Symbol column (default: from the file name).",
    ),
    tz: str = typer.Option("America/New_York", "--tz", help="Zone of times written without one."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Report what would be converted; write nothing."
    ),
    as_json: bool = JSON_FLAG,
    verbose: bool = VERBOSE,
) -> None:
    """Convert the old tool's Excel bar files into Parquet bars files (merged, no duplicates).

    Columns are matched loosely; rows, columns and files that cannot be converted are
    reported. Exits 1 when a file could not be converted (the others still are).
    """
    settings = runtime.start(verbose=verbose)
    report = migrate.migrate_excel(
        paths or [settings.files_path],
        settings.data_root,
        bar_size=bar_size,
        symbol=symbol,
        tz=tz,
        dry_run=dry_run,
    )
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        _render_migration(report)
    for failed in report.failed:
        runtime.stderr.print(f"not converted: {failed.path}: {failed.error}")
    if report.failed:
        raise typer.Exit(1)


_UPDATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "per symbol: the days checked, gaps found, requests made, bars added",
    "properties": {
        "bar_size": {"type": "string"},
        "failed": {"type": "array", "items": {"type": "string"}},
        "symbols": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "first_day": {"type": "string"},
                    "last_day": {"type": "string"},
                    "gaps": {"type": "integer"},
                    "requests": {"type": "integer"},
                    "bars_added": {"type": "integer"},
                    "error": {"type": ["string", "null"]},
                },
            },
        },
    },
    "required": ["bar_size", "failed", "symbols"],
}


@data_app.command("update")
@output_schema(_UPDATE_SCHEMA)
def update(
    symbols: list[str] | None = typer.Option(
        None, "--symbols", help="Symbols to update (default: every symbol stored at this bar size)."
    ),
    bar_size: str = typer.Option(
        "1 min", "--bar-size", help='IB bar size, e.g. "1 min", "5 mins".'
    ),
    days: int = typer.Option(5, "--days", help="Days back for a symbol with nothing stored yet."),
    port: int | None = typer.Option(None, "--port", help="Gateway port; default auto-detect."),
    sim: bool = typer.Option(False, "--sim", help="Fetch from the built-in simulator."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Bring stored bars up to date, fetching only the missing regular-hours ranges (paced)."""
    settings = runtime.start()
    wanted = symbols_to_update(settings, symbols, bar_size, days)

    async def main() -> UpdateSummary:
        if not wanted:
            return UpdateSummary(bar_size=bar_size)
        ask = input if runtime.is_terminal() else None
        async with open_session(
            settings, sim=sim, live=False, port=port, reconnect=False, ask=ask
        ) as s:
            return await s.until_stopped(
                update_bars(
                    s.settings, s.conn, symbols=wanted, bar_size=bar_size, lookback_days=days
                )
            )

    summary = asyncio.run(main())
    if as_json:
        typer.echo(json.dumps(summary.to_json(), indent=2))
    else:
        table = Table(title=f"data update ({summary.bar_size})")
        for column in ("symbol", "days", "gaps", "requests", "bars added", "error"):
            table.add_column(column)
        for symbol, result in summary.symbols.items():
            days_text = f"{result.first_day}..{result.last_day}" if result.first_day else "-"
            table.add_row(
                symbol,
                days_text,
                str(result.gaps),
                str(result.requests),
                str(result.bars_added),
                result.error or "",
            )
        runtime.stdout.print(table)
    if summary.failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
