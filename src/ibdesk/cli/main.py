"""The `ibdesk` entry point: assembles the command groups into one CLI."""

from __future__ import annotations

from collections.abc import Sequence

import click
import typer

from ibdesk import __version__
from ibdesk.cli.framework import errors_exit_cleanly, new_app

with errors_exit_cleanly():  # e.g. an unsupported ib_async (ibdesk.ib.compat): one line
    from ibdesk.cli import analyze as analyze_cli
    from ibdesk.cli import backfill as backfill_cli
    from ibdesk.cli import data as data_cli
    from ibdesk.cli import doctor, gateway, record, run
    from ibdesk.cli import sim as sim_cli

app = new_app(help_text="ibdesk: a trading desk in a box for IBKR and Databento day traders.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ibdesk {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_version, help="Print the version and exit."
    ),
) -> None:
    """ibdesk: a trading desk in a box for IBKR and Databento day traders.

    Every command accepts --describe; `ibdesk --describe` prints the whole catalog.
    """


# Command groups: each module's `register(app)` adds its commands (one line each).
doctor.register(app)
sim_cli.register(app)
backfill_cli.register(app)
gateway.register(app)
record.register(app)
run.register(app)
data_cli.register(app)
analyze_cli.register(app)


def cli() -> click.Group:
    """The click group behind `ibdesk` (also what tests invoke)."""
    group = typer.main.get_command(app)
    assert isinstance(group, click.Group)
    return group


def main(argv: Sequence[str] | None = None) -> None:
    cli().main(args=argv, prog_name="ibdesk")
