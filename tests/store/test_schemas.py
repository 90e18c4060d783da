"""The Arrow schemas of ARCHITECTURE.md's data contracts and their version metadata."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ibdesk.store import schemas
from ibdesk.store.parquet import write_table_atomic

ALL_SCHEMAS = {
    "bars/1": schemas.bars_schema(),
    "trades/1": schemas.trades_schema(),
    "depth_messages/1": schemas.depth_messages_schema(),
    "signals/1": schemas.signals_schema(),
    "l2_snapshots/1": schemas.l2_snapshot_schema(10),
}


@pytest.mark.parametrize(("version", "schema"), ALL_SCHEMAS.items())
def test_every_schema_carries_its_version(version: str, schema: pa.Schema) -> None:
    assert schemas.schema_version(schema) == version


@pytest.mark.parametrize("schema", ALL_SCHEMAS.values())
def test_ts_is_nanoseconds_utc_and_symbol_is_second(schema: pa.Schema) -> None:
    assert schema.field("ts").type == pa.timestamp("ns", tz="UTC")
    assert not schema.field("ts").nullable
    assert schema.names[:2] == ["ts", "symbol"]


def test_level_columns_are_grouped_by_side_and_quantity() -> None:
    assert schemas.level_columns(2) == [
        "bid_px_00",
        "bid_px_01",
        "bid_sz_00",
        "bid_sz_01",
        "ask_px_00",
        "ask_px_01",
        "ask_sz_00",
        "ask_sz_01",
    ]


@pytest.mark.parametrize("levels", [0, 21])
def test_level_count_outside_1_to_20_is_refused(levels: int) -> None:
    with pytest.raises(ValueError, match=r"levels must be 1\.\.20"):
        schemas.level_columns(levels)


def test_snapshot_schema_metadata_has_levels_and_given_keys() -> None:
    schema = schemas.l2_snapshot_schema(
        20, {"source": "ibkr", "interval_ms": "100", "dataset": "XNAS.ITCH"}
    )

    meta = schemas.file_metadata(schema)

    assert meta == {
        "ibdesk.schema": "l2_snapshots/1",
        "levels": "20",
        "source": "ibkr",
        "interval_ms": "100",
        "dataset": "XNAS.ITCH",
    }
    assert len(schema.names) == 2 + 4 * 20
    assert all(schema.field(n).type == pa.float64() for n in schemas.level_columns(20))


def test_bars_schema_types() -> None:
    schema = schemas.bars_schema()
    assert schema.names == [
        "ts",
        "symbol",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "wap",
        "bar_count",
    ]
    assert schema.field("bar_count").type == pa.int64()


def test_depth_message_codes_use_small_ints() -> None:
    schema = schemas.depth_messages_schema()
    assert schema.field("position").type == pa.int16()
    assert schema.field("operation").type == pa.int8()
    assert schema.field("side").type == pa.int8()
    assert schema.field("is_smart").type == pa.bool_()


def test_version_metadata_survives_a_parquet_round_trip(tmp_path: Path) -> None:
    schema = schemas.trades_schema({"source": "databento"})
    path = write_table_atomic(schema.empty_table(), tmp_path / "t.parquet")

    meta = schemas.file_metadata(pq.read_schema(path))

    assert meta["ibdesk.schema"] == "trades/1"
    assert meta["source"] == "databento"


def test_foreign_schema_has_no_version() -> None:
    assert schemas.schema_version(pa.schema([("ts", pa.int64())])) is None
    assert schemas.file_metadata(pa.schema([("ts", pa.int64())])) == {}
