"""The server serves any `MarketSource`: a scripted market (a stand-in for a recorded day)
with its own event clock reaches a real ib_async client as depth, trades and time."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pytest
from ib_async import IB, Stock

from ibdesk.calendar import NS, Session, SessionCalendar, parse_clock, xnys
from ibdesk.sim.book import Aggressor, BookRows, BookSide, ChangeListener, DepthOp, TradeListener
from ibdesk.sim.history import Tape
from ibdesk.sim.server import SimConfig, SimThread
from ibdesk.sim.source import Book, MarketSource
from ibdesk.sim.universe import Ticker, lookup
from tests.sim.ibbook import RowBook

ORIGIN = "2025-07-30T10:00:00-04:00"
ASK, BID = int(BookSide.ASK), int(BookSide.BID)
INSERT, UPDATE, DELETE = int(DepthOp.INSERT), int(DepthOp.UPDATE), int(DepthOp.DELETE)
# (side, op, position, price_c, size) as a recording would hold them, one per second
SCRIPT = (
    (BID, UPDATE, 0, 31_000, 700),
    (ASK, INSERT, 0, 31_002, 100),
    (BID, DELETE, 1, 30_999, 0),
)
TRADE = (31_002, 100, int(Aggressor.BUY))  # then a buy takes the new best ask


class ScriptedBook:
    """A book that changes only as its script says (IB row semantics)."""

    def __init__(self, on_change: ChangeListener, on_trade: TradeListener) -> None:
        self.px = [[31_003, 31_004, 31_005, 31_006], [31_000, 30_999, 30_998, 30_997]]
        self.sz = [[200, 300, 400, 500], [600, 300, 200, 100]]
        self.on_change = on_change
        self.on_trade = on_trade

    @property
    def best_bid_c(self) -> int:
        return self.px[BID][0]

    @property
    def best_ask_c(self) -> int:
        return self.px[ASK][0]

    def apply(self, side: int, op: int, position: int, price_c: int, size: int) -> None:
        if op == INSERT:
            self.px[side].insert(position, price_c)
            self.sz[side].insert(position, size)
        elif op == UPDATE:
            self.sz[side][position] = size
        else:
            self.px[side].pop(position)
            self.sz[side].pop(position)
        self.on_change(side, op, position, price_c, size)

    def rows(self, depth: int) -> BookRows:
        def side(s: int) -> tuple[tuple[float, int], ...]:
            return tuple(
                (p / 100, z) for p, z in zip(self.px[s][:depth], self.sz[s][:depth], strict=True)
            )

        return BookRows(side(BID), side(ASK))

    def take(
        self, aggressor: int, quantity: int, limit_c: int | None = None
    ) -> list[tuple[int, int]]:
        return []


class ScriptedMarket:
    """TSLA only; the clock is the time of the last event applied, not the wall clock."""

    def __init__(self) -> None:
        self._calendar = xnys()
        self._origin_ns = parse_clock(ORIGIN)
        self._index = self._calendar.latest_started(self._origin_ns)
        self._ticker = lookup("TSLA")
        assert self._ticker is not None
        self.events: Iterator[int] = iter(range(len(SCRIPT) + 1))
        self.applied = 0
        self.book: ScriptedBook | None = None

    @property
    def calendar(self) -> SessionCalendar:
        return self._calendar

    @property
    def session_index(self) -> int:
        return self._index

    @property
    def origin_ns(self) -> int:
        return self._origin_ns

    @property
    def universe(self) -> Mapping[str, Ticker]:
        assert self._ticker is not None
        return {"TSLA": self._ticker}

    def now_ns(self) -> int:
        return self._origin_ns + self.applied * NS

    def open_book(self, ticker: Ticker, on_change: ChangeListener, on_trade: TradeListener) -> Book:
        self.book = ScriptedBook(on_change, on_trade)
        return self.book

    def advance(self, ticker: Ticker, elapsed_s: float) -> None:
        assert self.book is not None
        step = next(self.events, None)
        if step is None:
            return
        self.applied += 1
        if step < len(SCRIPT):
            self.book.apply(*SCRIPT[step])
        else:
            self.book.on_trade(*TRADE)

    def history(self, ticker: Ticker, session: Session) -> Tape:
        ts = np.array([session.open_ns + 60 * NS, session.open_ns + 120 * NS], dtype=np.int64)
        price = np.array([30_990, 31_001], dtype=np.int64)
        size = np.array([500, 300], dtype=np.int64)
        side = np.array([1, -1], dtype=np.int8)
        return Tape(ts, price, size, side, price - 1, price + 1)

    def prev_close_c(self, ticker: Ticker, index: int) -> int:
        return 30_500


@pytest.fixture
def scripted() -> Iterator[tuple[SimThread, ScriptedMarket]]:
    market = ScriptedMarket()
    thread = SimThread(SimConfig(port=0), market=market).start()
    try:
        yield thread, market
    finally:
        thread.stop()


def test_a_scripted_market_reaches_the_client_in_its_own_event_time(
    scripted: tuple[SimThread, ScriptedMarket],
) -> None:
    sim, market = scripted
    _: MarketSource = market  # the protocol is all the server needs
    ib = IB()
    ib.connect(sim.host, sim.port, clientId=1, timeout=10)
    try:
        contract = Stock("TSLA", "SMART", "USD")
        ib.qualifyContracts(contract)
        rows = RowBook()  # IB's row semantics (ib_async's domBids does not shift rows)
        l2 = ib.wrapper.updateMktDepthL2

        def on_l2(req_id: int, position: int, mm: str, op: int, side: int, *rest: Any) -> None:
            rows.apply(position, op, side, rest[0], rest[1])
            l2(req_id, position, mm, op, side, *rest)

        ib.wrapper.updateMktDepthL2 = on_l2  # type: ignore[method-assign]
        ib.reqMktDepth(contract, numRows=3)
        quote = ib.reqMktData(contract)
        while sim.call(lambda: market.applied) <= len(SCRIPT):
            ib.sleep(0.05)
        ib.sleep(0.3)
        bids, asks = rows.rows[BID], rows.rows[ASK]
        assert bids == [(310.0, 700), (309.98, 200), (309.97, 100)]
        assert asks == [(310.02, 100), (310.03, 200), (310.04, 300)]
        truth = sim.book("TSLA", 3)
        assert (list(truth.bids), list(truth.asks)) == (bids, asks)
        assert (quote.last, quote.close) == (310.02, 305.0)
        assert int(ib.reqCurrentTime().timestamp()) == (market.origin_ns // NS) + 4
        assert [int(t) for t in sim.tape("TSLA").size] == [500, 300, 100]
    finally:
        ib.disconnect()
