"""What the server needs from a market: `MarketSource`, a source of books, trades and history
with its own clock.

The server fans a source out to its clients: depth rows, quotes and tick-by-tick from each
symbol's `Book` listeners, bars and the scanner from the tapes (the history before the
source's origin, then the live trades it recorded). `synthetic.SyntheticMarket` is the
seeded random market (wall clock x speed); a replay of a recorded day (issue #16) is another
source with the recording's clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from ibdesk.calendar import Session, SessionCalendar
from ibdesk.sim.book import BookRows, ChangeListener, TradeListener
from ibdesk.sim.history import Tape
from ibdesk.sim.universe import Ticker


class Book(Protocol):
    """One symbol's live book: `px[side]` sorted best first (cents), `sz[side]` sizes.

    Every atomic change is reported to the `on_change` listener given to
    `MarketSource.open_book` in IB's row terms (insert shifts rows down, delete shifts them
    up) after it is applied, every trade to `on_trade`.
    """

    px: list[list[int]]
    sz: list[list[int]]

    @property
    def best_bid_c(self) -> int: ...

    @property
    def best_ask_c(self) -> int: ...

    def rows(self, depth: int) -> BookRows:
        """Ground truth: the top `depth` rows of each side, in dollars."""
        ...

    def take(
        self, aggressor: int, quantity: int, limit_c: int | None = None
    ) -> list[tuple[int, int]]:
        """A marketable order against the book (a sim order's fill); returns (price_c, size)."""
        ...


class MarketSource(Protocol):
    """A market the sim serves: symbols, their books and tapes, and the clock they run on."""

    @property
    def calendar(self) -> SessionCalendar: ...

    @property
    def session_index(self) -> int:
        """The calendar session the clock starts in."""
        ...

    @property
    def origin_ns(self) -> int:
        """When the live part starts: tapes are history before it, book events after it."""
        ...

    @property
    def universe(self) -> Mapping[str, Ticker]:
        """The symbols served, by symbol."""
        ...

    def now_ns(self) -> int:
        """The market's current time (UTC ns)."""
        ...

    def open_book(self, ticker: Ticker, on_change: ChangeListener, on_trade: TradeListener) -> Book:
        """The live book of `ticker` at the current time, reporting every change and trade
        to the listeners (called once per symbol)."""
        ...

    def advance(self, ticker: Ticker, elapsed_s: float) -> None:
        """Apply the events of `ticker`'s open book (changes and trades, through its
        listeners) for the next `elapsed_s` seconds of the server's wall clock."""
        ...

    def history(self, ticker: Ticker, session: Session) -> Tape:
        """The whole tape of `session` as known before the origin (the server keeps only the
        part before `origin_ns` and adds the live trades). Thread-safe: bars are built on
        worker threads."""
        ...

    def prev_close_c(self, ticker: Ticker, index: int) -> int:
        """The regular-hours close of the session before `index`, in cents."""
        ...
