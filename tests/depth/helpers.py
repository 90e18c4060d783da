"""Tiny hand-made books and on-disk days for the analyzer's tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import polars as pl
import pyarrow as pa

from ibdesk.depth import synthetic
from ibdesk.store.parquet import write_table_atomic
from ibdesk.store.schemas import l2_snapshot_schema

NS = 1_000_000_000
T0 = 1_704_205_800 * NS  # 2024-01-02 14:30:00 UTC

Level = tuple[float, float]


def book(rows: Sequence[tuple[float, Sequence[Level], Sequence[Level]]]) -> pl.DataFrame:
    """Snapshot rows as (seconds after T0, [(bid px, size)...], [(ask px, size)...]).

    A side given fewer levels than the deepest row gets nulls there (an empty level).
    """
    levels = max(max(len(bids), len(asks)) for _, bids, asks in rows)
    data: dict[str, list[float | None] | list[int]] = {
        "ts": [T0 + round(seconds * NS) for seconds, _, _ in rows]
    }
    for side_name, index in (("bid", 1), ("ask", 2)):
        for k in range(levels):
            prices: list[float | None] = []
            sizes: list[float | None] = []
            for row in rows:
                side = row[index]
                assert isinstance(side, Sequence)
                level = side[k] if k < len(side) else None
                prices.append(level[0] if level else None)
                sizes.append(level[1] if level else None)
            data[f"{side_name}_px_{k:02d}"] = prices
            data[f"{side_name}_sz_{k:02d}"] = sizes
    schema = {"ts": pl.Int64, **{name: pl.Float64 for name in data if name != "ts"}}
    frame = pl.DataFrame(data, schema=schema)
    ordered = ["ts"] + [
        f"{p}_{k:02d}" for p in ("bid_px", "bid_sz", "ask_px", "ask_sz") for k in range(levels)
    ]
    return frame.select(ordered)


def trades(rows: Sequence[tuple[float, float, float, str]]) -> pl.DataFrame:
    """Trades as (seconds after T0, price, size, side)."""
    return pl.DataFrame(
        {
            "ts": [T0 + round(r[0] * NS) for r in rows],
            "price": [r[1] for r in rows],
            "size": [r[2] for r in rows],
            "side": [r[3] for r in rows],
        },
        schema={"ts": pl.Int64, "price": pl.Float64, "size": pl.Float64, "side": pl.String},
    )


def with_metadata(table: pa.Table, **metadata: str) -> pa.Table:
    meta = dict(table.schema.metadata or {})
    meta.update({k.encode(): v.encode() for k, v in metadata.items()})
    return table.replace_schema_metadata(meta)


def without_metadata(table: pa.Table) -> pa.Table:
    return table.replace_schema_metadata(None)


def write_day(
    level2_root: Path,
    spec: synthetic.SyntheticDay,
    source: str,
    tag: str,
    *,
    with_trades: bool = True,
) -> tuple[Path, pa.Table]:
    """Write a synthetic day as `{date}_snapshots_{tag}.parquet` (+ trades) with `source`."""
    folder = level2_root / spec.symbol
    table = synthetic.snapshots_table(spec, source)
    if source == "databento":
        table = with_metadata(table, dataset="XNAS.ITCH", schema="mbp-10")
    path = write_table_atomic(table, folder / f"{spec.day.isoformat()}_snapshots_{tag}.parquet")
    if with_trades:
        write_table_atomic(
            synthetic.trades_table(spec, table, source),
            folder / f"{spec.day.isoformat()}_trades_{tag}.parquet",
        )
    return path, table


def empty_levels_table(levels: int) -> pa.Table:
    return pa.Table.from_pylist([], schema=l2_snapshot_schema(levels, {"source": "sim"}))


DAY = date(2024, 1, 2)
