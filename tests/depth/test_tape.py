"""Hand-computed cases and properties of `ibdesk.depth.tape`: volume profile, trade
direction and price impact."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ibdesk.depth import tape
from ibdesk.depth.analysis import analyze
from tests.depth.helpers import book, trades

TICK = 0.01


# ----------------------------------------------------------------------------- volume profile


def test_volume_profile_bins_to_the_nearest_tick_and_grows_the_value_area() -> None:
    prices = [9.98, 9.99, 10.0, 10.0149, 10.0051, 10.02, 10.03, 10.04]
    sizes = [50, 100, 150, 200, 200, 120, 130, 50]
    profile = tape.volume_profile(np.array(prices), np.array(sizes, dtype=float), 0.01)
    assert profile.prices.tolist() == [9.98, 9.99, 10.0, 10.01, 10.02, 10.03, 10.04]
    assert profile.volumes.tolist() == [50, 100, 150, 400, 120, 130, 50]
    assert profile.total_volume == 1000
    assert profile.vpoc == 10.01
    # step 1: above 120+130 = 250 ties below 150+100 = 250 -> below (650);
    # step 2: above 250 beats the one row left below (50) -> 900 >= 700
    assert (profile.val, profile.vah) == (9.99, 10.03)
    assert profile.value_area_volume == 900


def test_vpoc_ties_go_to_the_lower_price() -> None:
    profile = tape.volume_profile(
        np.array([10.05, 10.00, 10.02]), np.array([300.0, 300.0, 100.0]), 0.01
    )
    assert profile.vpoc == 10.00


def test_value_area_of_a_single_price_is_that_price() -> None:
    profile = tape.volume_profile(np.array([5.0, 5.0]), np.array([10.0, 20.0]), 0.01)
    assert (profile.vpoc, profile.val, profile.vah, profile.total_volume) == (5.0, 5.0, 5.0, 30.0)


def test_volume_profile_without_trades_is_empty() -> None:
    profile = tape.volume_profile(np.zeros(0), np.zeros(0), 0.01)
    assert profile.vpoc is None
    assert profile.total_volume == 0.0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(900, 1100), st.integers(1, 10_000)), min_size=1, max_size=80))
def test_value_area_holds_70_percent_around_the_vpoc(trades: list[tuple[int, int]]) -> None:
    price = np.array([t for t, _ in trades], dtype=float) * TICK
    size = np.array([s for _, s in trades], dtype=float)
    profile = tape.volume_profile(price, size, TICK)
    assert profile.val is not None
    assert profile.vah is not None
    assert profile.vpoc is not None
    assert profile.val <= profile.vpoc <= profile.vah
    assert profile.value_area_volume >= 0.7 * profile.total_volume - 1e-9
    assert profile.total_volume == pytest.approx(size.sum())
    top = profile.volumes.max()
    assert profile.vpoc == profile.prices[profile.volumes == top].min()


# ----------------------------------------------------------------------------- price impact


def test_trade_direction_uses_side_then_quote_then_tick_rule() -> None:
    price = np.array([10.00, 10.01, 10.01, 10.00, 10.05, 9.95, 10.00])
    side = np.array(["B", "N", "N", "N", "N", "N", "S"], dtype=object)
    mid = np.array([np.nan, 10.01, 10.01, 10.00, 10.00, 10.00, 10.00])
    direction = tape.trade_direction(price, side, mid)
    assert direction.tolist() == [1, 1, 1, -1, 1, -1, -1]


def test_effective_and_realized_spreads_at_5_and_60_seconds() -> None:
    day = book(
        [
            (0.0, [(9.99, 1.0)], [(10.01, 1.0)]),  # mid 10.00
            (10.0, [(10.01, 1.0)], [(10.03, 1.0)]),  # mid 10.02
            (70.0, [(10.03, 1.0)], [(10.05, 1.0)]),  # mid 10.04
            (80.0, [(10.03, 1.0)], [(10.05, 1.0)]),
        ]
    )
    tape = trades([(1.0, 10.01, 100.0, "B"), (12.0, 10.01, 300.0, "S"), (75.0, 10.05, 100.0, "B")])
    impact = analyze([day], tape, 1).price_impact
    eff = [2 * 0.01 / 10.00 * 1e4, 2 * 0.01 / 10.02 * 1e4, 2 * 0.01 / 10.04 * 1e4]
    assert impact.effective_spread_bps == pytest.approx(
        (eff[0] * 100 + eff[1] * 300 + eff[2] * 100) / 500
    )
    # 5 s later the mids have not moved: realized equals effective for all three trades
    assert impact.realized_spread_bps[5] == pytest.approx(impact.effective_spread_bps)
    assert impact.impact_bps[5] == pytest.approx(0.0, abs=1e-9)
    # 60 s later: trade 1 sees 10.02, trade 2 sees 10.04, trade 3 is past the end of the day
    real60 = [2 * (10.01 - 10.02) / 10.00 * 1e4, -2 * (10.01 - 10.04) / 10.02 * 1e4]
    assert impact.realized_spread_bps[60] == pytest.approx(
        (real60[0] * 100 + real60[1] * 300) / 400
    )
    imp60 = [eff[0] - real60[0], eff[1] - real60[1]]
    assert impact.impact_bps[60] == pytest.approx((imp60[0] * 100 + imp60[1] * 300) / 400)
    assert impact.trades_signed == 3


def test_kyle_lambda_is_the_slope_of_mid_change_on_signed_volume() -> None:
    mids = [10.00, 10.01, 10.03, 10.02, 10.02]
    day = book([(w + 0.5, [(m - 0.01, 1.0)], [(m + 0.01, 1.0)]) for w, m in enumerate(mids)])
    tape = trades(
        [
            (1.2, 10.02, 100.0, "B"),
            (2.1, 10.04, 300.0, "B"),
            (2.2, 10.02, 100.0, "S"),
            (3.2, 10.02, 100.0, "S"),
        ]
    )
    result = analyze([day], tape, 1)
    assert result.book.windows.signed_volume.tolist() == [100.0, 200.0, -100.0, 0.0]
    assert result.price_impact.kyle_lambda == pytest.approx(0.0001)
    assert result.price_impact.kyle_r2 == pytest.approx(1.0)
    assert result.price_impact.n_windows == 4


def test_lee_ready_classifies_unknown_sides_against_the_prior_mid() -> None:
    day = book([(0.0, [(9.99, 1.0)], [(10.01, 1.0)]), (10.0, [(9.99, 1.0)], [(10.01, 1.0)])])
    tape = trades([(1.0, 10.01, 100.0, "N"), (2.0, 9.99, 100.0, "N")])
    impact = analyze([day], tape, 1).price_impact
    assert impact.trades_lee_ready == 2
    # a buy at the ask and a sell at the bid both pay half the 2-cent spread
    assert impact.effective_spread_bps == pytest.approx(2 * 0.01 / 10.00 * 1e4)
