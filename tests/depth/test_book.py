"""The IB-semantics depth book: hand cases, a diff-driven property test, message replay."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ibdesk.depth.book import (
    RESET_MARKER,
    DepthBook,
    SideBook,
    reset_messages,
    snapshots_from_messages,
)
from ibdesk.domain.book import BookSide, DepthOp


def _prices(side: SideBook) -> list[float]:
    return [level.price for level in side.rows]


def test_insert_in_middle_shifts_rows_down() -> None:
    side = SideBook(max_rows=5)
    side.apply(DepthOp.INSERT, 0, 10.00, 100)
    side.apply(DepthOp.INSERT, 1, 9.98, 200)
    side.apply(DepthOp.INSERT, 1, 9.99, 300)
    assert _prices(side) == [10.00, 9.99, 9.98]
    assert [lv.size for lv in side.rows] == [100, 300, 200]


def test_delete_in_middle_shifts_rows_up() -> None:
    side = SideBook(max_rows=5)
    for pos, px in enumerate([10.00, 9.99, 9.98]):
        side.apply(DepthOp.INSERT, pos, px, 100)
    side.apply(DepthOp.DELETE, 1, 9.99, 0)
    assert _prices(side) == [10.00, 9.98]


def test_update_replaces_row_in_place() -> None:
    side = SideBook(max_rows=5)
    side.apply(DepthOp.INSERT, 0, 10.00, 100)
    side.apply(DepthOp.UPDATE, 0, 10.00, 450)
    assert [(lv.price, lv.size) for lv in side.rows] == [(10.00, 450)]


def test_insert_at_full_depth_drops_last_row() -> None:
    side = SideBook(max_rows=2)
    side.apply(DepthOp.INSERT, 0, 10.00, 1)
    side.apply(DepthOp.INSERT, 1, 9.99, 1)
    side.apply(DepthOp.INSERT, 0, 10.01, 1)
    assert _prices(side) == [10.01, 10.00]


def test_impossible_positions_are_counted_not_hidden() -> None:
    side = SideBook(max_rows=5)
    side.apply(DepthOp.DELETE, 0, 10.0, 0)
    side.apply(DepthOp.INSERT, 3, 10.0, 1)
    side.apply(DepthOp.UPDATE, 4, 9.0, 1)
    assert side.anomalies == 3
    assert _prices(side) == [10.0]


def test_crossed_book_is_reported_as_is() -> None:
    book = DepthBook(levels=3)
    book.apply(DepthOp.INSERT, BookSide.BID, 0, 10.02, 100)
    book.apply(DepthOp.INSERT, BookSide.ASK, 0, 10.01, 100)
    assert book.is_crossed_or_locked()
    assert book.best_bid == 10.02


def test_snapshot_row_has_schema_order_and_nan_for_empty_levels() -> None:
    book = DepthBook(levels=2)
    book.apply(DepthOp.INSERT, BookSide.BID, 0, 10.00, 5)
    book.apply(DepthOp.INSERT, BookSide.ASK, 0, 10.01, 7)
    book.apply(DepthOp.INSERT, BookSide.ASK, 1, 10.02, 9)
    row = book.snapshot_row()
    assert row[0] == 10.00
    assert math.isnan(row[1])
    assert row[2] == 5
    assert math.isnan(row[3])
    assert row[4:6] == [10.01, 10.02]  # ask_px
    assert row[6:8] == [7, 9]  # ask_sz


def _ib_ops(
    old: list[tuple[float, float]], new: list[tuple[float, float]]
) -> list[tuple[DepthOp, int, float, float]]:
    """Operations, in IB's style, that turn the rows `old` into `new` (both best first).

    Independent of `SideBook`: deletes of vanished prices (from the bottom, so earlier
    positions stay valid), then inserts and updates walking `new` top-down.
    """
    ops: list[tuple[DepthOp, int, float, float]] = []
    rows = list(old)
    new_prices = {p for p, _ in new}
    for pos in range(len(rows) - 1, -1, -1):
        if rows[pos][0] not in new_prices:
            ops.append((DepthOp.DELETE, pos, rows[pos][0], 0.0))
            del rows[pos]
    for pos, (price, size) in enumerate(new):
        if pos < len(rows) and rows[pos][0] == price:
            if rows[pos][1] != size:
                ops.append((DepthOp.UPDATE, pos, price, size))
                rows[pos] = (price, size)
        else:
            ops.append((DepthOp.INSERT, pos, price, size))
            rows.insert(pos, (price, size))
    return ops


_book_states = st.lists(
    st.dictionaries(
        st.integers(min_value=9000, max_value=9040),
        st.integers(min_value=1, max_value=50),
        max_size=10,
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(_book_states)
def test_side_book_follows_any_sequence_of_ib_operations(states: list[dict[int, int]]) -> None:
    side = SideBook(max_rows=10)
    rows: list[tuple[float, float]] = []
    for state in states:
        target = sorted(((p / 100, float(s)) for p, s in state.items()), reverse=True)
        for op, pos, price, size in _ib_ops(rows, target):
            side.apply(op, pos, price, size)
        rows = target
        assert [(lv.price, lv.size) for lv in side.rows] == target
    assert side.anomalies == 0


def test_replay_rebuilds_snapshots_and_honours_reset_deletes() -> None:
    book = DepthBook(levels=2)
    msgs: list[tuple[int, int, int, int, float, float]] = [
        (10, 0, 0, 1, 10.00, 5),
        (20, 0, 0, 0, 10.01, 7),
        (30, 0, 1, 1, 10.00, 6),
    ]
    for _, pos, op, side, px, sz in msgs:
        book.apply(op, side, pos, px, sz)
    resets = reset_messages(book, 40)
    assert {m.market_maker for m in resets} == {RESET_MARKER}
    all_msgs = msgs + [
        (m.ts_ns, m.position, int(m.operation), int(m.side), m.price, m.size) for m in resets
    ]
    arr = np.array([m[0] for m in all_msgs], dtype=np.int64)
    out = snapshots_from_messages(
        arr,
        [m[1] for m in all_msgs],
        [m[2] for m in all_msgs],
        [m[3] for m in all_msgs],
        [m[4] for m in all_msgs],
        [m[5] for m in all_msgs],
        grid_ns=[15, 25, 35, 45],
        levels=2,
    )
    assert out[0][0] == 10.00
    assert out[0][2] == 5
    assert math.isnan(out[0][4])
    assert out[1][4] == 10.01
    assert out[2][2] == 6
    assert np.isnan(out[3]).all()
