"""`ibdesk backfill` end to end: the CLI, the real databento SDK and the loopback server."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import jsonschema
import pyarrow.parquet as pq
import pytest

from ibdesk.backfill.manifest import read_manifest
from tests.backfill.dbserver import DatabentoTestServer, seed_day
from tests.clirunner import invoke

DAY = date(2024, 3, 8)
SYMBOLS = ["AAPL", "MSFT", "TSLA", "NVDA"]
SUMMARY_RE = (
    r"^SUMMARY WRITE=\d+ SKIP=\d+ EMPTY=\d+ ERROR=\d+ total=\d+ "
    r"concurrency=\d+ duration=\d+\.\d{3}s$"
)


@pytest.fixture
def trade_log(isolated_workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = isolated_workdir / "warrior_trades.csv"
    lines = ["Trade Date,Ticker,Qty"]
    lines += [f"2024-03-08 09:{31 + i}:00,{s},100" for i, s in enumerate(SYMBOLS)]
    lines += ["2024-03-08 10:30:00,AAPL,100", "2024-03-09 10:00:00,AMD,5"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("WARRIOR_TRADES_FILE", str(path))
    return path


@pytest.fixture
def seeded(db_server: DatabentoTestServer, db_env: dict[str, str]) -> DatabentoTestServer:
    for i, symbol in enumerate(SYMBOLS):
        seed_day(db_server, symbol, DAY, step_s=5.0, seed=i)
    return db_server


def test_summary_is_the_only_stdout_line(
    seeded: DatabentoTestServer, trade_log: Path, data_root: Path
) -> None:
    result = invoke(["backfill", "--interval", "1000"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert re.match(SUMMARY_RE, lines[0])
    assert lines[0].startswith(
        "SUMMARY WRITE=4 SKIP=0 EMPTY=0 ERROR=0 total=4 concurrency=4 duration="
    )
    manifest = read_manifest(data_root / "backfill_l2_manifest.jsonl")
    assert [m["symbol"] for m in manifest] == SYMBOLS
    summary = json.loads((data_root / "backfill_l2_summary.json").read_text())
    assert summary["counts"]["WRITE"] == 4
    assert summary["zero_row_tasks"] == []
    table = pq.read_table(data_root / "level2" / "AAPL" / "2024-03-08_snapshots_databento.parquet")
    assert table.num_rows == 7200


def test_rerun_is_skip_and_force_rewrites(seeded: DatabentoTestServer, trade_log: Path) -> None:
    assert invoke(["backfill", "--interval", "1000", "--symbol", "AAPL"]).exit_code == 0
    again = invoke(["backfill", "--interval", "1000", "--symbol", "AAPL", "MSFT"])
    assert again.stdout.startswith("SUMMARY WRITE=1 SKIP=1 EMPTY=0 ERROR=0 total=2")
    forced = invoke(["backfill", "--interval", "1000", "--symbols", "AAPL,MSFT", "--force"])
    assert forced.stdout.startswith("SUMMARY WRITE=2 SKIP=0 EMPTY=0 ERROR=0 total=2")


def test_zero_tasks_still_print_one_summary(seeded: DatabentoTestServer, trade_log: Path) -> None:
    result = invoke(["backfill", "--date", "2024-01-02"])
    assert result.exit_code == 0
    assert result.stdout.startswith("SUMMARY WRITE=0 SKIP=0 EMPTY=0 ERROR=0 total=0 concurrency=4")
    assert seeded.calls() == []


def test_dry_run_prints_one_json_object_and_calls_nothing(
    seeded: DatabentoTestServer, trade_log: Path, data_root: Path
) -> None:
    result = invoke(["backfill", "--dry-run"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "count": 4,
        "tasks": [{"symbol": s, "trading_day": "2024-03-08"} for s in SYMBOLS],
    }
    assert seeded.calls() == []
    assert not data_root.exists()


def test_dry_run_lists_only_the_first_ten(
    seeded: DatabentoTestServer, isolated_workdir: Path
) -> None:
    log = isolated_workdir / "many.csv"
    log.write_text("Date,Symbol\n" + "".join(f"2024-03-08,S{i:02d}\n" for i in range(14)))
    result = invoke(["backfill", "--dry-run", "--trades-file", str(log)])
    payload = json.loads(result.stdout)
    assert payload["count"] == 14
    assert len(payload["tasks"]) == 10


def test_estimate_cost_sums_the_servers_answers(
    seeded: DatabentoTestServer, trade_log: Path
) -> None:
    seeded.costs.update({"AAPL": 0.5, "MSFT": 0.25, "TSLA": 1.0, "NVDA": 0.125})
    dry = invoke(["backfill", "--dry-run", "--estimate-cost"])
    assert json.loads(dry.stdout)["estimated_cost_usd"] == 1.875
    assert seeded.calls("timeseries.get_range") == []
    assert len(seeded.calls("metadata.get_cost")) == 4
    run = invoke(["backfill", "--estimate-cost", "--interval", "1000", "--symbol", "AAPL"])
    assert "ESTIMATE cost_usd=0.5000 tasks=1" in run.stderr
    assert len(run.stdout.splitlines()) == 1


def test_strict_turns_errors_into_exit_1(seeded: DatabentoTestServer, trade_log: Path) -> None:
    seeded.fail("timeseries.get_range", symbol="TSLA", status=500, times=99)
    lenient = invoke(["backfill", "--interval", "1000"])
    assert lenient.exit_code == 0
    assert lenient.stdout.startswith("SUMMARY WRITE=3 SKIP=0 EMPTY=0 ERROR=1 total=4")
    strict = invoke(["backfill", "--interval", "1000", "--strict"])
    assert strict.exit_code == 1
    assert strict.stdout.startswith("SUMMARY WRITE=0 SKIP=3 EMPTY=0 ERROR=1 total=4")


def test_unavailable_warns_how_to_enable_and_strict_fails(
    trade_log: Path, db_server: DatabentoTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABENTO_GATEWAY", db_server.url)
    result = invoke(["backfill"])
    assert result.exit_code == 0
    assert result.stdout.startswith("SUMMARY WRITE=0 SKIP=0 EMPTY=0 ERROR=4 total=4")
    assert "DATABENTO_ENABLE_BACKFILL=1" in result.stderr
    assert invoke(["backfill", "--strict"]).exit_code == 1
    assert db_server.calls() == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--trades-file", "missing.xlsx"], "missing.xlsx"),
        (["--since", "yesterday"], "--since"),
        (["--date", "2024-3-x"], "--date"),
        (["--start", "2024-03-09", "--end", "2024-03-01"], "--start"),
    ],
)
def test_bad_input_exits_2_naming_it(trade_log: Path, args: list[str], needle: str) -> None:
    result = invoke(["backfill", *args])
    assert result.exit_code == 2
    assert needle in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_unreadable_trade_log_exits_2(isolated_workdir: Path) -> None:
    bad = isolated_workdir / "trades.xlsx"
    bad.write_bytes(b"\x00\x01 not excel")
    result = invoke(["backfill", "--trades-file", str(bad)])
    assert result.exit_code == 2
    assert "trades.xlsx" in result.stderr


def test_describe_is_valid_json_schema() -> None:
    result = invoke(["backfill", "--describe"])
    descriptor = json.loads(result.stdout)
    assert descriptor["name"] == "backfill"
    flags = {f for p in descriptor["input_schema"]["properties"].values() for f in p["x-cli-flags"]}
    assert {
        "--dry-run",
        "--max-workers",
        "--since",
        "--last",
        "--strict",
        "--force",
        "--max-tasks",
    } <= flags
    assert {"--date", "--start", "--end", "--symbol", "--scheduler", "--estimate-cost"} <= flags
    jsonschema.Draft202012Validator.check_schema(descriptor["output_schema"])
    validator = jsonschema.Draft202012Validator(descriptor["output_schema"])
    validator.validate(
        "SUMMARY WRITE=2 SKIP=0 EMPTY=0 ERROR=0 total=2 concurrency=4 duration=0.532s"
    )
    validator.validate({"count": 1, "tasks": [{"symbol": "AAPL", "trading_day": "2024-03-08"}]})


def test_killed_run_leaves_no_partial_file_and_a_rerun_completes(
    seeded: DatabentoTestServer, trade_log: Path, data_root: Path, db_env: dict[str, str]
) -> None:
    seeded.latency_s = 0.4
    env = {**os.environ, **db_env}
    cmd = [sys.executable, "-m", "ibdesk", "backfill", "--max-workers", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    manifest = data_root / "backfill_l2_manifest.jsonl"
    deadline = time.monotonic() + 60
    while not (manifest.exists() and manifest.read_text().count("\n") >= 1):
        assert proc.poll() is None, "backfill finished before it could be killed"
        assert time.monotonic() < deadline, "no task finished within 60 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    done_before = read_manifest(manifest)
    assert 1 <= len(done_before) < len(SYMBOLS)
    for path in (data_root / "level2").rglob("*.parquet"):
        pq.read_table(path)  # every final file is complete
    seeded.latency_s = 0.0
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    counts = dict(part.split("=") for part in rerun.stdout.split()[1:5])
    assert int(counts["SKIP"]) == len(done_before)
    assert int(counts["WRITE"]) == len(SYMBOLS) - len(done_before)
    assert list((data_root / "level2").rglob("*.tmp")) == []
    for symbol in SYMBOLS:
        assert (data_root / "level2" / symbol / "2024-03-08_snapshots_databento.parquet").exists()


def test_runs_on_a_dask_local_cluster(
    seeded: DatabentoTestServer, trade_log: Path, data_root: Path
) -> None:
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, protocol="tcp", dashboard_address=":0"
    )
    try:
        address = cluster.scheduler_address
        assert address.startswith("tcp://")
        result = invoke(["backfill", "--interval", "1000", "--scheduler", address])
    finally:
        cluster.close()
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("SUMMARY WRITE=4 SKIP=0 EMPTY=0 ERROR=0 total=4 concurrency=2")
    manifest = read_manifest(data_root / "backfill_l2_manifest.jsonl")
    assert [m["symbol"] for m in manifest] == SYMBOLS
    assert len(seeded.calls("timeseries.get_range")) == 4


@pytest.mark.parametrize(
    ("env", "args", "expected"),
    [
        ({}, [], 4),
        ({"L2_BACKFILL_CONCURRENCY": "3"}, [], 3),
        ({"L2_BACKFILL_CONCURRENCY": "3", "L2_MAX_WORKERS": "6"}, [], 6),
        ({"L2_MAX_WORKERS": "6"}, ["--max-workers", "2"], 2),
    ],
)
def test_concurrency_comes_from_flag_then_l2_max_workers_then_legacy_variable(
    trade_log: Path, env: dict[str, str], args: list[str], expected: int
) -> None:
    result = invoke(["backfill", "--date", "2024-01-02", *args], env=env)
    assert f" concurrency={expected} " in result.stdout


def test_sigterm_stops_starting_tasks_and_exits_130(
    seeded: DatabentoTestServer, trade_log: Path, data_root: Path, db_env: dict[str, str]
) -> None:
    seeded.latency_s = 0.4
    cmd = [sys.executable, "-m", "ibdesk", "backfill", "--max-workers", "1"]
    proc = subprocess.Popen(
        cmd, env={**os.environ, **db_env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    manifest = data_root / "backfill_l2_manifest.jsonl"
    deadline = time.monotonic() + 60
    while not manifest.exists():
        assert proc.poll() is None, "backfill finished before it could be stopped"
        assert time.monotonic() < deadline, "no task finished within 60 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted" in err
    assert "SUMMARY" not in out
    assert len(read_manifest(manifest)) < len(SYMBOLS)
    assert list((data_root / "level2").rglob("*.tmp")) == []
