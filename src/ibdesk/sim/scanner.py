"""Scanner rankings of the sim: TOP_PERC_GAIN, HOT_BY_VOLUME, MOST_ACTIVE.

Pure: rows of (ticker, last, previous close, volume so far, expected volume so far) in,
ranked tickers out, with IB's abovePrice/belowPrice/aboveVolume filters.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ibdesk.sim.universe import Ticker

DEFAULT_ROWS = 50


class ScanCode(StrEnum):
    TOP_PERC_GAIN = "TOP_PERC_GAIN"
    HOT_BY_VOLUME = "HOT_BY_VOLUME"
    MOST_ACTIVE = "MOST_ACTIVE"


@dataclass(frozen=True, slots=True)
class ScanRequest:
    code: str
    rows: int = DEFAULT_ROWS
    above_price: float | None = None
    below_price: float | None = None
    above_volume: int | None = None


@dataclass(frozen=True, slots=True)
class ScanRow:
    ticker: Ticker
    last_usd: float
    prev_close_usd: float
    volume: int
    expected_volume: float

    @property
    def change_pct(self) -> float:
        return (self.last_usd / self.prev_close_usd - 1.0) * 100 if self.prev_close_usd else 0.0

    @property
    def rvol(self) -> float:
        return self.volume / self.expected_volume if self.expected_volume else 0.0


def _passes(row: ScanRow, request: ScanRequest) -> bool:
    if request.above_price is not None and row.last_usd <= request.above_price:
        return False
    if request.below_price is not None and row.last_usd >= request.below_price:
        return False
    return request.above_volume is None or row.volume > request.above_volume


def rank(rows: list[ScanRow], request: ScanRequest) -> list[Ticker]:
    """The tickers a scan returns, best first; an unknown scan code returns nothing."""
    chosen = [r for r in rows if _passes(r, request)]
    if request.code == ScanCode.TOP_PERC_GAIN:
        chosen = [r for r in chosen if r.change_pct > 0]
        chosen.sort(key=lambda r: (-r.change_pct, r.ticker.symbol))
    elif request.code == ScanCode.HOT_BY_VOLUME:
        chosen.sort(key=lambda r: (-r.rvol, r.ticker.symbol))
    elif request.code == ScanCode.MOST_ACTIVE:
        chosen.sort(key=lambda r: (-r.volume, r.ticker.symbol))
    else:
        return []
    limit = request.rows if request.rows > 0 else DEFAULT_ROWS
    return [r.ticker for r in chosen[:limit]]
