"""`ibdesk record-depth` as a user runs it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.clirunner import invoke


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["-s", "AAPL", "--levels", "30"], "--levels"),
        (["-s", "AAPL", "--interval", "5"], "--interval"),
        (["-s", "AAPL", "--duration", "-1"], "--duration"),
    ],
)
def test_bad_options_exit_2_naming_the_option(args: list[str], named: str) -> None:
    result = invoke(["record-depth", *args])
    assert result.exit_code == 2
    assert named in result.stderr


def test_live_needs_confirmation() -> None:
    result = invoke(["record-depth", "-s", "AAPL", "--live", "--port", "1"])
    assert result.exit_code == 2
    assert "IBDESK_CONFIRM_LIVE" in result.stderr


@pytest.mark.parametrize("sim", [{"depth_cap": 1}], indirect=True)
def test_depth_cap_exits_1_and_names_symbol(sim: Any, data_root: Path) -> None:
    result = invoke(["record-depth", "-s", "AAPL", "MSFT", "-d", "0.02", "--port", str(sim.port)])
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert "309" in summary["symbols"]["MSFT"]["depth_unavailable"]
    assert summary["symbols"]["AAPL"]["snapshots_written"] > 0


def test_sim_flag_records_from_its_own_simulator(isolated_workdir: Path) -> None:
    env = {**os.environ, "LOGS_PATH": str(isolated_workdir / "logs")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ibdesk",
            "record-depth",
            "-s",
            "TSLA",
            "-d",
            "0.03",
            "-i",
            "50",
            "-l",
            "20",
            "--sim",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=isolated_workdir,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["source"] == "sim"
    [snapshots] = (isolated_workdir / "data" / "level2" / "TSLA").glob("*_snapshots_*.parquet")
    table = pq.read_table(snapshots)
    assert abs(table.num_rows - 36) <= 1
    assert (table.schema.metadata or {})[b"source"] == b"sim"
    assert "ask_sz_19" in table.column_names


def test_gateway_mode_sim_is_honoured_and_its_gateway_stopped(data_root: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = invoke(
        ["record-depth", "-s", "AAPL", "-d", "0.01", "--port", str(port)],
        env={"IB_GATEWAY_MODE": "sim"},
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["source"] == "sim"
    assert list((data_root / "level2" / "AAPL").glob("*_snapshots_*.parquet"))
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # the gateway it started is gone
