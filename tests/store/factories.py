"""Hand-made tables in ibdesk's schemas, for store tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ibdesk.store import schemas
from ibdesk.store.parquet import write_table_atomic


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def bars(
    symbol: str, start: datetime, count: int, step_s: int = 60, price: float = 100.0
) -> pa.Table:
    """`count` consistent bars from `start`, one every `step_s` seconds."""
    ts = [start + timedelta(seconds=i * step_s) for i in range(count)]
    opens = [price + i * 0.1 for i in range(count)]
    return pa.table(
        {
            "ts": ts,
            "symbol": [symbol] * count,
            "open": opens,
            "high": [p + 0.5 for p in opens],
            "low": [p - 0.5 for p in opens],
            "close": [p + 0.2 for p in opens],
            "volume": [1000.0 + i for i in range(count)],
            "wap": [p + 0.1 for p in opens],
            "bar_count": list(range(1, count + 1)),
        },
        schema=schemas.bars_schema(),
    )


def snapshots(symbol: str, start: datetime, count: int, levels: int = 2) -> pa.Table:
    ts = [start + timedelta(milliseconds=100 * i) for i in range(count)]
    columns: dict[str, list[object]] = {"ts": list(ts), "symbol": [symbol] * count}
    for k in range(levels):
        columns[f"bid_px_{k:02d}"] = [100.0 - 0.01 * (k + 1)] * count
    for k in range(levels):
        columns[f"bid_sz_{k:02d}"] = [100.0 * (k + 1)] * count
    for k in range(levels):
        columns[f"ask_px_{k:02d}"] = [100.0 + 0.01 * (k + 1)] * count
    for k in range(levels):
        columns[f"ask_sz_{k:02d}"] = [200.0 * (k + 1)] * count
    schema = schemas.l2_snapshot_schema(levels, {"source": "sim", "interval_ms": "100"})
    return pa.table(columns, schema=schema)


def trades(symbol: str, start: datetime, count: int, source: str = "sim") -> pa.Table:
    return pa.table(
        {
            "ts": [start + timedelta(seconds=i) for i in range(count)],
            "symbol": [symbol] * count,
            "price": [10.0 + i for i in range(count)],
            "size": [100.0] * count,
            "side": ["B" if i % 2 else "S" for i in range(count)],
            "exchange": ["NASDAQ"] * count,
        },
        schema=schemas.trades_schema({"source": source}),
    )


def signals(symbol: str, start: datetime, count: int) -> pa.Table:
    return pa.table(
        {
            "ts": [start + timedelta(minutes=i) for i in range(count)],
            "symbol": [symbol] * count,
            "signal": ["ema_cross"] * count,
            "side": ["buy"] * count,
            "price": [10.0] * count,
            "reason": ["EMA 9 crossed above EMA 20"] * count,
        },
        schema=schemas.signals_schema(),
    )


def write(table: pa.Table, path: Path) -> Path:
    return write_table_atomic(table, path)


def write_foreign(table: pa.Table, path: Path) -> Path:
    """Write like another tool would: no ibdesk metadata at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata(None), path)
    return path
