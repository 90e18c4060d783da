"""Synthetic L2 snapshots and trades in the store's schemas, for tests and benchmarks.

Deterministic for a seed and vectorised (a 470k-row day takes well under a second). It owns
no file layout: callers write the tables where they want with the store's atomic writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import numpy as np
import pyarrow as pa

from ibdesk.store.schemas import l2_snapshot_schema, trades_schema

NS_PER_MS = 1_000_000
# 09:30 America/New_York in winter is 14:30 UTC: the regular session's open.
SESSION_OPEN_UTC = time(14, 30)


@dataclass(frozen=True, slots=True)
class SyntheticDay:
    """Shape of a generated day: `rows` snapshots every `interval_ms` from the open."""

    symbol: str = "TEST"
    day: date = date(2024, 1, 2)
    rows: int = 1_000
    levels: int = 10
    interval_ms: int = 50
    trades: int = 200
    seed: int = 0
    tick_usd: float = 0.01
    start_price_usd: float = 10.0
    one_sided_share: float = 0.0

    @property
    def start_ns(self) -> int:
        start = datetime.combine(self.day, SESSION_OPEN_UTC, tzinfo=UTC)
        return int(start.timestamp()) * 1_000_000_000


def snapshots_table(spec: SyntheticDay, source: str = "sim") -> pa.Table:
    """An L2 snapshot v1 table: a random-walk book `spec.levels` deep on the tick grid.

    `one_sided_share` of the rows lose their whole ask side (null prices and sizes), as a
    thin book does, so analysers must cope with rows that lack one side.
    """
    rng = np.random.default_rng(spec.seed)
    n = spec.rows
    steps = rng.choice(np.array([-1, 0, 0, 0, 1]), size=n)
    start_ticks = round(spec.start_price_usd / spec.tick_usd)
    bid0_ticks = start_ticks + np.cumsum(steps)
    spread_ticks = rng.integers(1, 4, size=n)
    ts = spec.start_ns + np.arange(n, dtype=np.int64) * spec.interval_ms * NS_PER_MS
    one_sided = rng.random(n) < spec.one_sided_share
    columns: dict[str, pa.Array] = {
        "ts": pa.array(ts, type=pa.timestamp("ns", tz="UTC")),
        "symbol": pa.array(np.full(n, spec.symbol, dtype=object), type=pa.string()),
    }
    bid_px: dict[str, np.ndarray] = {}
    bid_sz: dict[str, np.ndarray] = {}
    ask_px: dict[str, np.ndarray] = {}
    ask_sz: dict[str, np.ndarray] = {}
    for k in range(spec.levels):
        bid_px[f"bid_px_{k:02d}"] = (bid0_ticks - k) * spec.tick_usd
        bid_sz[f"bid_sz_{k:02d}"] = rng.integers(1, 20, size=n).astype(np.float64) * 100
        ask = (bid0_ticks + spread_ticks + k) * spec.tick_usd
        ask_px[f"ask_px_{k:02d}"] = np.where(one_sided, np.nan, ask)
        size = rng.integers(1, 20, size=n).astype(np.float64) * 100
        ask_sz[f"ask_sz_{k:02d}"] = np.where(one_sided, np.nan, size)
    for group in (bid_px, bid_sz, ask_px, ask_sz):
        for name, values in group.items():
            columns[name] = pa.array(values, type=pa.float64(), from_pandas=True)
    schema = l2_snapshot_schema(
        spec.levels, {"source": source, "interval_ms": str(spec.interval_ms)}
    )
    return pa.Table.from_pydict(columns, schema=schema)


def trades_table(spec: SyntheticDay, book: pa.Table, source: str = "sim") -> pa.Table:
    """A trades v1 table consistent with `book`: buys lift the ask, sells hit the bid.

    About a tenth of the trades carry side `N` (unknown), so Lee-Ready classification runs.
    """
    rng = np.random.default_rng(spec.seed + 1)
    ts_book = book.column("ts").cast(pa.int64()).to_numpy()
    n = spec.trades
    span_ns = max(int(ts_book[-1] - ts_book[0]), 1)
    ts = np.sort(ts_book[0] + 1 + rng.integers(0, span_ns, size=n))
    row = np.searchsorted(ts_book, ts, side="left") - 1
    row = np.clip(row, 0, len(ts_book) - 1)
    bid = book.column("bid_px_00").to_numpy(zero_copy_only=False)[row]
    ask = book.column("ask_px_00").to_numpy(zero_copy_only=False)[row]
    buy = rng.random(n) < 0.5
    price = np.where(buy, ask, bid)
    price = np.where(np.isnan(price), bid, price)
    side = np.where(buy, "B", "S").astype(object)
    side[rng.random(n) < 0.1] = "N"
    size = rng.integers(1, 10, size=n).astype(np.float64) * 100
    columns = {
        "ts": pa.array(ts, type=pa.timestamp("ns", tz="UTC")),
        "symbol": pa.array(np.full(n, spec.symbol, dtype=object), type=pa.string()),
        "price": pa.array(price, type=pa.float64()),
        "size": pa.array(size, type=pa.float64()),
        "side": pa.array(side, type=pa.string()),
        "exchange": pa.array(np.full(n, "NASDAQ", dtype=object), type=pa.string()),
    }
    return pa.Table.from_pydict(columns, schema=trades_schema({"source": source}))
