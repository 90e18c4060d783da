"""Readers accept every version and foreign files whose columns fit v1."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ibdesk.store import schemas
from ibdesk.store.parquet import part_path, write_table_atomic
from ibdesk.store.readers import (
    DataKind,
    SchemaMismatchError,
    kind_of_path,
    parse_tag,
    read_data,
    snapshot_levels,
)
from tests.store.factories import bars, snapshots, trades, utc, write_foreign


def test_reads_an_ibdesk_bars_file_unchanged(data_root: Path) -> None:
    table = bars("AAPL", utc(2024, 1, 2, 14, 30), 3)
    path = write_table_atomic(table, data_root / "bars/AAPL/1_min/2024-01-02.parquet")

    read = read_data(path)

    assert read.equals(table)
    assert schemas.schema_version(read.schema) == "bars/1"


def test_foreign_pandas_file_is_read_as_v1(data_root: Path) -> None:
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2024-01-02 14:30", "2024-01-02 14:31"]),  # zone-less, UTC
            "symbol": ["AAPL", "AAPL"],
            "open": [1, 2],  # ints: cast to float64
            "high": [1.5, 2.5],
            "low": [0.5, 1.5],
            "close": [1.2, 2.2],
            "volume": [100, 200],
            "note": ["x", "y"],
        }
    )
    path = data_root / "bars/AAPL/1_min/2024-01-02.parquet"
    path.parent.mkdir(parents=True)
    frame.to_parquet(path)

    read = read_data(path)

    assert read.schema.field("ts").type == schemas.TS_TYPE
    assert read.column("ts").to_pylist() == [utc(2024, 1, 2, 14, 30), utc(2024, 1, 2, 14, 31)]
    assert read.column("open").type == pa.float64()
    assert read.column("wap").null_count == 2
    assert read.column("bar_count").type == pa.int64()
    assert read.column_names[-1] == "note"  # extra columns are kept after the contract
    assert schemas.schema_version(read.schema) == "bars/1"


def test_foreign_bars_without_symbol_take_it_from_the_folder(data_root: Path) -> None:
    table = bars("AAPL", utc(2024, 1, 2, 14, 30), 2).drop_columns(["symbol"])
    path = write_foreign(table, data_root / "bars/MSFT/1_min/2024-01-02.parquet")

    assert read_data(path).column("symbol").to_pylist() == ["MSFT", "MSFT"]


def test_foreign_file_missing_columns_names_the_file_and_columns(data_root: Path) -> None:
    table = bars("AAPL", utc(2024, 1, 2, 14, 30), 2).drop_columns(["high", "low"])
    path = write_foreign(table, data_root / "bars/AAPL/1_min/2024-01-02.parquet")

    with pytest.raises(SchemaMismatchError) as error:
        read_data(path)

    assert str(path) in error.value.message
    assert "missing high, low" in error.value.message
    assert error.value.exit_code == 2


def test_foreign_column_of_wrong_type_names_file_and_column(data_root: Path) -> None:
    table = bars("AAPL", utc(2024, 1, 2, 14, 30), 1).set_column(
        2, "open", pa.array(["not a price"])
    )
    path = write_foreign(table, data_root / "bars/AAPL/1_min/2024-01-02.parquet")

    with pytest.raises(SchemaMismatchError, match=r"2024-01-02.parquet: column open"):
        read_data(path)


def test_a_file_of_another_kind_is_refused(data_root: Path) -> None:
    path = write_table_atomic(
        trades("AAPL", utc(2024, 1, 2, 14, 30), 2), data_root / "somewhere.parquet"
    )

    with pytest.raises(SchemaMismatchError, match="holds trades, expected bars"):
        read_data(path, DataKind.BARS)


def test_a_newer_version_asks_for_an_upgrade(data_root: Path) -> None:
    table = bars("AAPL", utc(2024, 1, 2, 14, 30), 1)
    meta = dict(table.schema.metadata or {})
    meta[schemas.SCHEMA_KEY] = b"bars/2"
    path = data_root / "b.parquet"
    write_table_atomic(table.replace_schema_metadata(meta), path)

    with pytest.raises(SchemaMismatchError, match="newer than this ibdesk reads"):
        read_data(path)


def test_unknown_schema_tag_is_refused(data_root: Path) -> None:
    table = bars("AAPL", utc(2024, 1, 2, 14, 30), 1)
    path = data_root / "b.parquet"
    write_table_atomic(table.replace_schema_metadata({b"ibdesk.schema": b"candles/1"}), path)

    with pytest.raises(SchemaMismatchError, match="unknown schema 'candles/1'"):
        read_data(path)


def test_corrupt_file_is_a_clear_error_naming_it(data_root: Path) -> None:
    path = data_root / "bars/AAPL/1_min/2024-01-02.parquet"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not parquet")

    with pytest.raises(SchemaMismatchError, match=r"2024-01-02.parquet: unreadable Parquet"):
        read_data(path)


def test_missing_file_is_a_clear_error(data_root: Path) -> None:
    with pytest.raises(SchemaMismatchError, match="no such data file"):
        read_data(data_root / "bars/AAPL/1_min/2024-01-02.parquet")


def test_part_files_of_a_capture_read_as_one(data_root: Path) -> None:
    final = data_root / "level2/AAPL/2024-01-02_snapshots_093000.parquet"
    write_table_atomic(snapshots("AAPL", utc(2024, 1, 2, 14, 30), 3), part_path(final, 0))
    write_table_atomic(snapshots("AAPL", utc(2024, 1, 2, 14, 31), 4), part_path(final, 1))

    read = read_data(final)

    assert read.num_rows == 7
    assert schemas.file_metadata(read.schema)["source"] == "sim"


def test_foreign_snapshots_levels_are_detected(data_root: Path) -> None:
    table = snapshots("AAPL", utc(2024, 1, 2, 14, 30), 2, levels=3)
    path = write_foreign(table, data_root / "level2/AAPL/2024-01-02_snapshots_databento.parquet")

    read = read_data(path)

    assert schemas.file_metadata(read.schema)["levels"] == "3"
    assert read.column_names == ["ts", "symbol", *schemas.level_columns(3)]


def test_foreign_snapshots_without_levels_are_refused(data_root: Path) -> None:
    table = pa.table({"ts": [utc(2024, 1, 2)], "symbol": ["A"]})
    path = write_foreign(table, data_root / "level2/A/2024-01-02_snapshots_093000.parquet")

    with pytest.raises(SchemaMismatchError, match="no bid_px_00"):
        read_data(path)


def test_reading_some_columns_casts_only_those(data_root: Path) -> None:
    table = bars("AAPL", utc(2024, 1, 2, 14, 30), 3)
    path = write_foreign(
        table.set_column(0, "ts", table.column("ts").cast(pa.timestamp("us"))),
        data_root / "bars/AAPL/1_min/2024-01-02.parquet",
    )

    read = read_data(path, DataKind.BARS, columns=["ts"])

    assert read.column_names == ["ts"]
    assert read.column("ts").type == schemas.TS_TYPE
    assert read.column("ts").equals(table.column("ts"))


@pytest.mark.parametrize(
    ("relative", "kind"),
    [
        ("bars/AAPL/1_min/2024-01-02.parquet", DataKind.BARS),
        ("level2/AAPL/2024-01-02_snapshots_093000.parquet", DataKind.L2_SNAPSHOTS),
        ("level2/AAPL/2024-01-02_trades_databento.parquet", DataKind.TRADES),
        ("level2/AAPL/2024-01-02_messages_093000.part-0001.parquet", DataKind.DEPTH_MESSAGES),
        ("signals/AAPL/2024-01-02.parquet", DataKind.SIGNALS),
        ("elsewhere/file.parquet", None),
    ],
)
def test_kind_follows_the_layout(relative: str, kind: DataKind | None) -> None:
    assert kind_of_path(Path("data") / relative) is kind


def test_parse_tag_and_levels() -> None:
    tag = parse_tag("l2_snapshots/1")
    assert tag is not None
    assert (tag.kind, tag.version) == (DataKind.L2_SNAPSHOTS, 1)
    assert parse_tag("l2_snapshots") is None
    assert snapshot_levels(["bid_px_00", "bid_px_01", "bid_px_03"]) == 2


def test_foreign_file_without_layout_or_kind_is_refused(data_root: Path) -> None:
    path = data_root / "x.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({"a": [1]}), path)

    with pytest.raises(SchemaMismatchError, match="cannot tell which kind"):
        read_data(path)
