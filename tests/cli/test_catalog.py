"""`--describe` everywhere: the catalog is valid JSON Schema and matches the real parameters."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import click
import pytest
from jsonschema import Draft202012Validator

from ibdesk.cli.main import cli
from ibdesk.describe import visible_params
from tests.clirunner import invoke


def _catalog() -> list[dict[str, Any]]:
    result = invoke(["--describe"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _leaf_commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        full = f"{prefix} {name}".strip()
        if isinstance(command, click.Group):
            found.update(_leaf_commands(command, full))
        else:
            found[full] = command
    return found


def test_catalog_lists_every_command() -> None:
    names = {entry["name"] for entry in _catalog()}
    assert {"doctor", "setup"} <= names
    assert names == set(_leaf_commands(cli()))


def test_every_descriptor_is_valid_json_schema() -> None:
    for entry in _catalog():
        assert set(entry) == {"name", "description", "input_schema", "output_schema"}
        assert entry["description"]
        Draft202012Validator.check_schema(entry["input_schema"])
        Draft202012Validator.check_schema(entry["output_schema"])


def test_descriptors_match_actual_parameters() -> None:
    commands = _leaf_commands(cli())
    for entry in _catalog():
        command = commands[entry["name"]]
        params = visible_params(command)
        schema = entry["input_schema"]
        assert set(schema["properties"]) == {p.name for p in params}, entry["name"]
        assert set(schema["required"]) == {p.name for p in params if p.required}, entry["name"]
        for param in params:
            prop = schema["properties"][param.name]
            assert prop["description"], (entry["name"], param.name)
            if isinstance(param, click.Option):
                assert set(prop["x-cli-flags"]) == set(param.opts) | set(param.secondary_opts)
            else:  # an argument's help text survives (click 8.5 drops typer's)
                assert prop["description"] != (param.name or "").replace("_", " ")


def test_every_command_describe_matches_catalog_entry() -> None:
    for entry in _catalog():
        result = invoke([*entry["name"].split(), "--describe"])
        assert result.exit_code == 0, (entry["name"], result.stderr)
        assert json.loads(result.stdout) == entry


def test_describe_ignores_bad_environment() -> None:
    result = invoke(["doctor", "--describe"], env={"IB_CLIENT_ID": "abc"})
    assert result.exit_code == 0


def test_python_dash_m_runs_the_same_cli() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ibdesk", "--describe"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    assert {e["name"] for e in json.loads(proc.stdout)} >= {"doctor", "setup"}


@pytest.mark.parametrize("secret_env", ["IB_PASSWORD", "DATABENTO_API_KEY"])
def test_catalog_never_contains_secrets(secret_env: str) -> None:
    result = invoke(["--describe"], env={secret_env: "s3cr3t-value-xyz"})
    assert "s3cr3t-value-xyz" not in result.stdout
