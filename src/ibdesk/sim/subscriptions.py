"""Subscriptions and the per-symbol feeds that fan book changes and trades out to them.

A `SymbolFeed` listens to one symbol's `Book` (from the market source) and appends each
change, already framed, to every subscribed client's output queue; this is the sim's hot
path, so message pieces are precomputed and prices cached.
"""

from __future__ import annotations

import contextlib
from array import array
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ibdesk.calendar import NS, Session
from ibdesk.domain.book import BookSide
from ibdesk.sim.history import BarRequest, Tape
from ibdesk.sim.protocol import Out, encode
from ibdesk.sim.scanner import ScanRequest
from ibdesk.sim.source import MarketSource
from ibdesk.sim.universe import Ticker

MARKET_MAKERS = ("NSDQ", "ARCA", "BATS", "EDGX", "IEX", "MEMX")


class Client(Protocol):
    """Where a subscription's messages go: a connection's queue of framed latin-1 text."""

    out: list[str]
    depth: dict[int, Any]

    def send(self, data: bytes) -> None: ...

    def send_text(self, framed: str) -> None: ...

    def error(self, req_id: int, code: int, text: str) -> None: ...


@dataclass(slots=True, eq=False)
class DepthSub:
    """A depth subscription; its message pieces are precomputed (this is the hot path)."""

    conn: Client
    req_id: int
    rows: int
    smart: bool
    prefix: str
    silent: bool = False
    parts: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        self.parts = tuple(tuple(f"\0{op}\0{side}\0" for op in range(3)) for side in range(2))

    def encode(self, position: int, op: int, side: int, price_c: int, size: int) -> str:
        """updateMktDepth `12,1,id,pos,op,side,px,size` or L2 `13,1,id,pos,mm,op,side,px,size,1`
        as framed latin-1 text (see `frame_text`)."""
        price = _PRICES.get(price_c) or _price(price_c)
        if self.smart:
            mm = MARKET_MAKERS[price_c % 6]
            body = f"{self.prefix}{position}\0{mm}{self.parts[side][op]}{price}\0{size}\x001\0"
        else:
            body = f"{self.prefix}{position}{self.parts[side][op]}{price}\0{size}\0"
        return _LENGTHS[len(body)] + body


_PRICES: dict[int, str] = {}
# 4-byte big-endian lengths as latin-1 text, for the short messages of the hot path
_LENGTHS: tuple[str, ...] = tuple(n.to_bytes(4, "big").decode("latin-1") for n in range(1024))


def frame_text(body: str) -> str:
    """Frame an ASCII body as latin-1 text: a queue of these is encoded once per write."""
    n = len(body)
    return (_LENGTHS[n] if n < 1024 else n.to_bytes(4, "big").decode("latin-1")) + body


def _price(price_c: int) -> str:
    """A price in cents as IB text (`316.8`), cached: the same few hundred prices recur."""
    text = str(price_c / 100)
    if len(_PRICES) < 1_000_000:
        _PRICES[price_c] = text
    return text


@dataclass(slots=True, eq=False)
class QuoteSub:
    conn: Client
    req_id: int
    rt_volume: bool
    silent: bool = False


@dataclass(slots=True, eq=False)
class TickByTickSub:
    conn: Client
    req_id: int
    kind: str
    silent: bool = False
    last_mid: float = 0.0


@dataclass(slots=True, eq=False)
class BarSub:
    conn: Client
    req_id: int
    request: BarRequest
    format_date: int
    last_sent: tuple[Any, ...] = ()
    silent: bool = False


@dataclass(slots=True, eq=False)
class ScanSub:
    conn: Client
    req_id: int
    request: ScanRequest


class SymbolFeed:
    """One symbol's live state as the clients see it: its book (from the market source), the
    live tape, stats and the subscriptions every change is fanned out to."""

    def __init__(self, source: MarketSource, ticker: Ticker) -> None:
        self.source = source
        self.ticker = ticker
        self._now_ns = source.now_ns
        self.session: Session = source.calendar.session(source.session_index)
        self.prev_close_c = source.prev_close_c(ticker, self.session.index)
        origin = source.origin_ns
        history = source.history(ticker, self.session).between(self.session.ext_open_ns, origin)
        self.history = history
        last = int(history.price_c[-1]) if len(history) else self.prev_close_c
        self.volume = int(history.size.sum())
        self.high_c = int(history.price_c.max()) if len(history) else 0
        self.low_c = int(history.price_c.min()) if len(history) else 0
        self.last_c = last
        self.last_size = int(history.size[-1]) if len(history) else 0
        self.notional_c = int((history.price_c * history.size).sum())
        self.book = source.open_book(ticker, self._on_change, self._on_trade)
        # live tape columns (ts, price, size, aggressor, bid, ask): compact 8-byte arrays
        self.live: list[array[int]] = [array("q") for _ in range(6)]
        self.depth_subs: list[DepthSub] = []
        self.quote_subs: list[QuoteSub] = []
        self.tbt_subs: list[TickByTickSub] = []
        self.bar_subs: list[BarSub] = []
        self.orders_dirty = False
        self._bid_c = self.book.best_bid_c
        self._ask_c = self.book.best_ask_c

    @property
    def subscribed(self) -> bool:
        return bool(self.depth_subs or self.quote_subs or self.tbt_subs or self.bar_subs)

    # -- ground truth ------------------------------------------------------------------------
    def live_tape(self) -> Tape:
        cols = self.live
        return Tape(
            np.array(cols[0], dtype=np.int64),
            np.array(cols[1], dtype=np.int64),
            np.array(cols[2], dtype=np.int64),
            np.array(cols[3], dtype=np.int64).astype(np.int8),
            np.array(cols[4], dtype=np.int64),
            np.array(cols[5], dtype=np.int64),
        )

    def tape_for(self, session: Session, live: Tape) -> Tape:
        """The session's tape: generated history before the sim started, live trades after."""
        origin = self.source.origin_ns
        hist = self.source.history(self.ticker, session)
        if session.ext_close_ns <= origin:
            return hist
        parts = [hist.between(session.ext_open_ns, origin)]
        if len(live):
            parts.append(live.between(max(origin, session.ext_open_ns), session.ext_close_ns))
        return Tape.concat(parts)

    # -- book listeners (hot path) ----------------------------------------------------------
    def _on_change(self, side: int, op: int, position: int, price_c: int, size: int) -> None:
        """Translate one book change into each depth subscription's row operations.

        A subscription shows the top `rows` rows. An insert into a full view first deletes
        its last row; a delete pulls the next row up into the last position. Each view is
        then a subset of the (uncrossed) book at every step.
        """
        book = self.book
        for sub in self.depth_subs:
            rows = sub.rows
            if position >= rows or sub.silent:
                continue
            out = sub.conn.out.append
            if op == 1 and not sub.smart:  # the most common message, inlined
                price = _PRICES.get(price_c) or _price(price_c)
                body = f"{sub.prefix}{position}{sub.parts[side][1]}{price}\0{size}\0"
                out(_LENGTHS[len(body)] + body)
            elif op == 1:
                out(sub.encode(position, 1, side, price_c, size))
            elif op == 0:
                prices = book.px[side]
                if len(prices) - 1 >= rows:
                    out(sub.encode(rows - 1, 2, side, prices[rows], 0))
                out(sub.encode(position, 0, side, price_c, size))
            else:
                out(sub.encode(position, 2, side, price_c, 0))
                prices = book.px[side]
                if len(prices) >= rows:
                    last = rows - 1
                    out(sub.encode(last, 0, side, prices[last], book.sz[side][last]))
        if position == 0 and (self.quote_subs or self.tbt_subs):
            self._top_changed(side)

    def _top_changed(self, side: int) -> None:
        book = self.book
        px = book.px[side][0]
        sz = book.sz[side][0]
        now_ns = 0
        tick_type = 1 if side == BookSide.BID else 2
        size_type = 0 if side == BookSide.BID else 3
        for sub in self.quote_subs:
            if sub.silent:
                continue
            if px != (self._bid_c if side == BookSide.BID else self._ask_c):
                sub.conn.send_text(_tick_price(sub.req_id, tick_type, px, sz))
            else:
                sub.conn.send_text(_tick_size(sub.req_id, size_type, sz))
        if side == BookSide.BID:
            self._bid_c = px
        else:
            self._ask_c = px
        for sub in self.tbt_subs:
            if sub.kind == "MidPoint" and not sub.silent:
                mid = (book.px[1][0] + book.px[0][0]) / 200
                if mid != sub.last_mid:
                    sub.last_mid = mid
                    now_ns = now_ns or self._now_ns()
                    sub.conn.send(encode(Out.TICK_BY_TICK, sub.req_id, 4, now_ns // NS, mid))
            if sub.kind == "BidAsk" and not sub.silent:
                now_ns = now_ns or self._now_ns()
                sub.conn.send(
                    encode(
                        Out.TICK_BY_TICK,
                        sub.req_id,
                        3,
                        now_ns // NS,
                        book.px[1][0] / 100,
                        book.px[0][0] / 100,
                        book.sz[1][0],
                        book.sz[0][0],
                        0,
                    )
                )

    def _on_trade(self, price_c: int, size: int, aggressor: int) -> None:
        now_ns = self._now_ns()
        book = self.book
        cols = self.live
        cols[0].append(now_ns)
        cols[1].append(price_c)
        cols[2].append(size)
        cols[3].append(aggressor)
        bid = book.px[1][0] if book.px[1] else price_c - 1
        ask = book.px[0][0] if book.px[0] else price_c + 1
        cols[4].append(min(bid, price_c) if aggressor < 0 else min(bid, price_c - 1))
        cols[5].append(max(ask, price_c) if aggressor > 0 else max(ask, price_c + 1))
        self.volume += size
        self.notional_c += price_c * size
        self.last_c = price_c
        self.last_size = size
        new_high = price_c > self.high_c
        new_low = self.low_c == 0 or price_c < self.low_c
        if new_high:
            self.high_c = price_c
        if new_low:
            self.low_c = price_c
        self.orders_dirty = True
        for sub in self.quote_subs:
            if sub.silent:
                continue
            out = sub.conn.out.append
            out(_tick_price(sub.req_id, 4, price_c, size))
            out(_tick_size(sub.req_id, 8, self.volume))
            if new_high:
                out(_tick_price(sub.req_id, 6, price_c, 0))
            if new_low:
                out(_tick_price(sub.req_id, 7, price_c, 0))
            if sub.rt_volume:
                vwap = self.notional_c / self.volume / 100
                text = (
                    f"{price_c / 100};{size};{now_ns // 1_000_000};{self.volume};{vwap:.6f};false"
                )
                out(encode(Out.TICK_STRING, 6, sub.req_id, 48, text).decode("latin-1"))
        for sub in self.tbt_subs:
            if sub.kind in ("AllLast", "Last") and not sub.silent:
                sub.conn.send(
                    encode(
                        Out.TICK_BY_TICK,
                        sub.req_id,
                        2 if sub.kind == "AllLast" else 1,
                        now_ns // NS,
                        price_c / 100,
                        size,
                        0,
                        self.ticker.primary_exchange,
                        "",
                    )
                )

    # -- whole-view messages ---------------------------------------------------------------
    def depth_snapshot(self, sub: DepthSub) -> str:
        """Inserts for every visible row (after a subscription starts or a 317 reset)."""
        out: list[str] = []
        book = self.book
        for side in (BookSide.ASK, BookSide.BID):
            for position in range(min(sub.rows, len(book.px[side]))):
                out.append(
                    sub.encode(position, 0, side, book.px[side][position], book.sz[side][position])
                )
        return "".join(out)

    def quote_snapshot(self, req_id: int) -> str:
        book = self.book
        self._bid_c, self._ask_c = book.px[1][0], book.px[0][0]
        out = [
            _tick_price(req_id, 1, book.px[1][0], book.sz[1][0]),
            _tick_price(req_id, 2, book.px[0][0], book.sz[0][0]),
        ]
        if self.last_c:
            out.append(_tick_price(req_id, 4, self.last_c, self.last_size))
        if self.high_c:
            out.append(_tick_price(req_id, 6, self.high_c, 0))
            out.append(_tick_price(req_id, 7, self.low_c, 0))
        out.append(_tick_price(req_id, 9, self.prev_close_c, 0))
        out.append(_tick_size(req_id, 8, self.volume))
        return "".join(out)


def _tick_price(req_id: int, tick_type: int, price_c: int, size: int) -> str:
    price = _PRICES.get(price_c) or _price(price_c)
    return frame_text(f"1\x006\0{req_id}\0{tick_type}\0{price}\0{size}\x000\0")


def _tick_size(req_id: int, tick_type: int, size: int) -> str:
    return frame_text(f"2\x006\0{req_id}\0{tick_type}\0{size}\0")


def discard(items: list[Any], item: Any) -> None:
    """Remove a subscription from a feed's list if it is still there."""
    with contextlib.suppress(ValueError):
        items.remove(item)
