"""`ibdesk doctor` and `ibdesk setup` as a user runs them."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from ibdesk.doctor import doctor_output_schema
from tests.clirunner import invoke


@pytest.fixture
def listening_port() -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _quiet_ports() -> dict[str, str]:
    return {
        name: str(_free_port())
        for name in (
            "IB_GATEWAY_PAPER_PORT",
            "IB_PAPER_PORT",
            "IB_GATEWAY_LIVE_PORT",
            "IB_LIVE_PORT",
        )
    }


def test_bad_env_value_exits_2_with_one_line_naming_it() -> None:
    result = invoke(["doctor"], env={"IB_CLIENT_ID": "abc"})
    assert result.exit_code == 2
    assert "IB_CLIENT_ID" in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert "Traceback" not in result.stderr


def test_doctor_json_matches_its_output_schema_and_masks_secrets(isolated_workdir: Path) -> None:
    env = {**_quiet_ports(), "IB_PASSWORD": "pw-very-secret", "DATABENTO_API_KEY": "db-key-987"}
    invoke(["setup"], env=env)
    result = invoke(["doctor", "--json"], env=env)
    report = json.loads(result.stdout)
    Draft202012Validator(doctor_output_schema()).validate(report)
    assert report["config"]["IB_PASSWORD"] == "***"
    assert report["config"]["DATABENTO_API_KEY"] == "***"
    for secret in ("pw-very-secret", "db-key-987"):
        assert secret not in result.stdout + result.stderr
        for log in (isolated_workdir / "logs").glob("*.log"):
            assert secret not in log.read_text(encoding="utf-8")
    assert result.exit_code == 0
    assert report["ok"] is True


def test_doctor_reports_answering_gateway_port(listening_port: int) -> None:
    env = {**_quiet_ports(), "IB_GATEWAY_PAPER_PORT": str(listening_port)}
    report = json.loads(invoke(["doctor", "--json"], env=env).stdout)
    assert report["gateway_ports"][str(listening_port)] is True
    gateway = next(c for c in report["checks"] if c["category"] == "gateway")
    assert gateway["status"] == "ok"


def test_doctor_names_fix_when_no_gateway() -> None:
    report = json.loads(invoke(["doctor", "--json"], env=_quiet_ports()).stdout)
    gateway = next(c for c in report["checks"] if c["category"] == "gateway")
    assert gateway["status"] == "warn"
    assert "ibdesk gateway start" in gateway["fix"]


def test_doctor_fails_with_fix_when_folder_not_writable(isolated_workdir: Path) -> None:
    blocker = isolated_workdir / "not-a-dir"
    blocker.write_text("x", encoding="utf-8")
    result = invoke(
        ["doctor", "--json"], env={**_quiet_ports(), "DATA_PATH_OVERRIDE": str(blocker)}
    )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    broken = [c for c in report["checks"] if c["status"] == "error"]
    assert [c["name"] for c in broken] == ["DATA_PATH_OVERRIDE"]
    assert broken[0]["fix"]


def test_setup_creates_folders_and_env_without_overwriting(isolated_workdir: Path) -> None:
    result = invoke(["setup"], env=_quiet_ports())
    assert result.exit_code == 0, result.stderr
    for folder in ("data", "logs", "cache", "temp", "config"):
        assert (isolated_workdir / folder).is_dir()
    env_file = isolated_workdir / ".env"
    assert "IB_CLIENT_ID=1" in env_file.read_text(encoding="utf-8")
    env_file.write_text("IB_CLIENT_ID=5\n", encoding="utf-8")
    invoke(["setup"], env=_quiet_ports())
    assert env_file.read_text(encoding="utf-8") == "IB_CLIENT_ID=5\n"


def test_doctor_table_output_shows_masked_config() -> None:
    result = invoke(["doctor"], env={**_quiet_ports(), "IB_USERNAME": "trader-login-name"})
    assert "IB_USERNAME" in result.stdout
    assert "trader-login-name" not in result.stdout
