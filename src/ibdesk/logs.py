"""Logging: the four log files (README: Logs) plus rich console output, with secrets masked.

`trading.log` gets everything (rotating), `error.log` WARNING and above, `api.log` the IB
API traffic (loggers `ibdesk.api` and `ib_async`), `performance.log` timings (logger
`ibdesk.performance`). Every handler carries a `SecretMaskFilter`, so a secret that slips
into a message or an exception is written as `***`.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from collections.abc import Iterable
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler

from ibdesk.config import MASK, Settings

API_LOGGERS = ("ibdesk.api", "ib_async")
PERFORMANCE_LOGGER = "ibdesk.performance"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_MAX_BYTES = 10 * 1024 * 1024
_BACKUPS = 5
_OWNED = "_ibdesk_handler"


class SecretMaskFilter(logging.Filter):
    """Replaces every known secret value in a record's final text with `***`."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = self.mask(record.getMessage())
            record.args = None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self.mask(record.exc_text)
        return True


class _NameFilter(logging.Filter):
    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.startswith(self.prefixes)


class _QuietThirdParty(logging.Filter):
    """Keeps ib_async's own chatter off the console at every level, and ibdesk's API traffic
    and timings below WARNING: ibdesk says what went wrong in its own words (one line), so
    ib_async's "API connection failed" / "Make sure API port ..." retries and its `Error 200`
    lines would only repeat it. They still reach api.log, error.log and trading.log;
    `--verbose` shows them.
    """

    THIRD_PARTY = ("ib_async",)
    PREFIXES = ("ibdesk.api", PERFORMANCE_LOGGER)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(self.THIRD_PARTY):
            return False
        return record.levelno >= logging.WARNING or not record.name.startswith(self.PREFIXES)


def _file_handler(path: Path, level: int, secrets: SecretMaskFilter) -> logging.Handler:
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=_MAX_BYTES, backupCount=_BACKUPS, encoding="utf-8"
    )
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(secrets)
    setattr(handler, _OWNED, True)
    return handler


def setup_logging(settings: Settings, *, verbose: bool = False, console: bool = True) -> None:
    """Install ibdesk's handlers on the root logger (idempotent: replaces earlier ones).

    The console (stderr) shows `LOG_LEVEL` (DEBUG with `--verbose`); files keep DEBUG for
    trading.log so a failed unattended run can be diagnosed afterwards.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _OWNED, False):
            root.removeHandler(handler)
            handler.close()
    secrets = SecretMaskFilter(settings.secret_values())
    console_level = logging.DEBUG if verbose else getattr(logging, settings.log_level)
    root.setLevel(logging.DEBUG)
    handlers: list[logging.Handler] = []
    logs_dir = settings.logs_path
    try:
        logs_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(_file_handler(logs_dir / "trading.log", logging.DEBUG, secrets))
        handlers.append(_file_handler(logs_dir / "error.log", logging.WARNING, secrets))
        api = _file_handler(logs_dir / "api.log", logging.DEBUG, secrets)
        api.addFilter(_NameFilter(API_LOGGERS))
        handlers.append(api)
        perf = _file_handler(logs_dir / "performance.log", logging.DEBUG, secrets)
        perf.addFilter(_NameFilter((PERFORMANCE_LOGGER,)))
        handlers.append(perf)
    except OSError as exc:
        print(f"ibdesk: cannot write logs under {logs_dir}: {exc.strerror}", file=sys.stderr)
    if console:
        rich_handler = RichHandler(
            console=Console(stderr=True),
            show_path=False,
            rich_tracebacks=False,
            markup=False,
        )
        rich_handler.setLevel(console_level)
        rich_handler.addFilter(secrets)
        if not verbose:
            rich_handler.addFilter(_QuietThirdParty())
        setattr(rich_handler, _OWNED, True)
        handlers.append(rich_handler)
    for handler in handlers:
        root.addHandler(handler)
    # Third-party chatter stays in the files unless asked for.
    for noisy in ("ib_async", "asyncio", "distributed", "urllib3", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.INFO)
