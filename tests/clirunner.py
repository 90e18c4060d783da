"""Helpers for tests that run the CLI in-process."""

from __future__ import annotations

import os

from click.testing import CliRunner, Result

from ibdesk.cli.main import cli


def invoke(args: list[str], env: dict[str, str] | None = None) -> Result:
    """Run the ibdesk CLI in-process, as a user would type it; stdout and stderr apart."""
    runner = CliRunner()
    merged = {**os.environ, **(env or {})}
    return runner.invoke(cli(), args, env=merged, catch_exceptions=False)
