"""`ibdesk backfill`: historical L2 from Databento for the trade log's (symbol, day) tasks.

Thin: parse options -> discover tasks -> run the orchestrator -> print the one SUMMARY
line (or the one dry-run JSON object). Everything else goes to the logger (stderr, files).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import typer
from rich.progress import Progress

from ibdesk.backfill.orchestrator import (
    BackfillOptions,
    TaskResult,
    discover_tasks,
    estimate_only,
    run_backfill,
)
from ibdesk.backfill.tasks import TaskFilter, parse_day, parse_since
from ibdesk.cli import runtime
from ibdesk.describe import output_schema
from ibdesk.domain.hours import ET
from ibdesk.errors import UserInputError
from ibdesk.shutdown import sigterm_as_interrupt

DRY_RUN_PREVIEW = 10

BACKFILL_OUTPUT_SCHEMA = {
    "description": (
        "stdout: exactly one line `SUMMARY WRITE=n SKIP=n EMPTY=n ERROR=n total=n concurrency=n "
        "duration=S.SSSs` (UNAVAIL counted under ERROR); with --dry-run instead exactly one JSON "
        "object. Writes data/level2/{SYMBOL}/{DAY}_snapshots_databento.parquet, "
        "{DAY}_trades_databento.parquet, appends data/backfill_l2_manifest.jsonl and "
        "overwrites data/backfill_l2_summary.json."
    ),
    "oneOf": [
        {
            "type": "string",
            "pattern": (
                r"^SUMMARY WRITE=\d+ SKIP=\d+ EMPTY=\d+ ERROR=\d+ total=\d+ "
                r"concurrency=\d+ duration=\d+\.\d{3}s$"
            ),
        },
        {
            "type": "object",
            "required": ["count", "tasks"],
            "properties": {
                "count": {"type": "integer", "minimum": 0},
                "tasks": {
                    "type": "array",
                    "maxItems": DRY_RUN_PREVIEW,
                    "items": {
                        "type": "object",
                        "required": ["symbol", "trading_day"],
                        "properties": {
                            "symbol": {"type": "string"},
                            "trading_day": {"type": "string", "format": "date"},
                        },
                    },
                },
                "estimated_cost_usd": {"type": ["number", "null"]},
            },
        },
    ],
}


def build_filter(
    since: str | None,
    last: int | None,
    max_tasks: int | None,
    day: str | None,
    start: str | None,
    end: str | None,
    symbols: list[str] | None,
) -> TaskFilter:
    """The task filter for the CLI options; `UserInputError` names a bad option."""
    try:
        since_day = parse_since(since, datetime.now(ET).date()) if since is not None else None
        start_day = parse_day(start, "--start") if start is not None else None
        end_day = parse_day(end, "--end") if end is not None else None
        if day is not None:
            if start is not None or end is not None:
                raise ValueError("--date cannot be combined with --start/--end")
            start_day = end_day = parse_day(day, "--date")
    except ValueError as exc:
        raise UserInputError(str(exc)) from None
    if start_day is not None and end_day is not None and start_day > end_day:
        raise UserInputError(f"--start {start_day} is after --end {end_day}")
    return TaskFilter(
        since=since_day,
        last=last,
        max_tasks=max_tasks,
        start=start_day,
        end=end_day,
        symbols=tuple(s.strip().upper() for s in symbols or () if s.strip()),
    )


@contextmanager
def task_progress(total: int) -> Iterator[Callable[[TaskResult], None]]:
    """A rich progress bar on stderr when it is a terminal; otherwise the log lines suffice."""
    if not runtime.is_terminal() or total == 0:
        yield lambda _result: None
        return
    with Progress(console=runtime.stderr, transient=True) as progress:
        bar = progress.add_task("backfill", total=total)

        def advance(result: TaskResult) -> None:
            progress.update(bar, advance=1, description=f"{result.task.symbol} {result.status}")

        yield advance


def register(app: typer.Typer) -> None:
    @app.command("backfill")
    @output_schema(BACKFILL_OUTPUT_SCHEMA)
    def backfill(
        dry_run: bool = typer.Option(
            False,
            "--dry-run",
            help="Print the task count and first 10 tasks as JSON; call nothing.",
        ),
        max_workers: int | None = typer.Option(
            None,
            "--max-workers",
            min=1,
            help="Parallel tasks (default L2_MAX_WORKERS, else L2_BACKFILL_CONCURRENCY, else 4).",
        ),
        since: str | None = typer.Option(
            None, "--since", help="Only days since DAYS ago, or since YYYY-MM-DD."
        ),
        last: int | None = typer.Option(
            None, "--last", min=1, help="Only the N latest distinct trading days."
        ),
        strict: bool = typer.Option(
            False, "--strict", help="Exit 1 when any task ended ERROR or UNAVAIL."
        ),
        force: bool = typer.Option(
            False, "--force", help="Re-fetch and overwrite existing outputs."
        ),
        max_tasks: int | None = typer.Option(
            None, "--max-tasks", min=0, help="At most N tasks (after the other filters)."
        ),
        day: str | None = typer.Option(
            None, "--date", help="Legacy: only this trading day (YYYY-MM-DD)."
        ),
        start: str | None = typer.Option(
            None, "--start", help="Legacy: only days from YYYY-MM-DD."
        ),
        end: str | None = typer.Option(None, "--end", help="Legacy: only days up to YYYY-MM-DD."),
        symbols: list[str] | None = typer.Option(
            None, "--symbol", "--symbols", help="Only these symbols."
        ),
        trades_file: Path | None = typer.Option(
            None, "--trades-file", help="Trade log (.xlsx or .csv); default WARRIOR_TRADES_FILE."
        ),
        interval_ms: int = typer.Option(
            100, "--interval", "-i", min=1, help="Snapshot interval, ms."
        ),
        estimate_cost: bool = typer.Option(
            False,
            "--estimate-cost",
            help="Sum metadata.get_cost over the tasks and print it (stderr) before fetching.",
        ),
        scheduler: str | None = typer.Option(
            None,
            "--scheduler",
            help="Run the tasks on a Dask distributed scheduler, e.g. tcp://HOST:8786.",
        ),
        verbose: bool = typer.Option(
            False, "--verbose", "-v", help="Debug logging on the console."
        ),
    ) -> None:
        """Backfill historical Level 2 (Databento MBP-10) for the trade log's (symbol, day) pairs.

        Statuses WRITE, SKIP, EMPTY, ERROR, UNAVAIL; one SUMMARY line on stdout; exit 0
        unless --strict and a task ended ERROR or UNAVAIL.
        """
        settings = runtime.start(verbose=verbose)
        flt = build_filter(since, last, max_tasks, day, start, end, symbols)
        tasks = discover_tasks(trades_file or settings.trades_file, flt)
        options = BackfillOptions(
            force=force,
            interval_ms=interval_ms,
            max_workers=max_workers,
            estimate_cost=estimate_cost,
            scheduler=scheduler,
        )
        if dry_run:
            preview: dict[str, object] = {
                "count": len(tasks),
                "tasks": [t.to_json() for t in tasks[:DRY_RUN_PREVIEW]],
            }
            if estimate_cost:
                preview["estimated_cost_usd"] = estimate_only(settings, tasks, options)
            typer.echo(json.dumps(preview))
            return

        def show_estimate(cost_usd: float, count: int) -> None:
            typer.echo(f"ESTIMATE cost_usd={cost_usd:.4f} tasks={count}", err=True)

        with sigterm_as_interrupt(), task_progress(len(tasks)) as advance:
            summary = run_backfill(
                settings, tasks, options, on_estimate=show_estimate, on_result=advance
            )
        typer.echo(summary.summary_line())
        if strict and summary.failed:
            raise typer.Exit(1)
