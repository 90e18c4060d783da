"""Hand-computed cases for every book metric of `ibdesk.depth.analysis` and its entry points."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from ibdesk.depth import analysis, synthetic
from ibdesk.depth.analysis import analyze
from ibdesk.depth.results import AnalysisParams
from ibdesk.depth.stats import fit_ols
from tests.depth.helpers import NS, book

BASE_BID = (10.00, 100.0)
BASE_ASK = (10.02, 200.0)


def _ofi_of_move(bid: tuple[float, float], ask: tuple[float, float]) -> float:
    day = book([(0.0, [BASE_BID], [BASE_ASK]), (0.1, [bid], [ask])])
    return analyze([day], None, 1).ofi_total


@pytest.mark.parametrize(
    ("bid", "ask", "expected"),
    [
        pytest.param((10.01, 50.0), BASE_ASK, 50.0, id="bid-price-up-adds-new-bid-size"),
        pytest.param((10.00, 130.0), BASE_ASK, 30.0, id="bid-same-price-adds-size-change"),
        pytest.param((9.99, 70.0), BASE_ASK, -100.0, id="bid-price-down-removes-old-bid-size"),
        pytest.param(BASE_BID, (10.01, 40.0), -40.0, id="ask-price-down-subtracts-new-ask-size"),
        pytest.param(BASE_BID, (10.02, 260.0), -60.0, id="ask-same-price-subtracts-size-change"),
        pytest.param(BASE_BID, (10.03, 90.0), 200.0, id="ask-price-up-adds-old-ask-size"),
        pytest.param((10.01, 50.0), (10.03, 90.0), 250.0, id="both-sides-move-up"),
        pytest.param(BASE_BID, BASE_ASK, 0.0, id="no-change-is-zero"),
    ],
)
def test_ofi_of_each_price_and_size_move(
    bid: tuple[float, float], ask: tuple[float, float], expected: float
) -> None:
    assert _ofi_of_move(bid, ask) == expected


def test_ofi_skips_pairs_where_a_row_lacks_a_side() -> None:
    day = book(
        [
            (0.0, [BASE_BID], [BASE_ASK]),
            (0.1, [(10.01, 50.0)], []),  # no ask: pairs (0,1) and (1,2) are skipped
            (0.2, [(10.01, 80.0)], [BASE_ASK]),
            (0.3, [(10.01, 90.0)], [BASE_ASK]),  # +10
        ]
    )
    result = analyze([day], None, 1)
    assert result.ofi_total == 10.0
    assert result.rows == 4


def test_ofi_is_the_same_however_the_day_is_chunked() -> None:
    day = book(
        [
            (0.0, [BASE_BID], [BASE_ASK]),
            (0.1, [(10.01, 50.0)], [BASE_ASK]),
            (0.2, [(10.01, 80.0)], [(10.01, 40.0)]),
            (0.3, [(10.01, 90.0)], [(10.02, 30.0)]),
        ]
    )
    whole = analyze([day], None, 1)
    pieces = analyze([day.slice(0, 1), day.slice(1, 2), day.slice(3, 1)], None, 1)
    assert pieces.ofi_total == whole.ofi_total == 50.0 + (30.0 - 40.0) + (10.0 + 40.0)


# ----------------------------------------------------------------------------- windows

# One second windows; e_n per row in the comment, mid after the row.
WINDOWED = book(
    [
        (0.0, [(10.00, 100.0)], [(10.02, 100.0)]),  # window 0, mid 10.01
        (0.5, [(10.00, 150.0)], [(10.02, 100.0)]),  # +50
        (1.2, [(10.01, 80.0)], [(10.02, 100.0)]),  # +80, window 1, mid 10.015
        (2.1, [(10.01, 80.0)], [(10.01, 60.0)]),  # -60, window 2, mid 10.01
        (3.3, [(10.00, 40.0)], [(10.01, 60.0)]),  # -80, window 3
        (3.6, [(10.00, 40.0)], [(10.01, 100.0)]),  # -40, mid 10.005
    ]
)


def test_window_series_pairs_ofi_with_the_mid_change_of_the_same_window() -> None:
    result = analyze([WINDOWED], None, 1)
    windows = result.book.windows
    assert windows.ofi[:, 0].tolist() == [80.0, -60.0, -120.0]
    assert windows.mid_change == pytest.approx([0.005, -0.005, -0.005], abs=1e-12)
    assert result.ofi_total == -50.0
    expected = np.polyfit([80.0, -60.0, -120.0], [0.005, -0.005, -0.005], 1)
    fit = result.book.ofi_levels[0].fit
    assert fit.betas[0] == pytest.approx(expected[0], rel=1e-9)
    assert fit.intercept == pytest.approx(expected[1], rel=1e-9)
    assert fit.n == 3


def test_multilevel_ofi_per_level_and_joint_fit() -> None:
    rows = []
    for i in range(6):
        depth_bid = 100.0 + 10.0 * i * (i % 2)
        depth_ask = 100.0 + 5.0 * i
        rows.append(
            (
                float(i),
                [(10.00, 100.0 + 20.0 * i), (9.99, depth_bid)],
                [(10.02 + 0.01 * (i % 3), 100.0), (10.05, depth_ask)],
            )
        )
    result = analyze([book(rows)], None, 2)
    levels = result.book.ofi_levels
    assert [lvl.level for lvl in levels] == [1, 2]
    # level 2: bid sizes 100,110,100,130,100,150 at a constant price -> e = size change;
    # ask sizes 100,105,...,125 at a constant price -> -(change) = -5 each
    level2 = result.book.windows.ofi[:, 1]
    assert level2.tolist() == [10.0 - 5, -10.0 - 5, 30.0 - 5, -30.0 - 5, 50.0 - 5]
    assert levels[1].total == pytest.approx(sum(level2))
    joint = fit_ols(result.book.windows.ofi, result.book.windows.mid_change)
    assert result.book.ofi_multilevel_fit.r2 == joint.r2
    assert len(result.book.ofi_multilevel_fit.betas) == 2


def test_ofi_multilevel_uses_at_most_five_levels() -> None:
    rows = [
        (
            float(i),
            [(10.0 - 0.01 * k, 100.0 + i) for k in range(7)],
            [(10.02 + 0.01 * k, 100.0) for k in range(7)],
        )
        for i in range(5)
    ]
    result = analyze([book(rows)], None, 7)
    assert len(result.book.ofi_levels) == 5
    assert result.levels == 7


# ----------------------------------------------------------------------------- spread, depth


def test_spread_statistics_on_rows_with_both_sides() -> None:
    day = book(
        [
            (0.0, [(10.00, 1.0)], [(10.02, 1.0)]),
            (1.0, [(10.00, 1.0)], [(10.04, 1.0)]),
            (3.0, [(10.00, 1.0)], []),
            (4.0, [(10.00, 1.0)], [(10.01, 1.0)]),
        ]
    )
    spread = analyze([day], None, 1).book.spread
    assert spread.rows == 3
    assert spread.mean == pytest.approx(0.07 / 3)
    assert spread.median == pytest.approx(0.02)
    assert spread.p95 == pytest.approx(0.02 + 0.9 * 0.02)  # linear between 0.02 and 0.04
    bps = [0.02 / 10.01 * 1e4, 0.04 / 10.02 * 1e4, 0.01 / 10.005 * 1e4]
    assert spread.mean_bps == pytest.approx(sum(bps) / 3)
    assert spread.median_bps == pytest.approx(sorted(bps)[1])
    # weights: time to the next row (1 s, 2 s) and the median gap (1 s) for the last row
    assert spread.time_weighted_mean == pytest.approx((0.02 * 1 + 0.04 * 2 + 0.01 * 1) / 4)


def test_depth_sizes_and_imbalance_over_1_5_and_all_levels() -> None:
    day = book(
        [
            (
                0.0,
                [(10.0 - k / 100, s) for k, s in enumerate([100, 200, 300, 400, 500, 600])],
                [(10.02 + k / 100, 50.0) for k in range(6)],
            ),
            (
                1.0,
                [(10.0 - k / 100, 100.0) for k in range(6)],
                [(10.02 + k / 100, 300.0) for k in range(6)],
            ),
        ]
    )
    depth = analyze([day], None, 6).book.depth
    assert depth.bid_size_1 == pytest.approx(100.0)
    assert depth.ask_size_1 == pytest.approx(175.0)
    assert depth.bid_size_5 == pytest.approx(1000.0)
    assert depth.ask_size_5 == pytest.approx(875.0)
    assert depth.bid_size_all == pytest.approx(1350.0)
    assert depth.ask_size_all == pytest.approx(1050.0)
    assert depth.imbalance_1 == pytest.approx((1 / 3 - 1 / 2) / 2)
    assert depth.imbalance_5 == pytest.approx((5 / 7 - 1 / 2) / 2)
    assert depth.imbalance_all == pytest.approx((0.75 - 0.5) / 2)


def test_depth_of_a_shallow_book_uses_the_levels_it_has() -> None:
    day = book([(0.0, [(10.0, 100.0), (9.99, 50.0)], [(10.01, 25.0), (10.02, 25.0)])])
    depth = analyze([day], None, 2).book.depth
    assert depth.bid_size_5 == depth.bid_size_all == 150.0
    assert depth.imbalance_5 == pytest.approx(100.0 / 200.0)


# ----------------------------------------------------------------------------- microprice


def test_microprice_distance_and_correlation_with_the_next_mid_change() -> None:
    heavy_bid = ([(10.00, 300.0)], [(10.02, 100.0)])  # microprice 10.015, mid 10.01
    heavy_ask = ([(10.01, 100.0)], [(10.03, 300.0)])  # microprice 10.015, mid 10.02
    day = book([(float(i), *(heavy_bid if i % 2 == 0 else heavy_ask)) for i in range(4)])
    micro = analyze([day], None, 1).book.microprice
    assert micro.mean_distance == pytest.approx(0.0, abs=1e-12)
    assert micro.corr_next_mid_change == pytest.approx(1.0)
    assert micro.n_windows == 3


def test_microprice_weights_the_mid_toward_the_thin_side() -> None:
    value = analysis.microprice(
        np.array([10.00]), np.array([300.0]), np.array([10.02]), np.array([100.0])
    )
    assert value[0] == pytest.approx(0.75 * 10.02 + 0.25 * 10.00)
    day = book(
        [(0.0, [(10.00, 300.0)], [(10.02, 100.0)]), (1.0, [(10.00, 100.0)], [(10.02, 100.0)])]
    )
    assert analyze([day], None, 1).book.microprice.mean_distance == pytest.approx(0.005 / 2)


# ----------------------------------------------------------------------------- dynamics


def test_per_minute_dynamics() -> None:
    day = book(
        [
            (0.0, [(10.00, 100.0)], [(10.02, 100.0)]),
            (30.0, [(10.00, 200.0)], [(10.04, 100.0)]),  # OFI +100 bid, +100 ask
            (61.0, [(10.00, 200.0)], [(10.01, 50.0)]),  # OFI -50, next minute
        ]
    )
    dyn = analyze([day], None, 1).book.dynamics
    assert (dyn.minute_ns[1] - dyn.minute_ns[0]) == 60 * NS
    assert dyn.rows.tolist() == [2, 1]
    assert dyn.spread_mean == pytest.approx([0.03, 0.01])
    assert dyn.bid_depth.tolist() == [150.0, 200.0]
    assert dyn.ask_depth.tolist() == [100.0, 50.0]
    assert dyn.ofi.tolist() == [200.0, -50.0]
    assert dyn.mid == pytest.approx([10.02, 10.005])
    assert dyn.bid_size_by_level[:, 0].tolist() == [150.0, 200.0]


def test_window_parameter_changes_the_regression_windows() -> None:
    coarse = analyze([WINDOWED], None, 1, AnalysisParams(window_ns=2 * NS))
    assert coarse.book.windows.ofi[:, 0].tolist() == [-60.0 - 120.0]
    assert coarse.window_ns == 2 * NS


def test_empty_trades_give_null_impact() -> None:
    result = analyze([WINDOWED], None, 1)
    assert result.trades == 0
    assert result.price_impact.effective_spread_bps is None
    assert result.price_impact.kyle_lambda is None
    assert all(v is None for v in result.price_impact.realized_spread_bps.values())
    assert not math.isnan(result.ofi_total)


def test_nan_sizes_count_as_empty_like_nulls() -> None:
    with_null = book([(0.0, [(10.0, 100.0), (9.99, None)], [(10.01, 50.0), (10.02, 70.0)])])  # type: ignore[list-item]
    with_nan = with_null.with_columns(bid_sz_01=pl.Series([float("nan")]))
    expected = analyze([with_null], None, 2).book.depth
    assert analyze([with_nan], None, 2).book.depth == expected
    assert expected.bid_size_all == 100.0


def test_missing_levels_of_chunks_sliced_from_one_frame_are_filled() -> None:
    spec = synthetic.SyntheticDay(symbol="AAPL", rows=400, levels=3, one_sided_share=0.2)
    frame = pl.from_arrow(synthetic.snapshots_table(spec, "sim"))
    assert isinstance(frame, pl.DataFrame)
    assert frame.get_column("ask_sz_01").null_count() > 0
    filled = analysis.normalize_chunk(frame, 3)
    slices = [frame.slice(start, 64) for start in range(0, frame.height, 64)]
    result = analyze(slices, None, 3).book
    expected = analyze([filled], None, 3).book
    assert result.depth.ask_size_all == pytest.approx(expected.depth.ask_size_all)
    assert result.depth.imbalance_all == pytest.approx(expected.depth.imbalance_all)
    totals = [lvl.total for lvl in result.ofi_levels]
    assert totals == pytest.approx([lvl.total for lvl in expected.ofi_levels])
    assert np.array_equal(result.mid, expected.mid, equal_nan=True)


# ----------------------------------------------------------------------------- input columns


def test_analysis_reads_sizes_of_every_level_and_prices_of_the_ofi_levels_only() -> None:
    assert analysis.snapshot_columns(7) == [
        "ts",
        *(f"bid_sz_{k:02d}" for k in range(7)),
        *(f"ask_sz_{k:02d}" for k in range(7)),
        *(f"bid_px_{k:02d}" for k in range(5)),
        *(f"ask_px_{k:02d}" for k in range(5)),
    ]
    rows = [
        (
            t / 10,
            [(10.0 - k / 100 + t / 100, 100.0 + 10 * t + k) for k in range(7)],
            [(10.02 + k / 100 + t / 100, 90.0 + 5 * t * k) for k in range(7)],
        )
        for t in range(12)
    ]
    full = book(rows)
    without_deep_prices = full.drop("bid_px_05", "bid_px_06", "ask_px_05", "ask_px_06")
    params = AnalysisParams(window_ns=NS // 5)
    a = analyze([full], None, 7, params)
    b = analyze([without_deep_prices], None, 7, params)
    assert a.book.depth == b.book.depth
    assert [x.total for x in a.book.ofi_levels] == [x.total for x in b.book.ofi_levels]
    assert a.book.dynamics.bid_size_by_level.tolist() == b.book.dynamics.bid_size_by_level.tolist()


def test_normalize_chunk_gives_int_ns_time_zero_sizes_and_nan_prices() -> None:
    frame = pl.DataFrame(
        {
            "ts": [1_000, 2_000],  # microseconds
            "bid_px_00": [10.0, None],
            "bid_sz_00": [100, None],
            "ask_px_00": [10.02, 10.03],
            "ask_sz_00": [200, 300],
            "symbol": ["X", "X"],
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )
    out = analysis.normalize_chunk(frame, 1)
    assert out.columns == ["ts", "bid_sz_00", "ask_sz_00", "bid_px_00", "ask_px_00"]
    assert out.schema["ts"] == pl.Int64
    assert out.get_column("ts").to_list() == [1_000_000, 2_000_000]
    assert out.get_column("bid_sz_00").to_list() == [100.0, 0.0]
    assert out.get_column("ask_sz_00").dtype == pl.Float64
    bid_px = out.get_column("bid_px_00").to_list()
    assert bid_px[0] == 10.0
    assert math.isnan(bid_px[1])
    assert out.null_count().row(0) == (0, 0, 0, 0, 0)
    again = analysis.normalize_chunk(out, 1)
    assert again.equals(out)


def test_a_nan_size_counts_as_zero_shares() -> None:
    rows = [
        (0.0, [(10.00, 100.0), (9.99, 50.0)], [(10.02, 200.0), (10.03, 40.0)]),
        (0.5, [(10.01, 70.0), (10.00, 0.0)], [(10.02, 150.0), (10.03, 60.0)]),
        (1.0, [(10.01, 90.0), (10.00, 30.0)], [(10.03, 80.0), (10.04, 0.0)]),
    ]
    zeros = book(rows)
    nans = zeros.with_columns(
        *(
            pl.when(pl.col(c) == 0.0).then(np.nan).otherwise(pl.col(c)).alias(c)
            for c in ("bid_sz_01", "ask_sz_01")
        )
    )
    a, b = analyze([zeros], None, 2), analyze([nans], None, 2)
    assert b.book.depth == a.book.depth
    assert math.isnan(nans.get_column("bid_sz_01")[1])
    # bid up (+70), ask same price (−150 + 200); bid same (+90 − 70), ask up (+150)
    assert b.ofi_total == a.ofi_total == 120.0 + 170.0
    assert b.book.dynamics.bid_size_by_level.tolist() == a.book.dynamics.bid_size_by_level.tolist()


def test_chunks_summarized_concurrently_fold_like_chunks_added_one_by_one() -> None:
    rows = [
        (
            t * 0.3,
            [(10.00 + (t % 3) / 100, 100.0 + 7 * t), (9.99, 50.0 + t)],
            [(10.02 + (t % 2) / 100, 80.0 + 3 * t), (10.04, 40.0)] if t % 5 else [],
        )
        for t in range(60)
    ]
    day = book(rows)
    chunks = [day.slice(i, 7) for i in range(0, day.height, 7)]
    params = AnalysisParams(window_ns=NS)
    one_by_one = analysis.BookAccumulator(2, params)
    for chunk in chunks:
        one_by_one.add(chunk)
    concurrent = analysis.BookAccumulator(2, params)
    concurrent.add_all(chunks, workers=3)
    a, b = one_by_one.finish(), concurrent.finish()
    assert b.rows == a.rows == 60
    assert [x.total for x in b.ofi_levels] == [x.total for x in a.ofi_levels]
    assert b.windows.ofi.tolist() == a.windows.ofi.tolist()
    assert b.dynamics.ofi.tolist() == a.dynamics.ofi.tolist()
    assert b.depth == a.depth
    assert b.spread == a.spread
    # the first row of every chunk but the first pairs with the previous chunk's last row
    whole = analyze([day], None, 2, params).book
    assert [x.total for x in b.ofi_levels] == pytest.approx([x.total for x in whole.ofi_levels])
    assert whole.ofi_levels[0].total != 0.0
