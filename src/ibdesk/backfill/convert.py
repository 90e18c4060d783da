"""MBP-10 record arrays -> L2 snapshot schema v1 and trades schema v1 (pure, vectorised).

Works on the structured arrays `DBNStore.to_ndarray()` returns (fields of
`databento_dbn.MBP10Msg`), never per record in Python and never through `to_df()`.
Imports neither databento nor any I/O module.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa

from ibdesk.store.layout import Source
from ibdesk.store.schemas import l2_snapshot_schema, trades_schema

F_LAST = 128
UNDEF_PRICE = (1 << 63) - 1
PRICE_SCALE = 1e9
MBP10_LEVELS = 10
_NS_PER_MS = 1_000_000


def snapshot_grid_ns(window_start_ns: int, window_end_ns: int, interval_ms: int) -> np.ndarray:
    """Sample times start + k·interval for k = 1..K, the last one being the window end."""
    if interval_ms <= 0:
        raise ValueError(f"interval_ms must be positive, got {interval_ms}")
    if window_end_ns <= window_start_ns:
        return np.empty(0, dtype=np.int64)
    step = interval_ms * _NS_PER_MS
    count = (window_end_ns - window_start_ns) // step
    grid = window_start_ns + step * np.arange(1, count + 1, dtype=np.int64)
    if count == 0 or int(grid[-1]) != window_end_ns:
        grid = np.append(grid, np.int64(window_end_ns))
    return grid


def snapshot_metadata(dataset: str, schema: str, interval_ms: int, levels: int) -> dict[str, str]:
    return {
        "source": Source.DATABENTO.value,
        "dataset": dataset,
        "schema": schema,
        "levels": str(levels),
        "interval_ms": str(interval_ms),
    }


def _flat(records: np.ndarray) -> np.ndarray:
    return records.reshape(-1) if records.ndim != 1 else records


def _take(records: np.ndarray, index: np.ndarray) -> np.ndarray:
    """`records[index]` through an opaque-bytes view: a memcpy per record instead of numpy's
    field-by-field copy of a 70-field structured dtype (about 10x faster)."""
    opaque = np.dtype((np.void, records.dtype.itemsize))
    return np.ascontiguousarray(records).view(opaque)[index].view(records.dtype)


def _repeat(text: str | None, count: int) -> pa.Array:
    return pa.repeat(pa.scalar(text, type=pa.string()), count)


def mbp10_to_snapshots(
    records: np.ndarray,
    symbol: str,
    window_start_ns: int,
    window_end_ns: int,
    interval_ms: int,
    metadata: Mapping[str, str],
    levels: int = MBP10_LEVELS,
) -> pa.Table:
    """One row per grid time T: the book of the last F_LAST record with ts_recv < T.

    The record's `levels` are taken as they are, whatever its action (trades included);
    grid times before any such record have no row. Empty levels (UNDEF_PRICE) have a null
    price (size as sent, 0); prices are dollars.
    """
    schema = l2_snapshot_schema(levels, metadata)
    records = _flat(records)
    grid = snapshot_grid_ns(window_start_ns, window_end_ns, interval_ms)
    if len(records) == 0 or len(grid) == 0:
        return schema.empty_table()
    final_pos = np.flatnonzero(records["flags"] & F_LAST)
    ts_final = records["ts_recv"][final_pos].astype(np.int64)
    if len(ts_final) > 1 and bool(np.any(ts_final[1:] < ts_final[:-1])):
        order = np.argsort(ts_final, kind="stable")
        final_pos, ts_final = final_pos[order], ts_final[order]
    before = np.searchsorted(ts_final, grid, side="left") - 1
    has_book = before >= 0
    times = grid[has_book]
    rows = _take(records, final_pos[before[has_book]])
    columns: list[pa.Array] = [
        pa.array(times, type=pa.int64()).cast(schema.field("ts").type),
        _repeat(symbol, len(times)),
    ]
    prices: dict[tuple[str, int], pa.Array] = {}
    sizes: dict[tuple[str, int], pa.Array] = {}
    for side in ("bid", "ask"):
        for k in range(levels):
            raw_px = rows[f"{side}_px_{k:02d}"]
            empty = raw_px == UNDEF_PRICE
            prices[(side, k)] = pa.array(raw_px / PRICE_SCALE, mask=empty, type=pa.float64())
            sizes[(side, k)] = pa.array(
                rows[f"{side}_sz_{k:02d}"].astype(np.float64), type=pa.float64()
            )
    for kind, side in (("px", "bid"), ("sz", "bid"), ("px", "ask"), ("sz", "ask")):
        source = prices if kind == "px" else sizes
        columns.extend(source[(side, k)] for k in range(levels))
    return pa.Table.from_arrays(columns, schema=schema)


def mbp10_to_trades(
    records: np.ndarray,
    symbol: str,
    window_start_ns: int,
    window_end_ns: int,
    exchange: str | None,
    metadata: Mapping[str, str] | None = None,
) -> pa.Table:
    """Trades (action T) with window start <= ts_recv < window end; side B/S from the aggressor."""
    schema = trades_schema(metadata)
    records = _flat(records)
    if len(records) == 0:
        return schema.empty_table()
    ts = records["ts_recv"].astype(np.int64)
    is_trade = (
        (records["action"].view(np.uint8) == ord("T"))
        & (ts >= window_start_ns)
        & (ts < window_end_ns)
    )
    trade_pos = np.flatnonzero(is_trade)
    trades = _take(records, trade_pos)
    aggressor = trades["side"].view(np.uint8)
    # Aggressor side: B (bid) = the buyer lifted the offer, A (ask) = the seller hit the bid.
    side_code = np.where(aggressor == ord("B"), 0, np.where(aggressor == ord("A"), 1, 2))
    side = pa.DictionaryArray.from_arrays(
        pa.array(side_code.astype(np.int8)), pa.array(["B", "S", "N"])
    ).cast(pa.string())
    count = len(trades)
    columns = [
        pa.array(ts[trade_pos], type=pa.int64()).cast(schema.field("ts").type),
        _repeat(symbol, count),
        pa.array(trades["price"] / PRICE_SCALE, type=pa.float64()),
        pa.array(trades["size"].astype(np.float64), type=pa.float64()),
        side,
        _repeat(exchange, count),
    ]
    return pa.Table.from_arrays(columns, schema=schema)
