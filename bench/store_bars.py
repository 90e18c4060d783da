"""Store benchmark: merging bars into day files, and SQL over the stored bars.

Candidate vs baseline, side by side in one run (machines are noisy, ratios are not):
  merge  `store_bars` (Arrow merge, atomic fsynced writes) vs the old tool's way
         (pandas: read day file, concat, drop_duplicates, sort, to_parquet in place).
  query  `run_query` (DuckDB views over the files) vs pandas reading every file and
         grouping.
Each repetition re-stores every day with half of its bars new, so the merge path is
exercised on every file. Reproduce: `.venv/bin/python bench/store_bars.py [--symbols 10
--days 20 --repeat 3]`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ibdesk.store import schemas
from ibdesk.store.bars import store_bars
from ibdesk.store.query import run_query

BARS_PER_DAY = 390


def make_bars(symbols: int, days: int, offset_min: int, seed: int) -> pa.Table:
    """`symbols` x `days` sessions of 1-min bars, starting `offset_min` after the open."""
    rng = np.random.default_rng(seed)
    start = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    minute_ns = 60 * 1_000_000_000
    per_day = np.arange(BARS_PER_DAY, dtype=np.int64) * minute_ns + offset_min * minute_ns
    day_starts = [int((start + timedelta(days=d)).timestamp() * 1e9) for d in range(days)]
    ts_one = np.concatenate([d + per_day for d in day_starts])
    n = len(ts_one)
    columns: dict[str, list[pa.Array]] = {name: [] for name in schemas.bars_schema().names}
    for s in range(symbols):
        close = 100 + np.cumsum(rng.normal(0, 0.05, n))
        columns["ts"].append(pa.array(ts_one, pa.int64()).cast(schemas.TS_TYPE))
        columns["symbol"].append(pa.array([f"S{s:03d}"] * n))
        columns["open"].append(pa.array(close - 0.01))
        columns["high"].append(pa.array(close + 0.05))
        columns["low"].append(pa.array(close - 0.05))
        columns["close"].append(pa.array(close))
        columns["volume"].append(pa.array(rng.integers(100, 10_000, n).astype(float)))
        columns["wap"].append(pa.array(close))
        columns["bar_count"].append(pa.array(rng.integers(1, 100, n)))
    arrays = [pa.concat_arrays(columns[name]) for name in schemas.bars_schema().names]
    return pa.Table.from_arrays(arrays, schema=schemas.bars_schema())


def pandas_store(root: Path, table: pa.Table) -> None:
    """The old tool's approach: per symbol and day, read + concat + dedupe + rewrite."""
    frame = table.to_pandas()
    frame["day"] = frame["ts"].dt.tz_convert("America/New_York").dt.date
    for (symbol, day), rows in frame.groupby(["symbol", "day"]):
        path = root / "bars" / str(symbol) / "1_min" / f"{day}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = rows.drop(columns=["day"])
        if path.exists():
            rows = pd.concat([pd.read_parquet(path), rows])
        rows = rows.drop_duplicates(subset="ts", keep="last").sort_values("ts")
        rows.to_parquet(path, index=False)


def pandas_query(root: Path) -> pd.DataFrame:
    frames = []
    for path in sorted(root.glob("bars/*/*/*.parquet")):
        frame = pd.read_parquet(path, columns=["ts", "symbol", "close", "volume"])
        frame["symbol"] = path.parent.parent.name
        frames.append(frame)
    data = pd.concat(frames)
    return data.groupby("symbol").agg(n=("close", "size"), vwap_close=("close", "mean"))


SQL = "SELECT symbol, count(*) AS n, avg(close) AS vwap_close FROM bars GROUP BY symbol"


def timed(func: Callable[[], object]) -> float:
    began = time.perf_counter()
    func()
    return time.perf_counter() - began


def row(name: str, candidate: list[float], baseline: list[float], unit_rows: int) -> str:
    c_med, b_med = statistics.median(candidate), statistics.median(baseline)
    per_m = c_med / unit_rows * 1_000_000
    return (
        f"{name:<6} {c_med:8.3f} {min(candidate):8.3f} {max(candidate):8.3f}   "
        f"{b_med:8.3f} {min(baseline):8.3f} {max(baseline):8.3f}   {b_med / c_med:6.2f}x"
        f"   {per_m:8.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Store benchmark: bars merge and SQL query.")
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    first = make_bars(args.symbols, args.days, 0, seed=1)
    update = make_bars(args.symbols, args.days, BARS_PER_DAY // 2, seed=2)  # half overlaps
    files = args.symbols * args.days
    merge_c: list[float] = []
    merge_b: list[float] = []
    query_c: list[float] = []
    query_b: list[float] = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as cand, tempfile.TemporaryDirectory() as base:
            cand_root, base_root = Path(cand), Path(base)
            store_bars(cand_root, "1 min", first)
            pandas_store(base_root, first)
            merge_c.append(timed(lambda r=cand_root: store_bars(r, "1 min", update)))
            merge_b.append(timed(lambda r=base_root: pandas_store(r, update)))
            query_c.append(timed(lambda r=cand_root: run_query(r, SQL)))
            query_b.append(timed(lambda r=base_root: pandas_query(r)))
            stored = run_query(cand_root, "SELECT count(*) AS n FROM bars").column("n")[0].as_py()
            assert stored == first.num_rows + update.num_rows // 2, stored
    print(
        f"store_bars benchmark: {args.symbols} symbols x {args.days} days x {BARS_PER_DAY} "
        f"1-min bars; merge of {update.num_rows} bars into {files} day files "
        f"(half new); {args.repeat} repetitions"
    )
    print(f"{'':<6} {'candidate (s)':^26}   {'baseline (s)':^26}   {'ratio':>7}   {'s per 1M':>8}")
    print(
        f"{'':<6} {'median':>8} {'min':>8} {'max':>8}   {'median':>8} {'min':>8} {'max':>8}"
        f"   {'base/cand':>7}   {'bars':>8}"
    )
    print(row("merge", merge_c, merge_b, update.num_rows))
    print(row("query", query_c, query_b, first.num_rows + update.num_rows // 2))
    print("merge: store_bars vs pandas read/concat/drop_duplicates/to_parquet per day file")
    print("query: DuckDB GROUP BY over the bars view vs pandas read-all + groupby")


if __name__ == "__main__":
    main()
