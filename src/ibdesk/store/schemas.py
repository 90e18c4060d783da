"""Arrow schemas of ibdesk's data contracts (ARCHITECTURE.md), each with version metadata.

These are the contract between the recorder, the backfill, the analyzer and ML code:
change a schema only by bumping its version, and keep readers accepting the old one.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

SCHEMA_KEY = b"ibdesk.schema"
TS_TYPE = pa.timestamp("ns", tz="UTC")

L2_SNAPSHOTS = "l2_snapshots/1"
TRADES = "trades/1"
BARS = "bars/1"
DEPTH_MESSAGES = "depth_messages/1"
SIGNALS = "signals/1"

MAX_LEVELS = 20


def level_columns(levels: int) -> list[str]:
    """Column names of an N-level snapshot in schema order: all bid_px, bid_sz, ask_px, ask_sz."""
    if not 1 <= levels <= MAX_LEVELS:
        raise ValueError(f"levels must be 1..{MAX_LEVELS}, got {levels}")
    names: list[str] = []
    for prefix in ("bid_px", "bid_sz", "ask_px", "ask_sz"):
        names.extend(f"{prefix}_{k:02d}" for k in range(levels))
    return names


def _with_version(
    schema: pa.Schema, version: str, extra: Mapping[str, str] | None = None
) -> pa.Schema:
    metadata: dict[bytes, bytes] = {SCHEMA_KEY: version.encode()}
    for key, value in (extra or {}).items():
        metadata[key.encode()] = str(value).encode()
    return schema.with_metadata(metadata)


def l2_snapshot_schema(levels: int, metadata: Mapping[str, str] | None = None) -> pa.Schema:
    """L2 snapshot schema v1; `metadata` adds `source`, `levels`, `interval_ms`, ... keys."""
    fields = [pa.field("ts", TS_TYPE, nullable=False), pa.field("symbol", pa.string())]
    fields.extend(pa.field(name, pa.float64()) for name in level_columns(levels))
    meta = {"levels": str(levels), **(metadata or {})}
    return _with_version(pa.schema(fields), L2_SNAPSHOTS, meta)


def trades_schema(metadata: Mapping[str, str] | None = None) -> pa.Schema:
    """Trades schema v1: side is B (buyer-initiated), S (seller-initiated) or N (unknown)."""
    fields = [
        pa.field("ts", TS_TYPE, nullable=False),
        pa.field("symbol", pa.string()),
        pa.field("price", pa.float64()),
        pa.field("size", pa.float64()),
        pa.field("side", pa.string()),
        pa.field("exchange", pa.string()),
    ]
    return _with_version(pa.schema(fields), TRADES, metadata)


def bars_schema(metadata: Mapping[str, str] | None = None) -> pa.Schema:
    """Bars schema v1: `ts` is the bar start; a file holds one bar size only."""
    fields = [
        pa.field("ts", TS_TYPE, nullable=False),
        pa.field("symbol", pa.string()),
        pa.field("open", pa.float64()),
        pa.field("high", pa.float64()),
        pa.field("low", pa.float64()),
        pa.field("close", pa.float64()),
        pa.field("volume", pa.float64()),
        pa.field("wap", pa.float64()),
        pa.field("bar_count", pa.int64()),
    ]
    return _with_version(pa.schema(fields), BARS, metadata)


def depth_messages_schema(metadata: Mapping[str, str] | None = None) -> pa.Schema:
    """Depth messages schema v1: every IB depth operation with its receive time."""
    fields = [
        pa.field("ts", TS_TYPE, nullable=False),
        pa.field("symbol", pa.string()),
        pa.field("position", pa.int16()),
        pa.field("operation", pa.int8()),
        pa.field("side", pa.int8()),
        pa.field("price", pa.float64()),
        pa.field("size", pa.float64()),
        pa.field("market_maker", pa.string()),
        pa.field("is_smart", pa.bool_()),
    ]
    return _with_version(pa.schema(fields), DEPTH_MESSAGES, metadata)


def signals_schema(metadata: Mapping[str, str] | None = None) -> pa.Schema:
    """Signals schema v1: side is `buy` or `sell`; `reason` says why in words."""
    fields = [
        pa.field("ts", TS_TYPE, nullable=False),
        pa.field("symbol", pa.string()),
        pa.field("signal", pa.string()),
        pa.field("side", pa.string()),
        pa.field("price", pa.float64()),
        pa.field("reason", pa.string()),
    ]
    return _with_version(pa.schema(fields), SIGNALS, metadata)


def schema_version(schema: pa.Schema) -> str | None:
    """The `ibdesk.schema` value of a file's schema, or None for files made elsewhere."""
    meta = schema.metadata or {}
    raw = meta.get(SCHEMA_KEY)
    return raw.decode() if raw is not None else None


def file_metadata(schema: pa.Schema) -> dict[str, str]:
    """Key-value metadata of a schema as str -> str."""
    return {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
