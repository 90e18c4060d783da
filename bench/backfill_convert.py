"""Benchmark: MBP-10 -> L2 snapshots (decode + snapshot + Parquet write) vs the SDK alone.

Side by side on the same 1M-record zstd DBN file:
  ibdesk   DBNStore.from_file + to_ndarray + mbp10_to_snapshots/trades + 2 atomic Parquet writes
  to_df    DBNStore.from_file + to_df()          (the baseline the original tool used)
  ndarray  DBNStore.from_file + to_ndarray()     (the decode floor)
Targets: ibdesk >= 3x faster than to_df, and >= 0.7 of ndarray's speed.

Run: .venv/bin/python bench/backfill_convert.py [--records 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import databento as db
import databento_dbn as dbn
import zstandard
from tests.backfill.dbserver import synthetic_book, to_ns

from ibdesk.backfill.convert import mbp10_to_snapshots, mbp10_to_trades, snapshot_metadata
from ibdesk.store.parquet import write_table_atomic

WINDOW_START = to_ns("2024-03-08T14:00:00Z")  # 09:00 ET
WINDOW_END = to_ns("2024-03-08T16:00:00Z")  # 11:00 ET
LEAD_NS = 300 * 10**9


def make_file(folder: Path, count: int) -> Path:
    start = WINDOW_START - LEAD_NS
    records = synthetic_book(start, count, (WINDOW_END - start) // count)
    records["instrument_id"] = 1000
    metadata = dbn.Metadata(
        dataset="XNAS.ITCH",
        start=start,
        end=WINDOW_END,
        stype_in=dbn.SType.RAW_SYMBOL,  # type: ignore[arg-type]
        stype_out=dbn.SType.INSTRUMENT_ID,  # type: ignore[arg-type]
        schema=dbn.Schema.MBP_10,  # type: ignore[arg-type]
        symbols=["AAPL"],
    )
    path = folder / "aapl.mbp-10.dbn.zst"
    path.write_bytes(
        zstandard.ZstdCompressor(level=3).compress(bytes(metadata) + records.tobytes())
    )
    return path


def ibdesk_pipeline(path: Path, out: Path) -> None:
    records = db.DBNStore.from_file(path).to_ndarray()
    meta = snapshot_metadata("XNAS.ITCH", "mbp-10", 100, 10)
    snaps = mbp10_to_snapshots(records, "AAPL", WINDOW_START, WINDOW_END, 100, meta)
    trades = mbp10_to_trades(records, "AAPL", WINDOW_START, WINDOW_END, "XNAS")
    write_table_atomic(trades, out / "2024-03-08_trades_databento.parquet")
    write_table_atomic(snaps, out / "2024-03-08_snapshots_databento.parquet")


def to_df_alone(path: Path, _out: Path) -> None:
    db.DBNStore.from_file(path).to_df()


def to_ndarray_alone(path: Path, _out: Path) -> None:
    db.DBNStore.from_file(path).to_ndarray()


def timed_round_robin(
    candidates: dict[str, Callable[[Path, Path], None]], path: Path, out: Path, repeat: int
) -> dict[str, list[float]]:
    """Each repetition runs every candidate once, so machine drift hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for fn in candidates.values():
        fn(path, out)  # warm-up
    for _ in range(repeat):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn(path, out)
            times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = make_file(folder, args.records)
        print(
            f"file: {args.records:,} MBP-10 records, "
            f"{path.stat().st_size / 1e6:.1f} MB zstd; repeat={args.repeat}"
        )
        candidates = {
            "ibdesk (decode+snapshot+parquet)": ibdesk_pipeline,
            "to_df() alone": to_df_alone,
            "to_ndarray() alone": to_ndarray_alone,
        }
        rows = timed_round_robin(candidates, path, folder, args.repeat)
    ours = statistics.median(rows["ibdesk (decode+snapshot+parquet)"])
    print(
        f"{'candidate':34s} {'median s':>9s} {'min s':>8s} {'max s':>8s} "
        f"{'Mrec/s':>7s} {'speed vs ibdesk':>16s}"
    )
    for name, times in rows.items():
        med = statistics.median(times)
        print(
            f"{name:34s} {med:9.3f} {min(times):8.3f} {max(times):8.3f} "
            f"{args.records / med / 1e6:7.2f} {ours / med:16.2f}"
        )
    vs_df = statistics.median(rows["to_df() alone"]) / ours
    vs_nd = statistics.median(rows["to_ndarray() alone"]) / ours
    print(f"ibdesk is {vs_df:.2f}x faster than to_df() alone (target >= 3)")
    print(f"ibdesk runs at {vs_nd:.2f} of to_ndarray() alone's speed (target >= 0.7)")


if __name__ == "__main__":
    main()
