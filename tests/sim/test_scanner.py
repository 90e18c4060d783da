"""Scanner subscriptions: rankings and price filters."""

from __future__ import annotations

import pytest
from ib_async import IB, ScannerSubscription

from ibdesk.sim.scanner import ScanRequest, ScanRow, rank
from ibdesk.sim.universe import UNIVERSE, lookup

PRE_MARKET = [{"clock": "2025-07-30T08:30:00-04:00"}]


def _row(symbol: str, last: float, prev: float, volume: int, expected: float) -> ScanRow:
    ticker = lookup(symbol)
    assert ticker is not None
    return ScanRow(ticker, last, prev, volume, expected)


def test_rank_orders_by_gain_volume_and_rvol_with_price_filters() -> None:
    rows = [
        _row("PLUG", 2.0, 1.6, 900, 100.0),
        _row("AAPL", 212.0, 211.0, 5000, 5000.0),
        _row("SOFI", 21.0, 22.0, 100, 10.0),
    ]
    assert [t.symbol for t in rank(rows, ScanRequest("TOP_PERC_GAIN"))] == ["PLUG", "AAPL"]
    assert [t.symbol for t in rank(rows, ScanRequest("MOST_ACTIVE"))] == ["AAPL", "PLUG", "SOFI"]
    assert next(t.symbol for t in rank(rows, ScanRequest("HOT_BY_VOLUME"))) == "SOFI"
    cheap = ScanRequest("MOST_ACTIVE", above_price=1.0, below_price=30.0)
    assert [t.symbol for t in rank(rows, cheap)] == ["PLUG", "SOFI"]


def test_universe_is_big_enough_and_has_the_required_names() -> None:
    symbols = {t.symbol for t in UNIVERSE}
    assert len(UNIVERSE) >= 50
    assert {"AAPL", "MSFT", "NVDA", "TSLA", "SPY", "QQQ"} <= symbols
    assert len({t.con_id for t in UNIVERSE}) == len(UNIVERSE)


@pytest.mark.parametrize("sim", PRE_MARKET, indirect=True)
def test_pre_market_gap_scan_finds_the_gapping_small_caps(ib: IB) -> None:
    sub = ScannerSubscription(
        instrument="STK",
        locationCode="STK.US.MAJOR",
        scanCode="TOP_PERC_GAIN",
        abovePrice=1,
        belowPrice=30,
        numberOfRows=5,
    )
    rows = ib.reqScannerData(sub)
    gappers = {t.symbol for t in UNIVERSE if t.gap_pct >= 10}
    symbols = [r.contractDetails.contract.symbol for r in rows if r.contractDetails.contract]
    assert len(symbols) == 5
    assert set(symbols) <= gappers


@pytest.mark.parametrize("sim", PRE_MARKET, indirect=True)
def test_hot_by_volume_and_most_active_answer(ib: IB) -> None:
    hot = ib.reqScannerData(
        ScannerSubscription(
            instrument="STK", locationCode="STK.US.MAJOR", scanCode="HOT_BY_VOLUME", numberOfRows=3
        )
    )
    active = ib.reqScannerData(
        ScannerSubscription(
            instrument="STK", locationCode="STK.US.MAJOR", scanCode="MOST_ACTIVE", numberOfRows=3
        )
    )
    hot_symbols = [r.contractDetails.contract.symbol for r in hot if r.contractDetails.contract]
    assert len(hot_symbols) == 3
    assert lookup(hot_symbols[0]).volume_boost > 1  # type: ignore[union-attr]
    assert len(active) == 3
