"""`ibdesk run` end to end against `ibdesk sim` (clock pinned to 2025-07-30 16:30 ET, seed 7)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.compute as _compute
import pyarrow.parquet as pq
import pytest
from jsonschema import Draft202012Validator

from ibdesk.store.schemas import BARS, schema_version
from tests.clirunner import invoke

pc: Any = _compute  # pyarrow.compute's functions are generated at import time

SESSION_DAY = "2025-07-30"


def _run(sim: Any, *args: str) -> Any:
    return invoke(["run", "--port", str(sim.port), *args])


def _bars(data_root: Path, symbol: str) -> Any:
    return pq.read_table(data_root / "bars" / symbol / "1_min" / f"{SESSION_DAY}.parquet")


def test_run_stores_one_rth_session_of_consistent_bars(sim: Any, data_root: Path) -> None:
    result = _run(sim, "--symbols", "AAPL", "MSFT", "--rth-only", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    describe = json.loads(invoke(["run", "--describe"]).stdout)
    Draft202012Validator(describe["output_schema"]).validate(summary)
    assert summary["source"] == "sim"
    for symbol in ("AAPL", "MSFT"):
        table = _bars(data_root, symbol)
        assert schema_version(table.schema) == BARS
        assert table.num_rows == 390
        assert summary["symbols"][symbol]["bars"] == 390
        low, high = table.column("low"), table.column("high")
        for column in ("open", "close"):
            assert pc.all(pc.less_equal(low, table.column(column))).as_py()
            assert pc.all(pc.greater_equal(high, table.column(column))).as_py()
        assert (data_root / "bars" / symbol / "1_day").is_dir()
    runs = list((data_root / "runs").glob("*.json"))
    assert len(runs) == 1
    assert json.loads(runs[0].read_text(encoding="utf-8"))["symbols"]["AAPL"]["bars"] == 390


def test_rerun_adds_no_duplicates_and_signals_are_deterministic(sim: Any, data_root: Path) -> None:
    first = json.loads(_run(sim, "--symbols", "NVDA", "--json").stdout)
    rows = _bars(data_root, "NVDA").num_rows
    second = json.loads(_run(sim, "--symbols", "NVDA", "--json").stdout)
    table = _bars(data_root, "NVDA")
    assert table.num_rows == rows
    assert pc.count_distinct(table.column("ts")).as_py() == rows
    assert first["symbols"]["NVDA"]["signals"] == second["symbols"]["NVDA"]["signals"]
    signals = pq.read_table(data_root / "signals" / "NVDA" / f"{SESSION_DAY}.parquet")
    assert signals.num_rows == len(first["symbols"]["NVDA"]["signals"])


def test_no_save_writes_nothing(sim: Any, data_root: Path) -> None:
    result = _run(sim, "--symbols", "AAPL", "--no-save")
    assert result.exit_code == 0, result.stderr
    assert "AAPL" in result.stdout
    assert not data_root.exists() or not any(p.is_file() for p in data_root.rglob("*"))


def test_unknown_symbol_is_named_and_others_still_run(sim: Any, data_root: Path) -> None:
    result = _run(sim, "--symbols", "AAPL,NOSUCH1", "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["failed"] == ["NOSUCH1"]
    assert "NOSUCH1" in summary["symbols"]["NOSUCH1"]["error"]
    assert summary["symbols"]["AAPL"]["bars"] > 0
    assert _bars(data_root, "AAPL").num_rows > 0


def test_live_needs_confirmation_before_connecting(sim: Any, data_root: Path) -> None:
    result = _run(sim, "--symbols", "AAPL", "--live")
    assert result.exit_code == 2
    assert "IBDESK_CONFIRM_LIVE=yes" in result.stderr
    assert not data_root.exists()
    env_live = invoke(
        ["run", "--port", str(sim.port), "--symbols", "AAPL"], env={"IB_PAPER_TRADING": "0"}
    )
    assert env_live.exit_code == 2
    assert "IBDESK_CONFIRM_LIVE" in env_live.stderr


def test_confirmed_live_run_completes_against_the_sim(sim: Any, data_root: Path) -> None:
    result = invoke(
        ["run", "--port", str(sim.port), "--symbols", "AAPL", "--json"],
        env={"IB_PAPER_TRADING": "0", "IBDESK_CONFIRM_LIVE": "yes"},
    )

    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["source"] == "sim"
    assert summary["symbols"]["AAPL"]["bars"] > 0
    assert _bars(data_root, "AAPL").num_rows == summary["symbols"]["AAPL"]["bars"]


def test_confirmed_live_flag_completes_against_the_sim(sim: Any, data_root: Path) -> None:
    result = invoke(
        ["run", "--port", str(sim.port), "--symbols", "AAPL", "--live", "--json"],
        env={"IBDESK_CONFIRM_LIVE": "yes"},
    )

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["symbols"]["AAPL"]["bars"] > 0


def test_unreachable_gateway_says_which_ports_and_how_to_start_one() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = invoke(["run", "--port", str(port)], env={"RETRY_ATTEMPTS": "0"})
    assert result.exit_code == 1
    assert str(port) in result.stderr
    assert "ibdesk gateway start" in result.stderr
    assert "--sim" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_gateway_prints_only_ibdesks_line_and_logs_ib_async_chatter(
    isolated_workdir: Path,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "RETRY_ATTEMPTS": "1", "CONNECTION_TIMEOUT": "2"}

    result = subprocess.run(
        [sys.executable, "-m", "ibdesk", "run", "--port", str(port)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )

    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ibdesk: error: no IB gateway answered")
    api_log = (isolated_workdir / "logs" / "api.log").read_text(encoding="utf-8")
    assert "Make sure API port on TWS/IBG is open" in api_log


def test_bad_duration_is_bad_input() -> None:
    result = invoke(["run", "--duration", "1 fortnight"])
    assert result.exit_code == 2
    assert "1 fortnight" in result.stderr


@pytest.mark.slow
def test_sim_flag_starts_and_stops_its_own_simulator(isolated_workdir: Path) -> None:
    env = {
        **os.environ,
        "IBDESK_SIM_CLOCK": "2025-07-30T16:30:00-04:00",
        "LOGS_PATH": str(isolated_workdir / "logs"),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ibdesk",
            "run",
            "--symbols",
            "AAPL",
            "--sim",
            "--rth-only",
            "--json",
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
    assert summary["symbols"]["AAPL"]["bars"] == 390
    assert summary["gateway"].startswith("sim 127.0.0.1:")
    port = int(summary["gateway"].split(":")[1].split()[0])
    assert port not in (4001, 4002, 7496, 7497)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # the child sim is gone


def test_symbols_fetched_together_get_their_own_bars(sim: Any, data_root: Path) -> None:
    """Symbols download concurrently: each one's result must be what it gets alone."""
    symbols = ["AAPL", "MSFT", "NVDA", "TSLA"]
    # "5 D" of 1 min needs several requests per symbol, each planned at the gateway's clock
    args = ("--duration", "5 D", "--no-save", "--json")
    together = json.loads(_run(sim, "--symbols", *symbols, *args).stdout)
    assert list(together["symbols"]) == symbols  # the order the user gave
    for symbol in symbols:
        alone = json.loads(_run(sim, "--symbols", symbol, *args).stdout)
        mine, theirs = together["symbols"][symbol], alone["symbols"][symbol]
        assert mine["bars"] > 0
        for key in ("bars", "first_ts", "last_ts", "last_close", "indicators", "signals"):
            assert mine[key] == theirs[key], (symbol, key)
