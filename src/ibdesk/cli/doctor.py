"""`ibdesk doctor` and `ibdesk setup`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from ibdesk import doctor as checks
from ibdesk import workspace
from ibdesk.cli import runtime
from ibdesk.describe import output_schema


def _render(report: checks.DoctorReport) -> None:
    table = Table(title="ibdesk doctor", show_lines=False)
    for column in ("check", "status", "detail", "fix"):
        table.add_column(column)
    style = {checks.Status.OK: "green", checks.Status.WARN: "yellow", checks.Status.ERROR: "red"}
    for check in report.checks:
        table.add_row(
            f"{check.category}: {check.name}",
            f"[{style[check.status]}]{check.status.value}[/]",
            check.detail,
            check.fix,
        )
    runtime.stdout.print(table)
    config = Table(title="configuration (secrets masked)")
    config.add_column("variable")
    config.add_column("value")
    for key, value in report.config.items():
        config.add_row(key, value)
    runtime.stdout.print(config)
    verdict = "[green]ok[/]" if report.ok else "[red]broken: see the fix column[/]"
    runtime.stdout.print(f"doctor: {verdict}")


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    @output_schema(checks.doctor_output_schema())
    def doctor(
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
        verbose: bool = typer.Option(
            False, "--verbose", "-v", help="Debug logging on the console."
        ),
    ) -> None:
        """Check config (secrets masked), folders, dependencies, gateway ports and vendor key.

        Exits 1 when something needed is broken, naming the fix.
        """
        settings = runtime.start(verbose=verbose)
        report = checks.run_checks(settings)
        if as_json:
            typer.echo(json.dumps(report.to_json(), indent=2))
        else:
            _render(report)
        if not report.ok:
            raise typer.Exit(1)

    @app.command("setup")
    @output_schema(
        {
            "type": "string",
            "description": "lines naming the folders and .env created, then the doctor table",
        }
    )
    def setup(
        verbose: bool = typer.Option(
            False, "--verbose", "-v", help="Debug logging on the console."
        ),
    ) -> None:
        """Create the data, log, cache, temp and config folders and `.env`, then run doctor.

        Installs nothing.
        """
        settings = runtime.start(verbose=verbose)
        result = workspace.prepare(settings, Path.cwd())
        for path in result.created_folders:
            runtime.stdout.print(f"created folder {path}")
        if result.env_file is not None:
            runtime.stdout.print(
                f"created {result.env_file} from the defaults; edit it to configure"
            )
        report = checks.run_checks(settings)
        _render(report)
        if not report.ok:
            raise typer.Exit(1)
