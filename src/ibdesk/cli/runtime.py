"""Per-invocation plumbing shared by command modules: settings, logging, console."""

from __future__ import annotations

import sys

from rich.console import Console

from ibdesk.config import Settings, load_settings
from ibdesk.logs import setup_logging

# Piped output (logs, CI) gets 120 columns instead of rich's 80 so tables are not truncated.
stdout = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 120)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def start(*, verbose: bool = False) -> Settings:
    """Load settings (exit 2 on a bad value) and install logging for this command."""
    settings = load_settings()
    setup_logging(settings, verbose=verbose)
    return settings


def is_terminal() -> bool:
    return sys.stderr.isatty()
