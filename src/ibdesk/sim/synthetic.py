"""The synthetic market: a seeded random book per symbol and seeded history, on a clock that
starts at the configured time and runs at wall clock x speed. Implements `MarketSource`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from ibdesk.calendar import NS, Session, SessionCalendar, parse_clock, xnys
from ibdesk.sim.book import ChangeListener, LiveBook, TradeListener
from ibdesk.sim.history import Tape, TapeModel
from ibdesk.sim.source import Book
from ibdesk.sim.universe import Ticker, select

MAX_EVENTS_PER_TICK = 20_000


class SimClock:
    """Simulated time: starts at the configured clock and advances at `speed`."""

    def __init__(self, origin_ns: int, speed: float) -> None:
        self.origin_ns = origin_ns
        self.speed = speed
        self._mono0 = time.monotonic()

    def now_ns(self) -> int:
        return self.origin_ns + int((time.monotonic() - self._mono0) * self.speed * NS)


class SyntheticMarket:
    """Seeded random books and tapes for `symbols` (all of the universe when empty).

    `events_per_s` is book events per second of simulated time for each active symbol; it
    may be changed while running (benches do).
    """

    def __init__(
        self,
        *,
        seed: int,
        clock: str,
        speed: float = 1.0,
        events_per_s: float = 50.0,
        symbols: tuple[str, ...] = (),
    ) -> None:
        self.seed = seed
        self.events_per_s = events_per_s
        self._universe = {t.symbol: t for t in select(list(symbols) or None)}
        self._calendar: SessionCalendar = xnys()
        self.clock = SimClock(parse_clock(clock), speed)
        self._session_index = self._calendar.latest_started(self.clock.origin_ns)
        self.model = TapeModel(seed, self._calendar, self._session_index)
        self._books: dict[str, LiveBook] = {}
        self._pending: dict[str, float] = {}

    @property
    def calendar(self) -> SessionCalendar:
        return self._calendar

    @property
    def session_index(self) -> int:
        return self._session_index

    @property
    def origin_ns(self) -> int:
        return self.clock.origin_ns

    @property
    def universe(self) -> Mapping[str, Ticker]:
        return self._universe

    def now_ns(self) -> int:
        return self.clock.now_ns()

    def open_book(self, ticker: Ticker, on_change: ChangeListener, on_trade: TradeListener) -> Book:
        session = self._calendar.session(self._session_index)
        history = self.model.tape(ticker, session).between(session.ext_open_ns, self.origin_ns)
        last = (
            int(history.price_c[-1]) if len(history) else self.prev_close_c(ticker, session.index)
        )
        seed = (self.seed * 1_000_003 + ticker.con_id) & 0x7FFFFFFF
        book = self._books[ticker.symbol] = LiveBook(last, seed, small_cap=ticker.is_small_cap)
        book.on_change = on_change
        book.on_trade = on_trade
        return book

    def advance(self, ticker: Ticker, elapsed_s: float) -> None:
        pending = self._pending.get(ticker.symbol, 0.0)
        pending += self.events_per_s * self.clock.speed * elapsed_s
        count = int(pending)
        pending -= count
        if count > MAX_EVENTS_PER_TICK:  # behind (a slow loop): drop the backlog
            count = MAX_EVENTS_PER_TICK
            pending = 0.0
        self._pending[ticker.symbol] = pending
        self._books[ticker.symbol].run(count)

    def history(self, ticker: Ticker, session: Session) -> Tape:
        return self.model.tape(ticker, session)

    def prev_close_c(self, ticker: Ticker, index: int) -> int:
        return self.model.prev_close_c(ticker, index)
