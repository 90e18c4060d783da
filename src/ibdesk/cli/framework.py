"""What every ibdesk command shares: `--describe`, multi-value options, exit codes.

Built once here so each command module only declares its parameters:
- `IbdeskCommand` adds an eager `--describe` (it needs no other argument) and accepts
  several values after one option, space- or comma-separated (`--symbols AAPL MSFT`,
  `--symbols AAPL,MSFT`), for every option declared as a list.
- `IbdeskGroup` gives groups a `--describe` catalog and maps errors to exit codes
  (0 ok, 1 work failed, 2 bad usage/input) with one line on stderr, never a traceback;
  `errors_exit_cleanly` does the same for errors raised while the CLI is assembled (an
  unsupported ib_async fails the import of `ibdesk.ib.compat`).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import click
import typer
from typer.core import TyperCommand, TyperGroup

from ibdesk.describe import catalog, command_name, describe_command
from ibdesk.errors import IbdeskError

log = logging.getLogger("ibdesk.cli")

DESCRIBE_HELP = "Print this command's JSON descriptor (name, description, schemas) and exit."


def split_multi_values(args: Sequence[str], multi_opts: set[str], stop_opts: set[str]) -> list[str]:
    """Rewrite `--opt A B,C` into `--opt A --opt B --opt C` for the options in `multi_opts`.

    Values after a multi-value option run until the next token that looks like an option
    (starts with `-` and is not a negative number) or `--`. `stop_opts` are all the options
    a command knows; they end a run too.
    """
    out: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        name, eq, inline = token.partition("=")
        if token.startswith("-") and name in multi_opts:
            values: list[str] = []
            if eq:
                values.append(inline)
            i += 1
            while i < len(args) and not _is_option_like(args[i], stop_opts):
                values.append(args[i])
                i += 1
            pieces = [v.strip() for value in values for v in value.split(",") if v.strip()]
            if not pieces:
                out.append(name)  # let click report the missing value
            for piece in pieces:
                out.extend([name, piece])
            continue
        out.append(token)
        if token == "--":
            out.extend(args[i + 1 :])
            break
        i += 1
    return out


def _is_option_like(token: str, known: set[str]) -> bool:
    if token == "--" or token.partition("=")[0] in known:
        return True
    if not token.startswith("-") or token == "-":
        return False
    try:
        float(token)
    except ValueError:
        return True
    return False


def _describe_command_callback(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(json.dumps(describe_command(ctx.command, command_name(ctx)), indent=2))
    ctx.exit(0)


def _describe_group_callback(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    group = ctx.command
    assert isinstance(group, click.Group)
    click.echo(json.dumps(catalog(group, command_name(ctx)), indent=2))
    ctx.exit(0)


def _describe_option(names: Sequence[str], callback: Any) -> click.Option:
    return click.Option(
        list(names),
        is_flag=True,
        is_eager=True,
        expose_value=False,
        callback=callback,
        help=DESCRIBE_HELP,
    )


def _restore_argument_help(command: click.Command) -> None:
    """Put back `typer.Argument(help=...)`: click 8.5 resets it after typer sets it."""
    original = inspect.unwrap(command.callback) if command.callback is not None else None
    if original is None:
        return
    defaults = {
        name: param.default for name, param in inspect.signature(original).parameters.items()
    }
    for param in command.params:
        info = defaults.get(param.name or "")
        if isinstance(param, click.Argument) and isinstance(info, typer.models.ArgumentInfo):
            param.help = info.help  # type: ignore[attr-defined]


class IbdeskCommand(TyperCommand):
    """A typer command with `--describe` and multi-value options."""

    describe_names: tuple[str, ...] = ("--describe",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _restore_argument_help(self)
        self.params.append(_describe_option(self.describe_names, _describe_command_callback))

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        multi: set[str] = set()
        known: set[str] = set()
        for param in self.params:
            if isinstance(param, click.Option):
                known.update(param.opts)
                known.update(param.secondary_opts)
                if param.multiple:
                    multi.update(param.opts)
        return super().parse_args(ctx, split_multi_values(args, multi, known))


class AnalyzeDepthCommand(IbdeskCommand):
    """`analyze-depth` keeps the original tool's `--show-describe` spelling as an alias."""

    describe_names = ("--describe", "--show-describe")


class IbdeskGroup(TyperGroup):
    """A typer group whose `--describe` prints the catalog of its commands."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.append(_describe_option(("--describe",), _describe_group_callback))

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the CLI; map every error to one stderr line and an exit code."""
        try:
            result = super().main(
                args=list(args) if args is not None else None,
                prog_name=prog_name or "ibdesk",
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except IbdeskError as exc:
            code = _report(exc)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else str(exc), err=True)
            code = 2
        except click.ClickException as exc:
            click.echo(f"ibdesk: error: {exc.format_message()}", err=True)
            code = exc.exit_code
        except click.exceptions.Abort:
            click.echo("ibdesk: aborted", err=True)
            code = 130
        except KeyboardInterrupt:
            click.echo("ibdesk: interrupted", err=True)
            code = 130
        else:
            code = result if isinstance(result, int) else 0
        if not standalone_mode:
            return code
        sys.exit(code)


def _report(exc: IbdeskError) -> int:
    """Print `exc` as ibdesk's one error line; its exit code."""
    log.debug("command failed", exc_info=True)
    click.echo(f"ibdesk: error: {exc.message}", err=True)
    return exc.exit_code


@contextlib.contextmanager
def errors_exit_cleanly() -> Iterator[None]:
    """Outside a command (while importing the command modules): an IbdeskError becomes the
    same one stderr line and exit code a command's error gets, not a traceback."""
    try:
        yield
    except IbdeskError as exc:
        sys.exit(_report(exc))


class IbdeskTyper(typer.Typer):
    """`typer.Typer` whose commands default to `IbdeskCommand`."""

    def command(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("cls", IbdeskCommand)
        return super().command(*args, **kwargs)


def new_app(name: str | None = None, help_text: str | None = None) -> IbdeskTyper:
    """A typer app (root or group) that uses ibdesk's command and group classes."""
    return IbdeskTyper(
        name=name,
        help=help_text,
        cls=IbdeskGroup,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
