"""Where each kind of data lives under the data root (README: Data layout). Paths only, no I/O."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from pathlib import Path


class Source(StrEnum):
    """Where L2 data came from; recorded in file metadata as `source`."""

    IBKR = "ibkr"
    DATABENTO = "databento"
    SIM = "sim"


def bar_size_folder(bar_size: str) -> str:
    """IB bar size with spaces as underscores: "1 min" -> "1_min"."""
    return "_".join(bar_size.split())


def bars_path(root: Path, symbol: str, bar_size: str, day: date) -> Path:
    return root / "bars" / symbol / bar_size_folder(bar_size) / f"{day.isoformat()}.parquet"


def level2_dir(level2_root: Path, symbol: str) -> Path:
    return level2_root / symbol


def capture_path(
    level2_root: Path, symbol: str, day: date, kind: str, session_start: datetime
) -> Path:
    """Live capture file: kind is `snapshots`, `messages` or `trades`."""
    return (
        level2_dir(level2_root, symbol) / f"{day.isoformat()}_{kind}_{session_start:%H%M%S}.parquet"
    )


def session_stats_path(level2_root: Path, symbol: str, session_start: datetime) -> Path:
    return level2_dir(level2_root, symbol) / f"session_stats_{session_start:%Y%m%d_%H%M%S}.json"


def databento_snapshots_path(level2_root: Path, symbol: str, day: date) -> Path:
    return level2_dir(level2_root, symbol) / f"{day.isoformat()}_snapshots_databento.parquet"


def databento_trades_path(level2_root: Path, symbol: str, day: date) -> Path:
    return level2_dir(level2_root, symbol) / f"{day.isoformat()}_trades_databento.parquet"


def signals_path(root: Path, symbol: str, day: date) -> Path:
    return root / "signals" / symbol / f"{day.isoformat()}.parquet"


def run_summary_path(root: Path, started: datetime) -> Path:
    return root / "runs" / f"{started:%Y%m%d_%H%M%S}.json"


def backfill_manifest_path(root: Path) -> Path:
    return root / "backfill_l2_manifest.jsonl"


def backfill_summary_path(root: Path) -> Path:
    return root / "backfill_l2_summary.json"
