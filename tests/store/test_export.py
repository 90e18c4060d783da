"""`data export`: CSV backup mirroring the layout."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pyarrow.csv as pacsv
import pytest

from ibdesk.store import layout
from ibdesk.store.bars import store_bars
from ibdesk.store.export import ExportStatus, export_csv
from ibdesk.store.parquet import part_path, write_table_atomic
from ibdesk.store.readers import DataKind
from tests.store.factories import bars, snapshots, trades, utc


@pytest.fixture
def backup(tmp_path: Path) -> Path:
    return tmp_path / "backup"


def _fill(root: Path) -> None:
    store_bars(root, "1 min", bars("AAPL", utc(2024, 1, 2, 14, 30), 3))
    store_bars(root, "1 min", bars("AAPL", utc(2024, 1, 3, 14, 30), 2))
    store_bars(root, "5 mins", bars("MSFT", utc(2024, 1, 2, 14, 30), 2, step_s=300))
    level2 = root / "level2"
    write_table_atomic(
        trades("AAPL", utc(2024, 1, 2, 14, 30), 4),
        layout.databento_trades_path(level2, "AAPL", date(2024, 1, 2)),
    )


def _relative(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_export_mirrors_the_layout_as_csv(data_root: Path, backup: Path) -> None:
    _fill(data_root)

    report = export_csv(data_root, backup)

    assert _relative(backup) == [
        "data/bars/AAPL/1_min/2024-01-02.csv",
        "data/bars/AAPL/1_min/2024-01-03.csv",
        "data/bars/MSFT/5_mins/2024-01-02.csv",
        "data/level2/AAPL/2024-01-02_trades_databento.csv",
    ]
    assert report.count(ExportStatus.WRITTEN) == 4
    assert report.to_json()["rows"] == 3 + 2 + 2 + 4


def test_csv_holds_the_same_values_with_iso_utc_times(data_root: Path, backup: Path) -> None:
    table = bars("AAPL", utc(2024, 1, 2, 14, 30), 3)
    store_bars(data_root, "1 min", table)

    export_csv(data_root, backup)

    read = pacsv.read_csv(backup / "data/bars/AAPL/1_min/2024-01-02.csv")
    assert read.column_names == table.column_names
    assert read.column("ts").to_pylist() == table.column("ts").to_pylist()
    assert read.column("close").to_pylist() == table.column("close").to_pylist()
    text = (backup / "data/bars/AAPL/1_min/2024-01-02.csv").read_text()
    assert '"2024-01-02T14:30:00.000000000Z"' in text


def test_up_to_date_backups_are_skipped_unless_forced(data_root: Path, backup: Path) -> None:
    _fill(data_root)
    export_csv(data_root, backup)

    again = export_csv(data_root, backup)
    forced = export_csv(data_root, backup, force=True)

    assert again.count(ExportStatus.SKIPPED) == 4
    assert forced.count(ExportStatus.WRITTEN) == 4


def test_a_changed_source_is_exported_again(data_root: Path, backup: Path) -> None:
    writes = store_bars(data_root, "1 min", bars("AAPL", utc(2024, 1, 2, 14, 30), 3))
    export_csv(data_root, backup)
    target = backup / "data/bars/AAPL/1_min/2024-01-02.csv"
    os.utime(target, ns=(1, 1))  # the backup is older than its source
    store_bars(data_root, "1 min", bars("AAPL", utc(2024, 1, 2, 14, 33), 2))

    report = export_csv(data_root, backup)

    assert [i.status for i in report.items] == [ExportStatus.WRITTEN]
    assert len(target.read_text().splitlines()) == 1 + 5
    assert writes[0].path.exists()


def test_filters_by_kind_symbol_day_and_bar_size(data_root: Path, backup: Path) -> None:
    _fill(data_root)

    only_bars = export_csv(data_root, backup / "a", kinds=[DataKind.BARS], symbols=["aapl"])
    one_day = export_csv(data_root, backup / "b", start=date(2024, 1, 3), end=date(2024, 1, 3))
    five = export_csv(data_root, backup / "c", bar_size_folder="5_mins", kinds=[DataKind.BARS])

    assert [i.target.name for i in only_bars.items] == ["2024-01-02.csv", "2024-01-03.csv"]
    assert [i.source.name for i in one_day.items] == ["2024-01-03.parquet"]
    assert [i.source.parent.name for i in five.items] == ["5_mins"]


def test_part_files_export_as_one_csv(data_root: Path, backup: Path) -> None:
    final = layout.capture_path(
        data_root / "level2", "AAPL", date(2024, 1, 2), "snapshots", utc(2024, 1, 2, 9, 30)
    )
    write_table_atomic(snapshots("AAPL", utc(2024, 1, 2, 14, 30), 2), part_path(final, 0))
    write_table_atomic(snapshots("AAPL", utc(2024, 1, 2, 14, 31), 3), part_path(final, 1))

    report = export_csv(data_root, backup)

    (item,) = report.items
    assert item.target.name == "2024-01-02_snapshots_093000.csv"
    assert item.rows == 5


def test_an_unreadable_file_fails_alone(data_root: Path, backup: Path) -> None:
    _fill(data_root)
    broken = data_root / "bars/AAPL/1_min/2024-01-04.parquet"
    broken.write_bytes(b"garbage")

    report = export_csv(data_root, backup)

    assert [i.source for i in report.failed] == [broken]
    assert str(broken) in report.failed[0].message
    assert report.count(ExportStatus.WRITTEN) == 4
    assert not list(backup.rglob("*.tmp"))
    assert not (backup / "data/bars/AAPL/1_min/2024-01-04.csv").exists()
