"""The live market of one symbol: a limit order book evolving by arrivals, cancels and trades.

Pure (no I/O, no clock): `LiveBook.step()` applies one random event and reports each atomic
change to a listener in IB's row terms (insert shifts rows down, delete shifts them up), so
the book is sorted and never crossed or locked after every single change. Prices are integer
cents. Deterministic for a seed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from ibdesk.domain.book import BookSide, DepthOp


class Aggressor(IntEnum):
    SELL = -1
    BUY = 1


# (side, op, position, price_c, size) after the change is applied to the book
ChangeListener = Callable[[int, int, int, int, int], None]
# (price_c, size, aggressor)
TradeListener = Callable[[int, int, int], None]

MIN_LEVELS = 25
MAX_LEVELS = 60  # deeper levels are dropped (IB shows at most 20 rows of depth)
_INSERT, _UPDATE, _DELETE = int(DepthOp.INSERT), int(DepthOp.UPDATE), int(DepthOp.DELETE)
_LOT = 100
# Row chosen for adds/cancels: geometric (mean ~4 rows from the top), drawn by table lookup
# because this is the hot path (one draw per event).
_ROW_TABLE: tuple[int, ...] = tuple(
    min(int(-4.0 * math.log(1.0 - (i + 0.5) / 512)), 40) for i in range(512)
)


@dataclass(frozen=True, slots=True)
class BookRows:
    """The top of a book: (price_usd, size) rows, best first."""

    bids: tuple[tuple[float, int], ...]
    asks: tuple[tuple[float, int], ...]


def _ignore_change(side: int, op: int, position: int, price_c: int, size: int) -> None:
    return None


def _ignore_trade(price_c: int, size: int, aggressor: int) -> None:
    return None


class LiveBook:
    """One symbol's book: `px[side]` sorted best first, `sz[side]` sizes in shares."""

    __slots__ = ("_rnd", "_rng", "lot", "on_change", "on_trade", "px", "sz")

    def __init__(self, mid_c: int, seed: int, *, small_cap: bool = False, levels: int = MIN_LEVELS):
        self._rng = random.Random(seed)
        self._rnd = self._rng.random
        self.lot = _LOT * (5 if small_cap else 1)
        mid_c = max(mid_c, levels * 3 + 2)
        r = self._rng
        bid = mid_c - 1 if small_cap else mid_c
        ask = bid + (r.randint(1, 3) if small_cap else 1)
        self.px: list[list[int]] = [[], []]
        self.sz: list[list[int]] = [[], []]
        for _ in range(levels):
            self.px[BookSide.BID].append(bid)
            self.sz[BookSide.BID].append(self._lots())
            bid -= r.randint(1, 2)
            self.px[BookSide.ASK].append(ask)
            self.sz[BookSide.ASK].append(self._lots())
            ask += r.randint(1, 2)
        self.on_change: ChangeListener = _ignore_change
        self.on_trade: TradeListener = _ignore_trade

    def _lots(self) -> int:
        return self.lot * (1 + int(self._rnd() * 30))

    @property
    def best_bid_c(self) -> int:
        return self.px[BookSide.BID][0]

    @property
    def best_ask_c(self) -> int:
        return self.px[BookSide.ASK][0]

    def rows(self, depth: int) -> BookRows:
        """Ground truth: the top `depth` rows of each side, in dollars."""
        bids = tuple(
            (p / 100, s) for p, s in zip(self.px[1][:depth], self.sz[1][:depth], strict=True)
        )
        asks = tuple(
            (p / 100, s) for p, s in zip(self.px[0][:depth], self.sz[0][:depth], strict=True)
        )
        return BookRows(bids, asks)

    # -- events ----------------------------------------------------------------------------
    def step(self) -> None:
        """Apply one random event (see `run`)."""
        self.run(1)

    def run(self, events: int) -> None:
        """Apply `events` random events: add to a level (35%), cancel from one (27%), a new
        level (22%) or a market order (16%). Adds and cancels are inlined: the hot path."""
        rnd = self._rnd
        px, sz = self.px, self.sz
        lot = self.lot
        on_change = self.on_change
        for _ in range(events):
            u = rnd()
            side = 1 if rnd() < 0.5 else 0
            if u < 0.62:
                sizes = sz[side]
                row = _ROW_TABLE[int(rnd() * 512)]
                if row >= len(sizes):
                    row = len(sizes) - 1
                lots = lot * (1 + int(rnd() * 30))
                if u < 0.35:
                    size = sizes[row] + lots
                else:
                    size = sizes[row] - lots
                    if size <= 0:
                        self._delete(side, row)
                        continue
                sizes[row] = size
                on_change(side, _UPDATE, row, px[side][row], size)
            elif u < 0.84:
                self._new_level(side)
            else:
                self.take(1 if side == BookSide.ASK else -1, self._lots() // 2 or 1)

    def _delete(self, side: int, position: int) -> None:
        price = self.px[side].pop(position)
        self.sz[side].pop(position)
        self.on_change(side, _DELETE, position, price, 0)
        self._refill(side)

    def _refill(self, side: int) -> None:
        prices = self.px[side]
        if not prices:
            other = self.px[1 - side][0]
            price = other - 1 if side == BookSide.BID else other + 1
            if price < 1:
                return
            self._insert(side, 0, price, self._lots())
        while len(prices) < MIN_LEVELS:
            step = 1 if self._rnd() < 0.5 else 2
            price = prices[-1] - step if side == BookSide.BID else prices[-1] + step
            if price < 1:
                return
            self._insert(side, len(prices), price, self._lots())

    def _insert(self, side: int, position: int, price: int, size: int) -> None:
        prices, sizes = self.px[side], self.sz[side]
        prices.insert(position, price)
        sizes.insert(position, size)
        self.on_change(side, _INSERT, position, price, size)
        if len(prices) > MAX_LEVELS:
            # Far below any subscription's rows: drop it so the book (and every list
            # operation on it) stays small however long the sim runs.
            last = len(prices) - 1
            dropped = prices.pop()
            sizes.pop()
            self.on_change(side, _DELETE, last, dropped, 0)

    def _new_level(self, side: int) -> None:
        rnd = self._rnd
        bid, ask = self.px[BookSide.BID][0], self.px[BookSide.ASK][0]
        if ask - bid > 1 and rnd() < 0.7:
            offset = 1 + int(rnd() * (ask - bid - 1))
            price = bid + offset if side == BookSide.BID else ask - offset
            self._insert(side, 0, price, self._lots())
            return
        prices = self.px[side]
        sign = -1 if side == BookSide.BID else 1
        position = 1 + int(rnd() * (min(len(prices), 12) - 1))
        if abs(prices[position] - prices[position - 1]) > 1:
            self._insert(side, position, prices[position - 1] + sign, self._lots())
            return
        price = prices[-1] + sign * (1 if rnd() < 0.5 else 2)
        if price >= 1:
            self._insert(side, len(prices), price, self._lots())

    def take(
        self, aggressor: int, quantity: int, limit_c: int | None = None
    ) -> list[tuple[int, int]]:
        """A marketable order: consume the opposite side best first (up to `limit_c`).

        Returns the fills as (price_c, size); each fill is also a trade on the tape.
        """
        side = BookSide.ASK if aggressor == Aggressor.BUY else BookSide.BID
        prices, sizes = self.px[side], self.sz[side]
        fills: list[tuple[int, int]] = []
        while quantity > 0 and prices:
            price = prices[0]
            if limit_c is not None and (
                (aggressor == Aggressor.BUY and price > limit_c)
                or (aggressor == Aggressor.SELL and price < limit_c)
            ):
                break
            size = min(quantity, sizes[0])
            quantity -= size
            fills.append((price, size))
            if size >= sizes[0]:
                prices.pop(0)
                sizes.pop(0)
                self.on_change(side, _DELETE, 0, price, 0)
                self.on_trade(price, size, aggressor)
                self._refill(side)
            else:
                sizes[0] -= size
                self.on_change(side, _UPDATE, 0, price, sizes[0])
                self.on_trade(price, size, aggressor)
        return fills
