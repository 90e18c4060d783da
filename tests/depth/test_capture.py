"""SymbolCapture without sockets: batches, time order, trade sides, part files, compaction."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest

from ibdesk.depth import capture as capture_module
from ibdesk.depth.book import RESET_MARKER, snapshots_from_messages
from ibdesk.depth.capture import SymbolCapture, infer_side
from ibdesk.ib.rowfeed import DepthUpdate, TradeTick
from ibdesk.store.parquet import part_files

START = datetime(2025, 7, 30, 9, 45, tzinfo=ZoneInfo("America/New_York"))
BID, ASK = 1, 0
INSERT, UPDATE, DELETE = 0, 1, 2


def _capture(root: Path, levels: int = 3) -> SymbolCapture:
    return SymbolCapture(
        "AAPL",
        level2_root=root,
        session_start=START,
        levels=levels,
        interval_ms=100,
        source="sim",
        is_smart=False,
    )


def _op(
    ts: int, position: int, op: int, side: int, price: float, size: float, mm: str = ""
) -> DepthUpdate:
    return DepthUpdate("depth:AAPL:SMART", "AAPL", ts, position, op, side, price, size, mm, False)


def _trade(ts: int, price: float, size: float = 100.0) -> TradeTick:
    return TradeTick("tbt:AllLast:AAPL:SMART", "AAPL", ts, price, size, "NASDAQ")


def test_a_snapshot_holds_the_book_as_of_its_time_even_within_one_batch(tmp_path: Path) -> None:
    cap = _capture(tmp_path)
    # one batch spanning two receive times (e.g. handed out across a connection event)
    cap.on_depth_batch([_op(10, 0, INSERT, BID, 99.0, 5), _op(10, 0, INSERT, ASK, 101.0, 7)])
    cap.on_depth_batch([_op(20, 0, UPDATE, BID, 99.5, 6), _op(30, 0, DELETE, ASK, 101.0, 0)])
    assert cap.snapshot(10)
    assert cap.snapshot(25)
    assert cap.snapshot(30)
    table = pq.read_table(cap.finalize()[0])
    assert table.column("bid_px_00").to_pylist() == [99.0, 99.5, 99.5]
    assert table.column("ask_px_00").to_pylist() == [101.0, 101.0, None]
    assert cap.stats.updates == 4


def test_a_late_sample_never_fills_a_closed_gap_or_predates_a_reset(tmp_path: Path) -> None:
    """The sample loop can fall behind (a slow flush) and ask for grid times after a gap
    already opened and closed: those times had no book and must stay empty."""
    cap = _capture(tmp_path)
    cap.on_depth_batch([_op(10, 0, INSERT, BID, 99.0, 5), _op(10, 0, INSERT, ASK, 101.0, 7)])
    cap.start_gap(20, "disconnected")
    cap.on_depth_batch([_op(40, 0, INSERT, BID, 98.0, 1), _op(40, 0, INSERT, ASK, 102.0, 1)])
    cap.end_gap(40)
    assert not cap.snapshot(30)  # inside the closed gap
    assert cap.snapshot(40)
    cap.reset_book(60)  # e.g. resubscribed: the book restarts at 60
    assert not cap.snapshot(50)  # the book as of 50 is gone
    assert cap.snapshot(60)
    table = pq.read_table(cap.finalize()[0])
    assert table.column("ts").cast("int64").to_pylist() == [40, 60]
    assert table.column("bid_px_00").to_pylist() == [98.0, None]


def test_trades_are_classified_against_the_book_at_their_own_time(tmp_path: Path) -> None:
    cap = _capture(tmp_path)
    cap.on_depth_batch([_op(10, 0, INSERT, BID, 99.0, 5), _op(10, 0, INSERT, ASK, 101.0, 7)])
    cap.on_trades([_trade(10, 101.0), _trade(15, 99.0)])  # same read as the book: book first
    cap.on_depth_batch([_op(20, 0, UPDATE, ASK, 100.5, 7)])
    cap.on_trades([_trade(20, 100.5), _trade(21, 100.0)])
    cap.snapshot(100)
    paths = {p.name.split("_")[1]: p for p in cap.finalize()}
    trades = pq.read_table(paths["trades"])
    assert trades.column("side").to_pylist() == ["B", "S", "B", "N"]
    assert trades.column("exchange").to_pylist() == ["NASDAQ"] * 4
    assert cap.stats.trades == 4


def test_infer_side_quote_rule() -> None:
    assert infer_side(10.0, 9.9, 10.0) == "B"
    assert infer_side(9.9, 9.9, 10.0) == "S"
    assert infer_side(9.95, 9.9, 10.0) == "N"
    assert infer_side(9.95, None, None) == "N"


def test_messages_file_is_lossless_across_chunks_parts_and_a_reset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(capture_module, "MESSAGE_CHUNK_ROWS", 7)  # many Arrow chunks per part
    cap = _capture(tmp_path, levels=3)
    grid: list[int] = []
    price = 100.0
    for t in range(1, 40):
        batch = [
            _op(t * 10, 0, INSERT, BID, price - 0.01 * t, t, "NSDQ" if t % 2 else ""),
            _op(t * 10, 0, INSERT, ASK, price + 0.01 * t, t),
        ]
        if t > 3:
            batch += [_op(t * 10, 3, DELETE, BID, 0, 0), _op(t * 10, 3, DELETE, ASK, 0, 0)]
        cap.on_depth_batch(batch)
        cap.snapshot(t * 10 + 5)
        grid.append(t * 10 + 5)
        if t % 9 == 0:
            cap.flush()
        if t == 20:
            cap.reset_book(t * 10 + 6)  # a reset is written as marked deletes
    final = {p.name.split("_")[1]: p for p in cap.finalize()}
    assert not part_files(final["messages"])  # compacted on a clean stop
    messages = pq.read_table(final["messages"])
    assert messages.num_rows == cap.stats.updates + 6  # 3 bids + 3 asks emptied by the reset
    markers = messages.column("market_maker").to_pylist()
    assert markers.count(RESET_MARKER) == 6
    assert None in markers
    assert "NSDQ" in markers
    ts = messages.column("ts").cast("int64").to_numpy()
    rebuilt = snapshots_from_messages(
        ts,
        messages.column("position").to_pylist(),
        messages.column("operation").to_pylist(),
        messages.column("side").to_pylist(),
        messages.column("price").to_pylist(),
        messages.column("size").to_pylist(),
        grid,
        3,
    )
    snapshots = pq.read_table(final["snapshots"])
    assert snapshots.num_rows == len(grid)
    for row, name in enumerate(snapshots.column_names[2:]):
        recorded = [math.nan if v is None else v for v in snapshots.column(name).to_pylist()]
        replayed = rebuilt[:, row].tolist()
        assert [round(v, 9) for v in recorded] == pytest.approx(replayed, nan_ok=True), name


def test_take_parts_numbers_parts_and_leaves_nothing_behind(tmp_path: Path) -> None:
    cap = _capture(tmp_path)
    assert cap.take_parts() == []
    cap.on_depth_batch([_op(1, 0, INSERT, BID, 10.0, 1)])
    cap.snapshot(5)
    first = cap.take_parts()
    assert sorted(p.name for _, p in first) == [
        "2025-07-30_messages_094500.part-0000.parquet",
        "2025-07-30_snapshots_094500.part-0000.parquet",
    ]
    assert cap.take_parts() == []
    cap.on_trades([_trade(6, 10.0)])
    cap.snapshot(10)
    second = cap.take_parts()
    assert {p.name.split(".")[1] for _, p in second} == {"part-0001"}
    assert {p.name.split("_")[1] for _, p in second} == {"snapshots", "trades"}
