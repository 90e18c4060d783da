"""Helpers to build small bar tables from New York local times."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import pyarrow as pa

from ibdesk.store.schemas import bars_schema

NY = ZoneInfo("America/New_York")


def ny(stamp: str) -> datetime:
    """'2024-03-04 09:30' in New York as an aware datetime."""
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M").replace(tzinfo=NY)


Row = tuple[str, float, float, float, float, float]


def make_bars(rows: Sequence[Row], symbol: str = "AAPL") -> pa.Table:
    """Rows of (New York time, open, high, low, close, volume) as a bars-schema table."""
    return pa.table(
        {
            "ts": pa.array([ny(r[0]) for r in rows], type=pa.timestamp("ns", tz="UTC")),
            "symbol": [symbol] * len(rows),
            "open": [float(r[1]) for r in rows],
            "high": [float(r[2]) for r in rows],
            "low": [float(r[3]) for r in rows],
            "close": [float(r[4]) for r in rows],
            "volume": [float(r[5]) for r in rows],
            "wap": [float(r[4]) for r in rows],
            "bar_count": pa.array([1] * len(rows), type=pa.int64()),
        },
        schema=bars_schema(),
    )


def flat(
    stamp: str, price: float, volume: float = 100.0
) -> tuple[str, float, float, float, float, float]:
    """A bar whose open, high, low and close are all `price`."""
    return (stamp, price, price, price, price, volume)
