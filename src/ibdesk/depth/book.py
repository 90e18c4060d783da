"""An IB depth book rebuilt from depth operations with IB's row semantics (pure, no I/O).

IB sends `updateMktDepth(position, operation, side, price, size)`: insert at a position
shifts the rows below it down, delete shifts them up, update replaces the row. ib_async's
`domBids`/`domAsks` do not shift rows, so the recorder keeps this book instead. Nothing
here "fixes" what IB sent: an operation at an impossible position is applied as closely as
possible and counted in `anomalies`; a crossed or locked book is reported, not repaired.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from ibdesk.domain.book import BookSide, DepthOp

_INSERT, _UPDATE, _BID = int(DepthOp.INSERT), int(DepthOp.UPDATE), int(BookSide.BID)


class Level(NamedTuple):
    """One book row (a NamedTuple: rows are created on every depth operation)."""

    price: float
    size: float
    market_maker: str = ""


@dataclass(slots=True)
class SideBook:
    """One side of an IB depth book; rows follow IB's position semantics."""

    max_rows: int
    rows: list[Level] = field(default_factory=list)
    anomalies: int = 0

    def apply(
        self, op: DepthOp | int, position: int, price: float, size: float, market_maker: str = ""
    ) -> None:
        """Apply one operation (`apply_all` of one)."""
        self.apply_all(
            (DepthMessage(0, position, DepthOp(op), BookSide.BID, price, size, market_maker),)
        )

    def apply_all(self, ops: Iterable[DepthOperation]) -> None:
        """Apply this side's operations in order: the one implementation of IB's row rules.

        One loop with locals, no per-operation calls: the recorder's hot path.
        """
        rows = self.rows
        limit = self.max_rows
        anomalies = 0
        for m in ops:
            op = m.operation
            position = m.position
            if op == _INSERT:
                if position > len(rows):
                    anomalies += 1
                    position = len(rows)
                rows.insert(position, Level(m.price, m.size, m.market_maker))
                if len(rows) > limit:
                    del rows[limit:]
            elif op == _UPDATE:
                if position < len(rows):
                    rows[position] = Level(m.price, m.size, m.market_maker)
                else:
                    anomalies += 1
                    if position == len(rows) and len(rows) < limit:
                        rows.append(Level(m.price, m.size, m.market_maker))
            elif position < len(rows):
                del rows[position]
            else:
                anomalies += 1
        self.anomalies += anomalies

    def clear(self) -> None:
        self.rows.clear()


@dataclass(slots=True)
class DepthBook:
    """Both sides of one symbol's book, `levels` deep."""

    levels: int
    bids: SideBook = field(init=False)
    asks: SideBook = field(init=False)
    updates: int = 0

    def __post_init__(self) -> None:
        self.bids = SideBook(self.levels)
        self.asks = SideBook(self.levels)

    def apply(
        self,
        op: DepthOp | int,
        side: BookSide | int,
        position: int,
        price: float,
        size: float,
        market_maker: str = "",
    ) -> None:
        book = self.bids if side == BookSide.BID else self.asks
        book.apply(op, position, price, size, market_maker)
        self.updates += 1

    def apply_all(self, ops: Sequence[DepthOperation]) -> None:
        """Apply operations in order (the two sides are independent, so each side's
        operations are applied in their order)."""
        self.bids.apply_all([m for m in ops if m.side == _BID])
        self.asks.apply_all([m for m in ops if m.side != _BID])
        self.updates += len(ops)

    def clear(self) -> None:
        """Empty both sides (after 317, or when a subscription restarts)."""
        self.bids.clear()
        self.asks.clear()

    @property
    def anomalies(self) -> int:
        return self.bids.anomalies + self.asks.anomalies

    @property
    def best_bid(self) -> float | None:
        return self.bids.rows[0].price if self.bids.rows else None

    @property
    def best_ask(self) -> float | None:
        return self.asks.rows[0].price if self.asks.rows else None

    def is_crossed_or_locked(self) -> bool:
        bid, ask = self.best_bid, self.best_ask
        return bid is not None and ask is not None and bid >= ask

    def snapshot_row(self) -> list[float]:
        """bid_px.., bid_sz.., ask_px.., ask_sz.. (schema order), NaN for empty levels."""
        n = self.levels
        out = [math.nan] * (4 * n)
        for k, level in enumerate(self.bids.rows[:n]):
            out[k] = level.price
            out[n + k] = level.size
        for k, level in enumerate(self.asks.rows[:n]):
            out[2 * n + k] = level.price
            out[3 * n + k] = level.size
        return out


class DepthOperation(Protocol):
    """Anything that carries one depth operation with its receive time."""

    @property
    def ts_ns(self) -> int: ...
    @property
    def position(self) -> int: ...
    @property
    def operation(self) -> int: ...
    @property
    def side(self) -> int: ...
    @property
    def price(self) -> float: ...
    @property
    def size(self) -> float: ...
    @property
    def market_maker(self) -> str: ...


@dataclass(frozen=True, slots=True)
class DepthMessage:
    """One depth operation as received (the depth-messages schema, in our types)."""

    ts_ns: int
    position: int
    operation: DepthOp
    side: BookSide
    price: float
    size: float
    market_maker: str = ""


def snapshots_from_messages(
    ts_ns: npt.NDArray[np.int64],
    position: Sequence[int] | npt.NDArray[np.integer],
    operation: Sequence[int] | npt.NDArray[np.integer],
    side: Sequence[int] | npt.NDArray[np.integer],
    price: Sequence[float] | npt.NDArray[np.floating],
    size: Sequence[float] | npt.NDArray[np.floating],
    grid_ns: Iterable[int],
    levels: int,
) -> npt.NDArray[np.float64]:
    """Replay messages and sample the book at each grid time (messages with ts <= t count).

    Returns an array of shape (len(grid), 4*levels) in schema column order, NaN for empty
    levels. This is how a recording is checked to be lossless: the messages alone rebuild
    the snapshots (a recorder writes a book reset as deletes of every row, see
    `reset_messages`).
    """
    book = DepthBook(levels)
    grid = list(grid_ns)
    out = np.full((len(grid), 4 * levels), np.nan)
    i = 0
    count = len(ts_ns)
    for row, t in enumerate(grid):
        while i < count and ts_ns[i] <= t:
            book.apply(
                int(operation[i]), int(side[i]), int(position[i]), float(price[i]), float(size[i])
            )
            i += 1
        out[row] = book.snapshot_row()
    return out


RESET_MARKER = "ibdesk:reset"


def reset_messages(book: DepthBook, ts_ns: int) -> list[DepthMessage]:
    """Deletes that empty `book` row by row, marked `ibdesk:reset`, for the messages file.

    A book reset (reconnect, 316/317, silent feed) is not an IB message; writing it as
    explicit deletes keeps the messages file self-sufficient for rebuilding the book.
    """
    out: list[DepthMessage] = []
    for side, rows in ((BookSide.BID, book.bids.rows), (BookSide.ASK, book.asks.rows)):
        out.extend(
            DepthMessage(ts_ns, 0, DepthOp.DELETE, side, level.price, level.size, RESET_MARKER)
            for level in rows
        )
    return out
