"""MBP-10 -> snapshot/trade tables on hand-built records (and a naive reference)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from ibdesk.backfill.convert import (
    F_LAST,
    UNDEF_PRICE,
    mbp10_to_snapshots,
    mbp10_to_trades,
    snapshot_grid_ns,
    snapshot_metadata,
)
from ibdesk.store.schemas import file_metadata, schema_version
from tests.backfill.dbserver import empty_records

MS = 1_000_000
W0 = 1_709_906_400_000_000_000  # 2024-03-08 14:00 UTC
META = snapshot_metadata("XNAS.ITCH", "mbp-10", 100, 10)


def px(usd: float) -> int:
    return round(usd * 1e9)


def build(rows: list[dict[str, object]]) -> np.ndarray:
    records = empty_records(len(rows))
    for i, fields in enumerate(rows):
        for name, value in fields.items():
            if name == "t_ms":
                records[i]["ts_recv"] = W0 + int(value) * MS  # type: ignore[call-overload]
            else:
                records[i][name] = value
    return records


def hand_case() -> np.ndarray:
    book_a = {"bid_px_00": px(10.00), "bid_sz_00": 100, "ask_px_00": px(10.02), "ask_sz_00": 200}
    return build(
        [
            {"t_ms": -50, "flags": F_LAST, **book_a},
            {
                "t_ms": -10,
                "flags": F_LAST,
                "action": b"T",
                "side": b"B",
                "price": px(10.02),
                "size": 7,
                **book_a,
            },
            {"t_ms": 50, "flags": 0, "bid_px_00": px(9.00), "bid_sz_00": 1},  # not consistent yet
            {
                "t_ms": 100,
                "flags": F_LAST,
                "bid_px_00": px(10.01),
                "bid_sz_00": 300,
            },  # == T, not before
            {
                "t_ms": 150,
                "flags": F_LAST,
                "action": b"T",
                "side": b"A",
                "price": px(10.01),
                "size": 50,
                "bid_px_00": px(10.01),
                "bid_sz_00": 300,
                "ask_px_00": px(10.02),
                "ask_sz_00": 200,
                "bid_px_01": px(10.00),
                "bid_sz_01": 400,
            },
            {
                "t_ms": 250,
                "flags": F_LAST,
                "ask_px_00": px(10.03),
                "ask_sz_00": 10,
            },  # bid side empty
            {"t_ms": 320, "flags": 0, "bid_px_00": px(1.0)},
            {
                "t_ms": 600,
                "flags": F_LAST,
                "action": b"T",
                "side": b"B",
                "price": px(10.03),
                "size": 1,
            },
        ]
    )


def test_grid_ends_on_the_window_end_even_when_not_a_multiple() -> None:
    grid = snapshot_grid_ns(W0, W0 + 450 * MS, 100)
    assert ((grid - W0) // MS).tolist() == [100, 200, 300, 400, 450]


def test_each_row_is_the_last_final_book_strictly_before_its_time() -> None:
    table = mbp10_to_snapshots(hand_case(), "AAPL", W0, W0 + 500 * MS, 100, META)
    assert ((table.column("ts").cast(pa.int64()).to_numpy() - W0) // MS).tolist() == [
        100,
        200,
        300,
        400,
        500,
    ]
    assert table.column("bid_px_00").to_pylist() == [10.00, 10.01, None, None, None]
    assert table.column("bid_sz_00").to_pylist() == [100.0, 300.0, 0.0, 0.0, 0.0]
    assert table.column("bid_px_01").to_pylist() == [None, 10.00, None, None, None]
    assert table.column("ask_px_00").to_pylist() == [10.02, 10.02, 10.03, 10.03, 10.03]
    assert table.column("ask_px_09").null_count == 5
    assert table.column("symbol").to_pylist() == ["AAPL"] * 5


def test_rows_before_the_first_consistent_record_are_omitted() -> None:
    records = build([{"t_ms": 250, "flags": F_LAST, "bid_px_00": px(5.0), "bid_sz_00": 1}])
    table = mbp10_to_snapshots(records, "X", W0, W0 + 500 * MS, 100, META)
    assert ((table.column("ts").cast(pa.int64()).to_numpy() - W0) // MS).tolist() == [300, 400, 500]


def test_snapshot_file_metadata_and_schema() -> None:
    table = mbp10_to_snapshots(hand_case(), "AAPL", W0, W0 + 500 * MS, 100, META)
    meta = file_metadata(table.schema)
    assert schema_version(table.schema) == "l2_snapshots/1"
    assert {k: meta[k] for k in ("source", "dataset", "schema", "levels", "interval_ms")} == {
        "source": "databento",
        "dataset": "XNAS.ITCH",
        "schema": "mbp-10",
        "levels": "10",
        "interval_ms": "100",
    }
    assert table.schema.field("ts").type == pa.timestamp("ns", tz="UTC")


def test_trades_inside_the_window_with_aggressor_side() -> None:
    table = mbp10_to_trades(hand_case(), "AAPL", W0, W0 + 500 * MS, "XNAS")
    assert table.to_pydict()["price"] == [10.01]
    assert table.to_pydict()["side"] == ["S"]
    assert table.to_pydict()["size"] == [50.0]
    assert schema_version(table.schema) == "trades/1"


def test_no_records_give_empty_tables() -> None:
    nothing = empty_records(0).reshape(0, 1)
    assert mbp10_to_snapshots(nothing, "X", W0, W0 + 500 * MS, 100, META).num_rows == 0
    assert mbp10_to_trades(nothing, "X", W0, W0 + 500 * MS, None).num_rows == 0


def reference_snapshots(
    records: np.ndarray, start: int, end: int, interval_ms: int
) -> list[tuple[int, float | None]]:
    """Naive per-record reference: (T, best bid) rows."""
    out: list[tuple[int, float | None]] = []
    for t in snapshot_grid_ns(start, end, interval_ms).tolist():
        book = None
        for rec in records:
            if rec["flags"] & F_LAST and int(rec["ts_recv"]) < t:
                book = rec
        if book is not None:
            raw = int(book["bid_px_00"])
            out.append((t, None if raw == UNDEF_PRICE else raw / 1e9))
    return out


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(-200, 700), st.booleans(), st.one_of(st.none(), st.integers(1, 2000))
        ),
        max_size=40,
    ),
    st.sampled_from([50, 100, 137]),
)
def test_vectorised_conversion_matches_the_naive_reference(
    events: list[tuple[int, bool, int | None]], interval_ms: int
) -> None:
    events = sorted(events, key=lambda e: e[0])
    records = build(
        [
            {
                "t_ms": t,
                "flags": F_LAST if final else 0,
                "bid_px_00": UNDEF_PRICE if bid is None else bid * 10_000_000,
            }
            for t, final, bid in events
        ]
    )
    table = mbp10_to_snapshots(records, "X", W0, W0 + 500 * MS, interval_ms, META)
    got = list(
        zip(
            table.column("ts").cast(pa.int64()).to_pylist(),
            table.column("bid_px_00").to_pylist(),
            strict=True,
        )
    )
    assert got == reference_snapshots(records, W0, W0 + 500 * MS, interval_ms)
