"""The L2 recorder against `ibdesk sim` over a socket (real ib_async client)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from ibdesk.config import load_settings
from ibdesk.depth.book import snapshots_from_messages
from ibdesk.depth.recorder import RecordConfig, Recorder, RecordSummary
from ibdesk.ib.session import open_session
from ibdesk.store.parquet import read_logical
from ibdesk.store.schemas import level_columns


def _record(sim: Any, tmp: Path, **fields: Any) -> RecordSummary:
    config = RecordConfig(output=tmp / "level2", port=sim.port, **fields)
    return asyncio.run(Recorder(load_settings(), config).run())


def _files(tmp: Path, symbol: str, kind: str) -> list[Path]:
    return sorted((tmp / "level2" / symbol).glob(f"*_{kind}_*.parquet"))


def _snapshot_matrix(table: Any, levels: int) -> np.ndarray:
    cols = [
        table.column(c).to_numpy(zero_copy_only=False).astype(float) for c in level_columns(levels)
    ]
    return np.column_stack(cols)


def test_short_recording_is_on_grid_two_sided_and_uncrossed(sim: Any, tmp_path: Path) -> None:
    summary = _record(sim, tmp_path, symbols=("AAPL",), levels=10, interval_ms=100, duration_s=3.0)
    [snap_file] = _files(tmp_path, "AAPL", "snapshots")
    table = pq.read_table(snap_file)
    meta = table.schema.metadata or {}
    assert meta[b"source"] == b"sim"
    assert meta[b"levels"] == b"10"
    assert meta[b"interval_ms"] == b"100"
    assert abs(table.num_rows - 30) <= 1
    ts = table.column("ts").cast("int64").to_numpy()
    assert set(np.diff(ts).tolist()) == {100_000_000}
    bid = table.column("bid_px_00").to_numpy(zero_copy_only=False).astype(float)
    ask = table.column("ask_px_00").to_numpy(zero_copy_only=False).astype(float)
    both = ~np.isnan(bid) & ~np.isnan(ask)
    assert both.mean() >= 0.9
    assert (bid[both] < ask[both]).all()
    [messages] = _files(tmp_path, "AAPL", "messages")
    assert pq.read_table(messages).num_rows > 0
    stats = json.loads(summary.stats_files[0].read_text(encoding="utf-8"))
    assert stats["snapshots_written"] == table.num_rows
    assert stats["crossed_book_rows"] == 0
    assert stats["gaps"] == []


def test_messages_file_alone_rebuilds_every_snapshot(sim: Any, tmp_path: Path) -> None:
    _record(sim, tmp_path, symbols=("MSFT",), levels=20, interval_ms=50, duration_s=2.0)
    [snap_file] = _files(tmp_path, "MSFT", "snapshots")
    [msg_file] = _files(tmp_path, "MSFT", "messages")
    snaps = pq.read_table(snap_file)
    msgs = pq.read_table(msg_file)
    assert snaps.num_rows >= 39
    rebuilt = snapshots_from_messages(
        msgs.column("ts").cast("int64").to_numpy(),
        msgs.column("position").to_numpy(),
        msgs.column("operation").to_numpy(),
        msgs.column("side").to_numpy(),
        msgs.column("price").to_numpy(),
        msgs.column("size").to_numpy(),
        snaps.column("ts").cast("int64").to_numpy().tolist(),
        levels=20,
    )
    np.testing.assert_array_equal(rebuilt, _snapshot_matrix(snaps, 20))


@pytest.mark.parametrize("sim", [{"events_per_s": 2000.0}], indirect=True)
def test_recorded_book_matches_simulator_truth(sim: Any, tmp_path: Path) -> None:
    """Thousands of operations (inserts and deletes mid-book), then the book is compared."""

    async def scenario() -> RecordSummary:
        config = RecordConfig(
            output=tmp_path / "level2",
            port=sim.port,
            symbols=("NVDA",),
            levels=10,
            interval_ms=100,
            duration_s=3.0,
        )
        loop = asyncio.get_running_loop()
        loop.call_later(2.0, sim.pause)
        return await Recorder(load_settings(), config).run()

    try:
        summary = asyncio.run(scenario())
        truth = sim.book("NVDA", 10)
    finally:
        sim.resume()
    assert summary.per_symbol["NVDA"]["updates_received"] >= 2000
    assert summary.per_symbol["NVDA"]["position_anomalies"] == 0
    [snap_file] = _files(tmp_path, "NVDA", "snapshots")
    last = _snapshot_matrix(pq.read_table(snap_file), 10)[-1]
    bids = [p for p, _ in truth.bids]
    asks = [p for p, _ in truth.asks]
    np.testing.assert_allclose(last[: len(bids)], bids)
    np.testing.assert_allclose(last[20 : 20 + len(asks)], asks)
    np.testing.assert_allclose(last[10 : 10 + len(bids)], [s for _, s in truth.bids])


def test_restart_mid_recording_records_gap_and_resumes(sim: Any, tmp_path: Path) -> None:
    async def scenario() -> RecordSummary:
        config = RecordConfig(
            output=tmp_path / "level2",
            port=sim.port,
            symbols=("AAPL",),
            levels=10,
            interval_ms=100,
            duration_s=5.0,
        )
        asyncio.get_running_loop().call_later(1.5, lambda: sim.restart(1.0))
        return await Recorder(load_settings(), config).run()

    summary = asyncio.run(scenario())
    stats = summary.per_symbol["AAPL"]
    assert summary.reconnects == 1
    [gap] = stats["gaps"]
    assert gap["reason"] == "disconnected"
    assert gap["end"] is not None
    table = read_logical(_files(tmp_path, "AAPL", "snapshots")[0])
    ts = table.column("ts").cast("int64").to_numpy()
    start_ns = _iso_to_ns(gap["start"])
    end_ns = _iso_to_ns(gap["end"])
    assert end_ns - start_ns >= 900_000_000
    assert not ((ts > start_ns) & (ts < end_ns)).any()
    assert (ts > end_ns).sum() >= 10


def _iso_to_ns(text: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(text).timestamp() * 1e9)


@pytest.mark.parametrize("sim", [{"depth_cap": 1}], indirect=True)
def test_depth_cap_names_symbols_without_depth_and_records_the_rest(
    sim: Any, tmp_path: Path
) -> None:
    summary = _record(
        sim, tmp_path, symbols=("AAPL", "MSFT"), levels=5, interval_ms=100, duration_s=1.5
    )
    unavailable = {s: v["depth_unavailable"] for s, v in summary.per_symbol.items()}
    assert unavailable["AAPL"] is None
    assert unavailable["MSFT"] is not None
    assert "309" in unavailable["MSFT"]
    assert pq.read_table(_files(tmp_path, "AAPL", "snapshots")[0]).num_rows > 10
    assert _files(tmp_path, "MSFT", "snapshots") == []


def test_kill_9_leaves_readable_files_and_next_run_compacts(sim: Any, tmp_path: Path) -> None:
    out = tmp_path / "level2"
    command = [
        sys.executable,
        "-m",
        "ibdesk",
        "record-depth",
        "-s",
        "AAPL",
        "--port",
        str(sim.port),
        "-o",
        str(out),
        "-i",
        "50",
        "--flush-seconds",
        "0.5",
    ]
    env = {**os.environ, "LOGS_PATH": str(tmp_path / "logs")}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = out / "AAPL"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(list(folder.glob("*snapshots*.part-*.parquet"))) < 3:
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    parts = sorted(folder.glob("*.parquet"))
    assert len([p for p in parts if ".part-" in p.name and "snapshots" in p.name]) >= 3
    total = 0
    for path in parts:
        table = pq.read_table(path)
        if "snapshots" in path.name:
            total += table.num_rows
    assert total >= 20  # >= 3 flushes of 0.5 s at 50 ms
    assert not list(folder.glob("*.tmp"))

    _record(sim, tmp_path, symbols=("AAPL",), levels=10, interval_ms=100, duration_s=0.5)
    assert not list(folder.glob("*.part-*.parquet"))
    snapshot_files = _files(tmp_path, "AAPL", "snapshots")
    assert len(snapshot_files) == 2
    assert sum(pq.read_table(p).num_rows for p in snapshot_files) >= total


def test_recorder_on_a_session_connection_leaves_it_open(sim: Any, tmp_path: Path) -> None:
    config = RecordConfig(symbols=("AAPL",), output=tmp_path / "level2", duration_s=0.5)

    async def main() -> tuple[RecordSummary, bool]:
        async with open_session(load_settings(), sim=False, live=False, port=sim.port) as s:
            summary = await Recorder(s.settings, config, conn=s.conn).run(s.stop)
            return summary, s.conn.is_connected

    summary, still_connected = asyncio.run(main())
    assert still_connected  # the session, not the recorder, owns the connection
    assert summary.source == "sim"
    assert summary.per_symbol["AAPL"]["snapshots_written"] > 0
    assert _files(tmp_path, "AAPL", "snapshots")
