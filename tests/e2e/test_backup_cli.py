"""`ibdesk data backup` as a user runs it: incremental, verifiable, safe to kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from jsonschema import Draft202012Validator

from ibdesk.store import layout
from ibdesk.store.bars import store_bars
from ibdesk.store.parquet import part_path, write_table_atomic
from tests.clirunner import invoke
from tests.store.factories import bars, signals, trades, utc


def _fill(root: Path) -> None:
    store_bars(root, "1 min", bars("AAPL", utc(2024, 1, 2, 14, 30), 60))
    write_table_atomic(
        signals("AAPL", utc(2024, 1, 2, 14, 30), 3),
        layout.signals_path(root, "AAPL", date(2024, 1, 2)),
    )
    write_table_atomic(
        trades("AAPL", utc(2024, 1, 2, 14, 30), 4, source="databento"),
        layout.databento_trades_path(root / "level2", "AAPL", date(2024, 1, 2)),
    )


def _json(args: list[str]) -> dict[str, object]:
    result = invoke([*args, "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_backup_json_matches_its_schema_and_a_rerun_copies_nothing(
    data_root: Path, isolated_workdir: Path
) -> None:
    _fill(data_root)
    described = invoke(["data", "backup", "--describe"])
    schema = Draft202012Validator(json.loads(described.stdout)["output_schema"])

    first = _json(["data", "backup", "--format", "parquet"])
    second = _json(["data", "backup", "--format", "parquet"])

    schema.validate(first)
    schema.validate(second)
    assert first["counts"]["copied"] == 3  # type: ignore[index]
    assert second["counts"]["copied"] == 0  # type: ignore[index]
    assert second["counts"]["unchanged"] == 3  # type: ignore[index]
    mirrored = isolated_workdir / "ml_backup/data/bars/AAPL/1_min/2024-01-02.parquet"
    assert mirrored.read_bytes() == (data_root / "bars/AAPL/1_min/2024-01-02.parquet").read_bytes()


def test_backup_format_setting_is_the_default_and_csv_out_of_the_box(
    data_root: Path, isolated_workdir: Path
) -> None:
    _fill(data_root)

    default = invoke(["data", "backup"])
    parquet = invoke(["data", "backup", "--to", "b2"], env={"BACKUP_FORMAT": "parquet"})

    assert default.exit_code == 0, default.stderr
    assert (isolated_workdir / "ml_backup/data/bars/AAPL/1_min/2024-01-02.csv").exists()
    assert parquet.exit_code == 0, parquet.stderr
    assert (isolated_workdir / "b2/data/bars/AAPL/1_min/2024-01-02.parquet").exists()


def test_verify_exits_1_naming_a_flipped_byte(data_root: Path, tmp_path: Path) -> None:
    _fill(data_root)
    backup = tmp_path / "backup"
    assert invoke(["data", "backup", "--to", str(backup), "--format", "parquet"]).exit_code == 0
    clean = invoke(["data", "backup", "--to", str(backup), "--verify"])
    victim = backup / "data/signals/AAPL/2024-01-02.parquet"
    raw = bytearray(victim.read_bytes())
    raw[10] ^= 0x01
    victim.write_bytes(bytes(raw))

    found = invoke(["data", "backup", "--to", str(backup), "--verify"])

    assert clean.exit_code == 0, clean.stderr
    assert found.exit_code == 1
    assert "data/signals/AAPL/2024-01-02.parquet: backup_changed" in found.stderr
    assert "bars" not in found.stderr


def test_part_files_of_a_live_recording_are_not_backed_up(data_root: Path, tmp_path: Path) -> None:
    _fill(data_root)
    final = data_root / "level2/AAPL/2024-01-02_snapshots_093000.parquet"
    write_table_atomic(trades("AAPL", utc(2024, 1, 2, 14, 30), 2), part_path(final, 0))

    report = _json(["data", "backup", "--to", str(tmp_path / "b"), "--format", "parquet"])

    assert report["counts"]["copied"] == 3  # type: ignore[index]
    assert not list((tmp_path / "b").rglob("*.part-*"))


def test_prune_removes_only_what_is_gone_from_the_data_root(
    data_root: Path, tmp_path: Path
) -> None:
    _fill(data_root)
    backup = tmp_path / "b"
    invoke(["data", "backup", "--to", str(backup)])
    (data_root / "signals/AAPL/2024-01-02.parquet").unlink()

    kept = _json(["data", "backup", "--to", str(backup)])
    pruned = _json(["data", "backup", "--to", str(backup), "--prune"])

    assert kept["counts"]["pruned"] == 0  # type: ignore[index]
    assert pruned["files"] == [
        {"path": "data/signals/AAPL/2024-01-02.csv", "outcome": "pruned", "message": ""}
    ]
    assert (backup / "data/bars/AAPL/1_min/2024-01-02.csv").exists()
    assert not (backup / "data/signals/AAPL/2024-01-02.csv").exists()


def test_bad_since_and_bad_format_exit_2_with_one_line() -> None:
    since = invoke(["data", "backup", "--since", "2024-02-30"])
    fmt = invoke(["data", "backup", "--format", "xlsx"])

    assert since.exit_code == 2
    assert "--since" in since.stderr
    assert "2024-02-30" in since.stderr
    assert fmt.exit_code == 2
    assert "--format" in fmt.stderr
    for result in (since, fmt):
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr


def test_killed_backup_leaves_no_partial_file_and_the_next_run_completes(
    data_root: Path, tmp_path: Path
) -> None:
    folder = data_root / "runs"
    folder.mkdir(parents=True)
    payload = os.urandom(256 * 1024)
    for n in range(300):
        (folder / f"{n:04d}.bin").write_bytes(payload[n:] + payload[:n])
    backup = tmp_path / "b"
    cmd = [sys.executable, "-m", "ibdesk", "data", "backup", "--to", str(backup)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    copied = backup / "data" / "runs"
    deadline = time.monotonic() + 120
    while not (copied.is_dir() and len(list(copied.iterdir())) >= 120):
        assert proc.poll() is None, "backup finished before it could be killed"
        assert time.monotonic() < deadline, "backup copied nothing within 120 s"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL

    for path in copied.iterdir():
        if not path.name.endswith(".tmp"):  # a temp file is the only thing a kill may leave
            assert path.read_bytes() == (folder / path.name).read_bytes()
    rerun = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=300)
    verified = subprocess.run([*cmd, "--verify"], capture_output=True, text=True, timeout=300)

    assert rerun.returncode == 0, rerun.stderr
    assert 0 < json.loads(rerun.stdout)["counts"]["copied"] < 300
    assert sorted(p.name for p in copied.iterdir()) == sorted(p.name for p in folder.iterdir())
    assert verified.returncode == 0, verified.stderr
    assert "300 files checked, 0 problems" in verified.stdout
