"""The shared CLI machinery: multi-value options, eager --describe, exit-code mapping."""

from __future__ import annotations

import json

import click
import pytest
import typer
from click.testing import CliRunner

from ibdesk.cli.framework import new_app, split_multi_values
from ibdesk.errors import UserInputError, WorkFailedError


def _demo_app() -> click.Group:
    app = new_app(help_text="demo")

    @app.command("pick")
    def pick(
        symbols: list[str] = typer.Option(["TSLA"], "--symbols", "-s", help="Symbols."),
        count: int = typer.Option(1, "--count", help="How many."),
        name: str = typer.Option(..., "--name", help="Required name."),
    ) -> None:
        """Echo the parsed values."""
        typer.echo(json.dumps({"symbols": symbols, "count": count, "name": name}))

    @app.command("fail")
    def fail(kind: str = typer.Option("input", "--kind")) -> None:
        """Raise an ibdesk error."""
        if kind == "input":
            raise UserInputError("bad --kind value 'x': expected input or work")
        raise WorkFailedError("the work failed")

    @app.command("other")
    def other() -> None:
        """A second command so the group keeps its sub-commands."""

    group = typer.main.get_command(app)
    assert isinstance(group, click.Group)
    return group


def _run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(_demo_app(), args)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["pick", "--name", "n", "--symbols", "AAPL", "MSFT"],
        ["pick", "--name", "n", "--symbols", "AAPL,MSFT"],
        ["pick", "--symbols", "AAPL", "--symbols", "MSFT", "--name", "n"],
        ["pick", "--symbols=AAPL,MSFT", "--name", "n"],
        ["pick", "-s", "AAPL", "MSFT", "--name", "n"],
        ["pick", "--symbols", "AAPL,", "MSFT", "--name=n"],
    ],
)
def test_multi_value_option_accepts_space_and_comma_forms(args: list[str]) -> None:
    code, out, _ = _run(args)
    assert code == 0
    assert json.loads(out) == {"symbols": ["AAPL", "MSFT"], "count": 1, "name": "n"}


def test_multi_value_run_stops_at_next_option() -> None:
    code, out, _ = _run(["pick", "--symbols", "AAPL", "MSFT", "--count", "3", "--name", "n"])
    assert code == 0
    assert json.loads(out)["count"] == 3


def test_multi_value_default_kept_when_not_given() -> None:
    code, out, _ = _run(["pick", "--name", "n"])
    assert code == 0
    assert json.loads(out)["symbols"] == ["TSLA"]


def test_split_keeps_negative_numbers_as_values() -> None:
    assert split_multi_values(["--x", "-1.5", "2", "--y"], {"--x"}, {"--x", "--y"}) == [
        "--x",
        "-1.5",
        "--x",
        "2",
        "--y",
    ]


def test_describe_is_eager_and_ignores_missing_required_options() -> None:
    code, out, err = _run(["pick", "--describe"])
    assert code == 0, err
    descriptor = json.loads(out)
    assert descriptor["name"] == "pick"
    assert descriptor["input_schema"]["required"] == ["name"]
    assert descriptor["input_schema"]["properties"]["symbols"]["type"] == "array"


def test_user_input_error_exits_2_with_one_line() -> None:
    code, out, err = _run(["fail", "--kind", "input"])
    assert code == 2
    assert out == ""
    assert err.strip().count("\n") == 0
    assert "--kind" in err
    assert "Traceback" not in err


def test_work_failure_exits_1() -> None:
    code, _, err = _run(["fail", "--kind", "work"])
    assert code == 1
    assert "the work failed" in err


def test_unknown_option_is_usage_error_exit_2_one_line() -> None:
    code, _, err = _run(["pick", "--name", "n", "--bogus"])
    assert code == 2
    assert "--bogus" in err
    assert err.strip().count("\n") == 0
