"""The atomic writer, part files and compaction of `ibdesk.store.parquet`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ibdesk.store import parquet
from ibdesk.store.parquet import (
    compact_parts,
    logical_files,
    part_files,
    part_path,
    read_logical,
    write_table_atomic,
)
from tests.store.factories import bars, utc


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An empty folder of the test's own (tmp_path also holds the test's cwd)."""
    path = tmp_path / "store"
    path.mkdir()
    return path


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_leaves_only_the_final_file(folder: Path) -> None:
    path = folder / "deep" / "AAPL" / "2024-01-02.parquet"
    table = bars("AAPL", utc(2024, 1, 2, 14, 30), 5)

    write_table_atomic(table, path)

    assert [p.name for p in path.parent.iterdir()] == [path.name]
    assert pq.read_table(path).equals(table)


def test_failure_mid_write_keeps_the_previous_file_and_no_tmp(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = folder / "2024-01-02.parquet"
    old = bars("AAPL", utc(2024, 1, 2, 14, 30), 3)
    write_table_atomic(old, path)
    real_write = pq.write_table

    def write_half_then_fail(table: pa.Table, where: object, **kwargs: object) -> None:
        real_write(table.slice(0, 1), where, **kwargs)  # type: ignore[arg-type]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(parquet.pq, "write_table", write_half_then_fail)

    with pytest.raises(OSError, match="No space left"):
        write_table_atomic(bars("AAPL", utc(2024, 1, 2, 15), 50), path)

    assert _leftovers(folder) == []
    assert pq.read_table(path).equals(old)


def test_unwritable_table_never_creates_the_final_name(folder: Path) -> None:
    path = folder / "x.parquet"
    table = pa.table({"x": pa.array([None], pa.month_day_nano_interval())})

    with pytest.raises(pa.ArrowNotImplementedError):
        write_table_atomic(table, path)

    assert list(folder.iterdir()) == []


def test_failed_rename_leaves_neither_tmp_nor_final(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = folder / "x.parquet"

    def refuse(_src: object, _dst: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(parquet.os, "replace", refuse)
    with pytest.raises(PermissionError):
        write_table_atomic(bars("AAPL", utc(2024, 1, 2, 14, 30), 2), path)

    assert list(folder.iterdir()) == []


def test_part_files_read_as_one_table_in_part_order(folder: Path) -> None:
    final = folder / "2024-01-02_snapshots_093000.parquet"
    chunks = [bars("AAPL", utc(2024, 1, 2, 14, 30 + i), 2) for i in range(3)]
    for n in (2, 0, 1):
        write_table_atomic(chunks[n], part_path(final, n))

    table = read_logical(final)

    assert table.equals(pa.concat_tables(chunks))
    assert not final.exists()


def test_part_numbers_sort_numerically_beyond_four_digits(folder: Path) -> None:
    final = folder / "f.parquet"
    write_table_atomic(bars("A", utc(2024, 1, 2, 15), 1), part_path(final, 10000))
    write_table_atomic(bars("A", utc(2024, 1, 2, 14), 1), part_path(final, 9999))

    assert [p.name for p in part_files(final)] == ["f.part-9999.parquet", "f.part-10000.parquet"]


def test_final_file_and_pending_parts_read_as_one(folder: Path) -> None:
    final = folder / "f.parquet"
    first = bars("A", utc(2024, 1, 2, 14, 30), 2)
    later = bars("A", utc(2024, 1, 2, 15), 2)
    write_table_atomic(first, final)
    write_table_atomic(later, part_path(final, 0))

    assert read_logical(final).num_rows == 4


def test_logical_files_groups_parts_and_ignores_tmp(folder: Path) -> None:
    final = folder / "2024-01-02_trades_093000.parquet"
    write_table_atomic(bars("A", utc(2024, 1, 2, 14), 1), part_path(final, 0))
    write_table_atomic(bars("A", utc(2024, 1, 2, 14), 1), part_path(final, 1))
    other = write_table_atomic(bars("A", utc(2024, 1, 2, 14), 1), folder / "other.parquet")
    (folder / "crashed.parquet.tmp").write_bytes(b"PAR1 half a file")

    groups = logical_files(folder)

    assert groups == {final: [part_path(final, 0), part_path(final, 1)], other: [other]}


def test_compaction_merges_parts_into_the_final_file(folder: Path) -> None:
    final = folder / "f.parquet"
    chunks = [bars("A", utc(2024, 1, 2, 14, i), 2) for i in range(3)]
    for n, chunk in enumerate(chunks):
        write_table_atomic(chunk, part_path(final, n))

    assert compact_parts(final) == final

    assert part_files(final) == []
    assert pq.read_table(final).select(chunks[0].column_names).equals(pa.concat_tables(chunks))
    assert _leftovers(folder) == []


def test_compaction_sweeps_the_half_part_a_killed_writer_left(folder: Path) -> None:
    final = folder / "f.parquet"
    write_table_atomic(bars("A", utc(2024, 1, 2, 14), 2), part_path(final, 0))
    half = part_path(final, 1).with_name(part_path(final, 1).name + ".tmp")
    half.write_bytes(b"PAR1 half a file")
    unrelated = folder / "g.part-0000.parquet.tmp"
    unrelated.write_bytes(b"another file's write in flight")

    compact_parts(final)

    assert not half.exists()
    assert unrelated.exists()  # only this logical file's leftovers are swept
    assert pq.read_table(final).num_rows == 2


def test_compaction_twice_is_the_same_as_once(folder: Path) -> None:
    final = folder / "f.parquet"
    for n in range(2):
        write_table_atomic(bars("A", utc(2024, 1, 2, 14, n), 2), part_path(final, n))
    compact_parts(final)
    once = pq.read_table(final)

    compact_parts(final)

    assert pq.read_table(final).equals(once)


def test_crash_between_compacting_and_deleting_parts_never_duplicates(folder: Path) -> None:
    final = folder / "f.parquet"
    kept = folder / "kept"
    kept.mkdir()
    for n in range(3):
        write_table_atomic(bars("A", utc(2024, 1, 2, 14, n), 2), part_path(final, n))
        shutil.copy(part_path(final, n), kept / part_path(final, n).name)
    compact_parts(final)
    for copy in kept.iterdir():  # the parts the crash did not get to delete
        shutil.copy(copy, folder / copy.name)

    assert read_logical(final).num_rows == 6
    assert logical_files(folder) == {final: [final]}

    compact_parts(final)

    assert part_files(final) == []
    assert read_logical(final).num_rows == 6


def test_parts_written_after_a_compaction_are_still_read(folder: Path) -> None:
    final = folder / "f.parquet"
    write_table_atomic(bars("A", utc(2024, 1, 2, 14), 2), part_path(final, 0))
    compact_parts(final)
    write_table_atomic(bars("A", utc(2024, 1, 2, 15), 3), part_path(final, 1))

    assert read_logical(final).num_rows == 5
    compact_parts(final)
    assert read_logical(final).num_rows == 5


def test_compaction_without_parts_or_final_does_nothing(folder: Path) -> None:
    assert compact_parts(folder / "none.parquet") is None
    assert list(folder.iterdir()) == []


def test_read_logical_of_nothing_raises_file_not_found(folder: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_logical(folder / "none.parquet")


def test_listing_a_folder_with_a_corrupt_final_file_still_works(folder: Path) -> None:
    final = folder / "f.parquet"
    final.write_bytes(b"not parquet at all")
    write_table_atomic(bars("A", utc(2024, 1, 2, 14), 1), part_path(final, 0))

    assert logical_files(folder) == {final: [final, part_path(final, 0)]}
