"""The one exception hierarchy of ibdesk.

Every error a user can cause or meet carries a one-line message for humans; the CLI maps
the class to an exit code in one place (`ibdesk.cli.main`). Nothing else decides exit codes.
"""

from __future__ import annotations


class IbdeskError(Exception):
    """Base class: `message` is one line, shown to the user as is."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message.splitlines()[0] if message else type(self).__name__


class UserInputError(IbdeskError):
    """Bad usage or bad input (option, env value, file): exit code 2."""

    exit_code = 2


class ConfigError(UserInputError):
    """An environment or `.env` value is invalid; the message names the variable."""


class WorkFailedError(IbdeskError):
    """The work was attempted and failed, entirely or in part: exit code 1."""

    exit_code = 1


class GatewayUnavailableError(WorkFailedError):
    """No IB gateway answered; the message says which ports were tried and how to start one."""


class StopRequestedError(IbdeskError):
    """SIGINT or SIGTERM asked a command to stop; it cleaned up first: exit code 130."""

    exit_code = 130


class UnsupportedDependencyError(WorkFailedError):
    """An installed library is not the version ibdesk was verified with (e.g. ib_async)."""
