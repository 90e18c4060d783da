"""status/backup.py: planning from two listings, and the incremental, verifiable mirror."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ibdesk.status.backup import (
    MANIFEST_NAME,
    Action,
    BackupFormat,
    ManifestEntry,
    Mismatch,
    Outcome,
    SourceFile,
    load_manifest,
    plan_backup,
    run_backup,
    target_of,
    verify_backup,
)
from ibdesk.store import layout
from ibdesk.store.bars import store_bars
from ibdesk.store.parquet import part_path, write_table_atomic
from tests.store.factories import bars, signals, trades, utc

PARQUET = BackupFormat.PARQUET


def _entry(source: SourceFile, fmt: BackupFormat = PARQUET) -> ManifestEntry:
    target = target_of(source.path, fmt)
    return ManifestEntry(
        target, source.size, "t", 1, source.path, source.size, "s", source.mtime_ns
    )


# --- planning -------------------------------------------------------------------------


def test_new_file_is_copied_and_recorded_one_is_skipped() -> None:
    old = SourceFile("runs/a.json", 10, 100)
    new = SourceFile("runs/b.json", 5, 100)

    steps = plan_backup([old, new], {"data/runs/a.json": _entry(old)}, PARQUET)

    assert [(s.action, s.target) for s in steps] == [
        (Action.SKIP, "data/runs/a.json"),
        (Action.COPY, "data/runs/b.json"),
    ]


def test_size_change_copies_and_mtime_only_change_asks_for_a_hash() -> None:
    a = SourceFile("runs/a.json", 10, 100)
    b = SourceFile("runs/b.json", 10, 100)
    manifest = {"data/runs/a.json": _entry(a), "data/runs/b.json": _entry(b)}

    steps = plan_backup(
        [SourceFile("runs/a.json", 11, 100), SourceFile("runs/b.json", 10, 200)], manifest, PARQUET
    )

    assert [s.action for s in steps] == [Action.COPY, Action.CHECK]


def test_part_and_tmp_files_are_never_planned() -> None:
    live = [
        SourceFile("level2/AAPL/2024-01-02_snapshots_093000.part-0003.parquet", 9, 1),
        SourceFile("bars/AAPL/1_min/2024-01-02.parquet.tmp", 9, 1),
    ]

    assert plan_backup(live, {}, PARQUET) == []


def test_prune_only_names_manifest_entries_whose_source_is_gone() -> None:
    kept = SourceFile("runs/kept.json", 1, 1)
    gone = SourceFile("runs/gone.json", 1, 1)
    manifest = {"data/runs/kept.json": _entry(kept), "data/runs/gone.json": _entry(gone)}

    without = plan_backup([kept], manifest, PARQUET)
    pruning = plan_backup([kept], manifest, PARQUET, prune=True)

    assert Action.PRUNE not in {s.action for s in without}
    assert [s.target for s in pruning if s.action is Action.PRUNE] == ["data/runs/gone.json"]


def test_since_limits_copies_but_not_what_prune_sees() -> None:
    old = SourceFile("runs/old.json", 1, 50)
    manifest = {"data/runs/old.json": _entry(SourceFile("runs/old.json", 2, 50))}

    steps = plan_backup(
        [old, SourceFile("runs/new.json", 1, 150)], manifest, PARQUET, since_ns=100, prune=True
    )

    assert [(s.action, s.target) for s in steps] == [(Action.COPY, "data/runs/new.json")]


def test_csv_format_renames_only_bars_and_signals() -> None:
    assert target_of("bars/AAPL/1_min/2024-01-02.parquet", BackupFormat.CSV).endswith(".csv")
    assert target_of("signals/AAPL/2024-01-02.parquet", BackupFormat.CSV).endswith(".csv")
    trades_file = "level2/AAPL/2024-01-02_trades_databento.parquet"
    assert target_of(trades_file, BackupFormat.CSV) == f"data/{trades_file}"


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 3), st.integers(0, 3)),
        unique_by=lambda t: t[0],
    ),
    st.sets(st.sampled_from(["a", "b", "c", "d", "e"])),
)
def test_every_source_is_planned_once_and_prune_never_touches_a_present_source(
    files: list[tuple[str, int, int]], recorded: set[str]
) -> None:
    sources = [SourceFile(f"runs/{n}.json", size, mtime) for n, size, mtime in files]
    manifest = {f"data/runs/{n}.json": _entry(SourceFile(f"runs/{n}.json", 1, 1)) for n in recorded}

    steps = plan_backup(sources, manifest, PARQUET, prune=True)

    planned = [s.target for s in steps if s.action is not Action.PRUNE]
    assert sorted(planned) == sorted(f"data/runs/{n}.json" for n, _, _ in files)
    pruned = {s.target for s in steps if s.action is Action.PRUNE}
    assert pruned == {f"data/runs/{n}.json" for n in recorded} - set(planned)


# --- I/O ------------------------------------------------------------------------------


def _fill(root: Path) -> None:
    store_bars(root, "1 min", bars("AAPL", utc(2024, 1, 2, 14, 30), 30))
    write_table_atomic(
        signals("AAPL", utc(2024, 1, 2, 14, 30), 3),
        layout.signals_path(root, "AAPL", date(2024, 1, 2)),
    )
    write_table_atomic(
        trades("AAPL", utc(2024, 1, 2, 14, 30), 4, source="databento"),
        layout.databento_trades_path(root / "level2", "AAPL", date(2024, 1, 2)),
    )
    (root / "runs").mkdir(parents=True)
    (root / "runs" / "20240102_093000.json").write_text('{"ok": true}\n')


def _backup_files(backup: Path) -> set[str]:
    return {p.relative_to(backup).as_posix() for p in backup.rglob("*") if p.is_file()}


def test_second_run_copies_nothing_and_a_changed_file_is_recopied(tmp_path: Path) -> None:
    root, backup = tmp_path / "data", tmp_path / "backup"
    _fill(root)

    first = run_backup(root, backup, PARQUET)
    second = run_backup(root, backup, PARQUET)
    (root / "runs" / "20240102_093000.json").write_text('{"ok": false, "more": 1}\n')
    third = run_backup(root, backup, PARQUET)

    assert first.count(Outcome.COPIED) == 4
    assert second.count(Outcome.COPIED) == 0
    assert second.count(Outcome.UNCHANGED) == 4
    assert [i.target for i in third.having(Outcome.COPIED)] == ["data/runs/20240102_093000.json"]
    assert (backup / "data/runs/20240102_093000.json").read_text() == '{"ok": false, "more": 1}\n'
    assert MANIFEST_NAME in _backup_files(backup)


def test_same_size_new_mtime_is_hashed_and_recopied_only_when_content_differs(
    tmp_path: Path,
) -> None:
    root, backup = tmp_path / "data", tmp_path / "backup"
    _fill(root)
    run = root / "runs" / "20240102_093000.json"
    run_backup(root, backup, PARQUET)

    run.write_text('{"ok": true}\n')  # same bytes, new mtime
    touched = run_backup(root, backup, PARQUET)
    run.write_text('{"no": 1}\n\n\n')  # same size, other bytes
    changed = run_backup(root, backup, PARQUET)

    assert touched.count(Outcome.COPIED) == 0
    assert [i.target for i in changed.having(Outcome.COPIED)] == ["data/runs/20240102_093000.json"]
    assert (backup / "data/runs/20240102_093000.json").read_text() == '{"no": 1}\n\n\n'


def test_mirror_is_byte_identical(tmp_path: Path) -> None:
    root, backup = tmp_path / "data", tmp_path / "backup"
    _fill(root)

    run_backup(root, backup, PARQUET)

    for source in root.rglob("*"):
        if source.is_file():
            assert (backup / "data" / source.relative_to(root)).read_bytes() == source.read_bytes()


def test_csv_format_writes_bars_and_signals_as_csv_and_copies_the_rest(tmp_path: Path) -> None:
    root, backup = tmp_path / "data", tmp_path / "backup"
    _fill(root)

    run_backup(root, backup, BackupFormat.CSV)

    with open(backup / "data/bars/AAPL/1_min/2024-01-02.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 30
    assert rows[0]["ts"].endswith("Z")
    assert (backup / "data/signals/AAPL/2024-01-02.csv").exists()
    trades_file = "level2/AAPL/2024-01-02_trades_databento.parquet"
    assert (backup / "data" / trades_file).read_bytes() == (root / trades_file).read_bytes()


def test_part_files_of_a_live_recording_and_tmp_files_are_skipped(tmp_path: Path) -> None:
    root, backup = tmp_path / "data", tmp_path / "backup"
    _fill(root)
    final = root / "level2/AAPL/2024-01-02_snapshots_093000.parquet"
    write_table_atomic(trades("AAPL", utc(2024, 1, 2, 14, 30), 2), part_path(final, 0))
    (root / "runs" / "x.json.tmp").write_text("half")

    report = run_backup(root, backup, PARQUET)

    assert report.count(Outcome.COPIED) == 4
    names = _backup_files(backup)
    assert not any(".part-" in n or n.endswith(".tmp") for n in names)


def test_prune_removes_only_files_gone_from_the_source(tmp_path: Path) -> None:
    root, backup = tmp_path / "data", tmp_path / "backup"
    _fill(root)
    run_backup(root, backup, PARQUET)
    (backup / "data" / "mine.txt").write_text("not written by the backup")
    (root / "runs" / "20240102_093000.json").unlink()

    kept = run_backup(root, backup, PARQUET)
    assert (backup / "data/runs/20240102_093000.json").exists()
    pruned = run_backup(root, backup, PARQUET, prune=True)

    assert kept.count(Outcome.PRUNED) == 0
    assert [i.target for i in pruned.having(Outcome.PRUNED)] == ["data/runs/20240102_093000.json"]
    assert not (backup / "data/runs/20240102_093000.json").exists()
    assert (backup / "data" / "mine.txt").exists()
    assert (backup / "data/bars/AAPL/1_min/2024-01-02.parquet").exists()
    assert "data/runs/20240102_093000.json" not in load_manifest(backup)


def test_verify_names_a_flipped_byte_and_the_next_backup_repairs_it(tmp_path: Path) -> None:
    root, backup = tmp_path / "data", tmp_path / "backup"
    _fill(root)
    run_backup(root, backup, PARQUET)
    assert verify_backup(root, backup).problems == ()
    victim = backup / "data/bars/AAPL/1_min/2024-01-02.parquet"
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    victim.write_bytes(bytes(raw))

    found = verify_backup(root, backup)
    run_backup(root, backup, PARQUET)

    assert [(p.target, p.problem) for p in found.problems] == [
        ("data/bars/AAPL/1_min/2024-01-02.parquet", Mismatch.BACKUP_CHANGED)
    ]
    assert victim.read_bytes() == (root / "bars/AAPL/1_min/2024-01-02.parquet").read_bytes()
    assert verify_backup(root, backup).problems == ()


def test_failure_mid_copy_leaves_no_partial_file_and_the_next_run_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ibdesk.status.backup as backup_mod

    root, backup = tmp_path / "data", tmp_path / "backup"
    _fill(root)
    real = backup_mod._copy_hashing
    calls = {"n": 0}

    def failing(source: Path, handle: object) -> str:
        calls["n"] += 1
        if calls["n"] == 2:
            handle.write(b"half a file")  # type: ignore[attr-defined]
            raise OSError(28, "No space left on device")
        return real(source, handle)  # type: ignore[arg-type]

    monkeypatch.setattr(backup_mod, "_copy_hashing", failing)
    broken = run_backup(root, backup, PARQUET)
    monkeypatch.setattr(backup_mod, "_copy_hashing", real)
    names_after_failure = _backup_files(backup)
    resumed = run_backup(root, backup, PARQUET)

    assert len(broken.having(Outcome.FAILED)) == 1
    assert not any(n.endswith(".tmp") for n in names_after_failure)
    assert broken.having(Outcome.FAILED)[0].target not in names_after_failure
    assert [i.target for i in resumed.having(Outcome.COPIED)] == [
        broken.having(Outcome.FAILED)[0].target
    ]
    assert verify_backup(root, backup).problems == ()
