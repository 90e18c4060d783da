"""The simulated gateway: an asyncio TCP server speaking the TWS API at version 178.

Owns sockets, sessions, subscriptions, the market engine's timer and faults. Market logic
lives in `market.py` (live book), `history.py` (tapes and bars), `orders.py` (fills) and
`scanner.py` (ranking); message layouts in `messages.py`. `SimServer` runs on a caller's
event loop; `SimThread` runs one on a background thread for blocking callers (tests).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from ibdesk.calendar import NS, Session, SessionCalendar, parse_clock, to_et, xnys
from ibdesk.config import Settings
from ibdesk.domain.book import BookSide, DepthOp
from ibdesk.ib.pacing import IB_PACING_RULES, PacingLedger, PacingRules
from ibdesk.sim import messages as msg
from ibdesk.sim.history import (
    BarRequest,
    BarSet,
    Tape,
    TapeModel,
    aggregate,
    bin_edges,
    build_bars,
    format_bar_time,
)
from ibdesk.sim.market import Aggressor, BookRows, LiveBook
from ibdesk.sim.orders import Blotter, Notice, OrderError, OrderType, SimOrder
from ibdesk.sim.protocol import (
    API_PREFIX,
    SERVER_VERSION,
    FieldReader,
    FrameReader,
    HandshakeError,
    In,
    Out,
    encode,
    negotiate,
    parse_version_offer,
)
from ibdesk.sim.scanner import ScanRequest, ScanRow, rank
from ibdesk.sim.universe import Ticker, lookup, select

log = logging.getLogger("ibdesk.sim")
T = TypeVar("T")

NO_SECURITY = "No security definition has been found for the request"
PACING_TEXT = (
    "Historical Market Data Service error message:Historical data request pacing violation"
)
FARM_OK = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)
MARKET_MAKERS = ("NSDQ", "ARCA", "BATS", "EDGX", "IEX", "MEMX")
MAX_EVENTS_PER_TICK = 20_000


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything a sim run depends on; `events_per_s` is book events per active symbol."""

    host: str = "127.0.0.1"
    port: int = 4002
    seed: int = 7
    clock: str = "now"
    speed: float = 1.0
    depth_cap: int = 3
    symbols: tuple[str, ...] = ()
    pacing: PacingRules = IB_PACING_RULES
    events_per_s: float = 50.0
    max_msgs_per_s: int = 50
    accounts: tuple[str, ...] = ("SIM0001",)
    tick_interval_s: float = 0.01
    bar_update_interval_s: float = 1.0
    scanner_interval_s: float = 5.0
    starting_cash_usd: float = 100_000.0

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> SimConfig:
        """A config whose seed and clock default to IBDESK_SIM_SEED / IBDESK_SIM_CLOCK, for
        every command that starts a sim (`ibdesk sim`, `run --sim`, `record-depth --sim`)."""
        fields: dict[str, Any] = {
            "seed": settings.ibdesk_sim_seed,
            "clock": settings.ibdesk_sim_clock,
        }
        fields.update(overrides)
        return cls(**fields)


class SimClock:
    """Simulated time: starts at the configured clock and advances at `speed`."""

    def __init__(self, origin_ns: int, speed: float) -> None:
        self.origin_ns = origin_ns
        self.speed = speed
        self._mono0 = time.monotonic()

    def now_ns(self) -> int:
        return self.origin_ns + int((time.monotonic() - self._mono0) * self.speed * NS)


# -- subscriptions ---------------------------------------------------------------------------
@dataclass(slots=True, eq=False)
class DepthSub:
    """A depth subscription; its message pieces are precomputed (this is the hot path)."""

    conn: Connection
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
    conn: Connection
    req_id: int
    rt_volume: bool
    silent: bool = False


@dataclass(slots=True, eq=False)
class TickByTickSub:
    conn: Connection
    req_id: int
    kind: str
    silent: bool = False
    last_mid: float = 0.0


@dataclass(slots=True, eq=False)
class BarSub:
    conn: Connection
    req_id: int
    request: BarRequest
    format_date: int
    last_sent: tuple[Any, ...] = ()
    silent: bool = False


@dataclass(slots=True, eq=False)
class ScanSub:
    conn: Connection
    req_id: int
    request: ScanRequest


class Market:
    """One symbol's live state: its book, the live tape, stats and the subscribers."""

    def __init__(self, sim: SimServer, ticker: Ticker) -> None:
        self.sim = sim
        self.ticker = ticker
        model = sim.model
        self.session: Session = sim.calendar.session(sim.current_index)
        self.prev_close_c = model.prev_close_c(ticker, self.session.index)
        origin = sim.clock.origin_ns
        history = model.tape(ticker, self.session).between(self.session.ext_open_ns, origin)
        self.history = history
        last = int(history.price_c[-1]) if len(history) else self.prev_close_c
        self.volume = int(history.size.sum())
        self.high_c = int(history.price_c.max()) if len(history) else 0
        self.low_c = int(history.price_c.min()) if len(history) else 0
        self.last_c = last
        self.last_size = int(history.size[-1]) if len(history) else 0
        self.notional_c = int((history.price_c * history.size).sum())
        seed = (sim.config.seed * 1_000_003 + ticker.con_id) & 0x7FFFFFFF
        self.book = LiveBook(last, seed, small_cap=ticker.is_small_cap)
        self.book.on_change = self._on_change
        self.book.on_trade = self._on_trade
        # live tape columns (ts, price, size, aggressor, bid, ask): compact 8-byte arrays
        self.live: list[array[int]] = [array("q") for _ in range(6)]
        self.depth_subs: list[DepthSub] = []
        self.quote_subs: list[QuoteSub] = []
        self.tbt_subs: list[TickByTickSub] = []
        self.bar_subs: list[BarSub] = []
        self.pending = 0.0
        self.orders_dirty = False
        self._bid_c = self.book.best_bid_c
        self._ask_c = self.book.best_ask_c

    @property
    def active(self) -> bool:
        return bool(
            self.depth_subs or self.quote_subs or self.tbt_subs or self.bar_subs
        ) or self.sim.blotter.has_working(self.ticker.symbol)

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
        origin = self.sim.clock.origin_ns
        hist = self.sim.model.tape(self.ticker, session)
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
                    now_ns = now_ns or self.sim.clock.now_ns()
                    sub.conn.send(encode(Out.TICK_BY_TICK, sub.req_id, 4, now_ns // NS, mid))
            if sub.kind == "BidAsk" and not sub.silent:
                now_ns = now_ns or self.sim.clock.now_ns()
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
        now_ns = self.sim.clock.now_ns()
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


@dataclass(frozen=True, slots=True)
class ContractRef:
    con_id: int
    symbol: str
    sec_type: str
    exchange: str
    primary_exchange: str
    currency: str


def read_contract(reader: FieldReader) -> ContractRef:
    """The 12-field contract block: conId, symbol, secType, lastTradeDate, strike, right,
    multiplier, exchange, primaryExchange, currency, localSymbol, tradingClass."""
    con_id = reader.int()
    symbol = reader.str()
    sec_type = reader.str()
    reader.skip(4)
    exchange = reader.str()
    primary = reader.str()
    currency = reader.str()
    local_symbol = reader.str()
    reader.skip(1)
    return ContractRef(con_id, symbol or local_symbol, sec_type, exchange, primary, currency)


class ConnState:
    PREFIX = 0
    VERSION = 1
    START_API = 2
    READY = 3
    CLOSED = 4


class Connection(asyncio.Protocol):
    """One client socket: handshake, request dispatch and its subscriptions."""

    def __init__(self, sim: SimServer) -> None:
        self.sim = sim
        self.state = ConnState.PREFIX
        self.reader = FrameReader()
        self.out: list[str] = []
        self.transport: asyncio.Transport | None = None
        self.client_id: int | None = None
        self.version = 0
        self.depth: dict[int, tuple[Market, DepthSub]] = {}
        self.quotes: dict[int, tuple[Market, QuoteSub]] = {}
        self.tbt: dict[int, tuple[Market, TickByTickSub]] = {}
        self.bars: dict[int, tuple[Market, BarSub]] = {}
        self.scans: dict[int, ScanSub] = {}
        self.account_updates = False
        self.positions_sub = False
        self.pacing = PacingLedger(sim.config.pacing)
        self._msg_times: deque[float] = deque()

    # -- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.sim.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = ConnState.CLOSED
        self.sim.drop_connection(self)

    def data_received(self, data: bytes) -> None:
        try:
            self._receive(data)
        except HandshakeError as exc:
            log.info("refusing client: %s", exc)
            self.close()
            return
        self.flush()

    def _receive(self, data: bytes) -> None:
        if self.state == ConnState.PREFIX:
            self.reader.feed_raw(data)
            taken = self.reader.take_prefix(API_PREFIX)
            if taken is None:
                return
            if not taken:
                raise HandshakeError("client did not start with API\\0")
            self.state = ConnState.VERSION
            data = b""
        for fields in self.reader.feed(data):
            if self.state == ConnState.CLOSED:
                return
            if self.state == ConnState.VERSION:
                self._handshake(fields)
            elif self.state == ConnState.START_API:
                self._start_api(fields)
            elif self.state == ConnState.READY:
                self._dispatch(fields)

    def _handshake(self, fields: list[str]) -> None:
        offer = parse_version_offer(fields[0] if fields else "")
        self.version = negotiate(offer)
        now = to_et(self.sim.clock.now_ns()).strftime("%Y%m%d %H:%M:%S") + " US/Eastern"
        self.send(encode(self.version, now))
        self.state = ConnState.START_API

    def _start_api(self, fields: list[str]) -> None:
        if not fields or fields[0] != str(int(In.START_API)):
            return
        reader = FieldReader(fields)
        reader.skip(1)
        client_id = reader.int()
        if client_id in self.sim.client_ids:
            self.send(
                msg.error(
                    -1,
                    326,
                    "Unable to connect as the client id is already in use. "
                    "Retry with a unique client id.",
                )
            )
            self.flush()
            self.close()
            return
        self.client_id = client_id
        self.sim.client_ids[client_id] = self
        self.state = ConnState.READY
        self.send(encode(Out.MANAGED_ACCTS, 1, ",".join(self.sim.config.accounts)))
        self.send(encode(Out.NEXT_VALID_ID, 1, self.sim.next_order_id))
        for code, text in FARM_OK:
            self.send(msg.error(-1, code, text))

    def _dispatch(self, fields: list[str]) -> None:
        now = time.monotonic()
        times = self._msg_times
        while times and now - times[0] >= 1.0:
            times.popleft()
        if len(times) >= self.sim.config.max_msgs_per_s:
            self.send(
                msg.error(
                    -1,
                    100,
                    f"Max rate of messages per second has been exceeded:max="
                    f"{self.sim.config.max_msgs_per_s} rec={len(times) + 1} (1)",
                )
            )
            return
        times.append(now)
        try:
            msg_id = int(fields[0])
        except (ValueError, IndexError):
            return
        handler = self.sim.handlers.get(msg_id)
        if handler is None:
            log.debug("ignoring message %s", fields[:3])
            return
        try:
            handler(self, FieldReader(fields))
        except Exception:  # a request the sim cannot parse: tell the client, keep the session
            log.exception("cannot handle message %s", fields[:4])
            self.error(-1, 320, f"Error reading request: message id {msg_id}")

    # -- output ----------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        """Queue framed bytes (kept as latin-1 text so hot paths append str, see `frame_text`)."""
        self.out.append(data.decode("latin-1"))

    def send_text(self, framed: str) -> None:
        self.out.append(framed)

    def error(self, req_id: int, code: int, text: str) -> None:
        self.send(msg.error(req_id, code, text))

    def flush(self) -> None:
        """One write per batch: every queued message is encoded at once."""
        if self.out and self.transport is not None and not self.transport.is_closing():
            self.transport.write("".join(self.out).encode("latin-1"))
        self.out.clear()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self.state = ConnState.CLOSED


Handler = Callable[[Connection, FieldReader], None]


class SimServer:
    """The simulated gateway on an asyncio loop. `await start()`, then `await stop()`."""

    def __init__(self, config: SimConfig = SimConfig()) -> None:
        self.config = config
        self.universe = {t.symbol: t for t in select(list(config.symbols) or None)}
        self.calendar: SessionCalendar = xnys()
        self.clock = SimClock(parse_clock(config.clock), config.speed)
        self.current_index = self.calendar.latest_started(self.clock.origin_ns)
        self.model = TapeModel(config.seed, self.calendar, self.current_index)
        self.markets: dict[str, Market] = {}
        self.connections: set[Connection] = set()
        self.client_ids: dict[int, Connection] = {}
        self.blotter = Blotter()
        self.next_order_id = 1
        self.depth_in_use = 0
        self.host = config.host
        self.port = config.port
        self.handlers: dict[int, Handler] = _handlers()
        self.farm_broken = False
        self.connectivity_lost_flag = False
        self.paused = False
        self.accepting = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._engine: asyncio.Task[None] | None = None
        self._restart: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        await self._listen(self.port)
        self._engine = asyncio.get_running_loop().create_task(self._run_engine())

    async def _listen(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Connection(self), self.config.host, port, reuse_address=True
        )
        sockname = self._server.sockets[0].getsockname()
        self.host, self.port = sockname[0], sockname[1]
        self.accepting.set()

    async def stop(self) -> None:
        for task in (self._engine, self._restart):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._close_all()

    async def _close_all(self) -> None:
        self.accepting.clear()
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.flush()
            conn.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def serve_forever(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    # -- markets --------------------------------------------------------------------------
    def ticker(self, symbol: str) -> Ticker | None:
        ticker = lookup(symbol)
        return ticker if ticker is not None and ticker.symbol in self.universe else None

    def market(self, symbol: str) -> Market:
        market = self.markets.get(symbol)
        if market is None:
            ticker = self.ticker(symbol)
            if ticker is None:
                raise KeyError(symbol)
            market = Market(self, ticker)
            self.markets[symbol] = market
        return market

    def resolve(self, ref: ContractRef) -> Ticker | None:
        if ref.sec_type and ref.sec_type.upper() != "STK":
            return None
        if ref.currency and ref.currency.upper() != "USD":
            return None
        if ref.con_id:
            for ticker in self.universe.values():
                if ticker.con_id == ref.con_id:
                    return ticker
            return None
        return self.ticker(ref.symbol) if ref.symbol else None

    async def _run_engine(self) -> None:
        loop = asyncio.get_running_loop()
        config = self.config
        last = loop.time()
        next_bars = last + config.bar_update_interval_s
        next_scan = last + config.scanner_interval_s
        busy_s = 0.0
        while True:
            # a loop that is behind (busy for a whole tick) only yields, so it catches up
            await asyncio.sleep(max(0.0, config.tick_interval_s - busy_s))
            now = loop.time()
            elapsed = now - last
            last = now
            self.step_markets(elapsed)
            if now >= next_bars:
                next_bars = now + config.bar_update_interval_s
                self._update_bars()
            if now >= next_scan:
                next_scan = now + config.scanner_interval_s
                self._update_scans()
            self.flush_all()
            busy_s = loop.time() - now

    def step_markets(self, elapsed_s: float) -> None:
        """Advance every active market by its share of events for `elapsed_s` wall seconds."""
        if self.connectivity_lost_flag or self.paused:
            return
        rate = self.config.events_per_s * self.config.speed
        for market in list(self.markets.values()):
            if not market.active:
                continue
            market.pending += rate * elapsed_s
            count = int(market.pending)
            market.pending -= count
            if count > MAX_EVENTS_PER_TICK:  # behind (a slow loop): drop the backlog
                count = MAX_EVENTS_PER_TICK
                market.pending = 0.0
            market.book.run(count)
            if market.orders_dirty or self.blotter.has_working(market.ticker.symbol):
                market.orders_dirty = False
                self._match_orders(market)

    def flush_all(self) -> None:
        for conn in self.connections:
            if conn.out:
                conn.flush()

    def drop_connection(self, conn: Connection) -> None:
        self.connections.discard(conn)
        if conn.client_id is not None and self.client_ids.get(conn.client_id) is conn:
            del self.client_ids[conn.client_id]
        self.cancel_subscriptions(conn)

    def cancel_subscriptions(self, conn: Connection) -> None:
        for market, depth_sub in conn.depth.values():
            _remove(market.depth_subs, depth_sub)
            self.depth_in_use -= 1
        for market, quote_sub in conn.quotes.values():
            _remove(market.quote_subs, quote_sub)
        for market, tbt_sub in conn.tbt.values():
            _remove(market.tbt_subs, tbt_sub)
        for market, bar_sub in conn.bars.values():
            _remove(market.bar_subs, bar_sub)
        conn.depth.clear()
        conn.quotes.clear()
        conn.tbt.clear()
        conn.bars.clear()
        conn.scans.clear()

    # -- history ---------------------------------------------------------------------------
    def bars(self, market: Market, request: BarRequest, live: Tape) -> BarSet:
        """A request's bars; thread-safe given a `live` snapshot taken on the loop."""
        return build_bars(self.calendar, request, lambda s: market.tape_for(s, live))

    def _update_bars(self) -> None:
        now_ns = self.clock.now_ns()
        for market in self.markets.values():
            if not market.bar_subs:
                continue
            live = market.live_tape()
            for sub in market.bar_subs:
                if sub.silent:
                    continue
                update = self._current_bar(market, sub, live, now_ns)
                if update is not None and update != sub.last_sent:
                    sub.last_sent = update
                    sub.conn.send(msg.historical_update(sub.req_id, *update))

    def _current_bar(
        self, market: Market, sub: BarSub, live: Tape, now_ns: int
    ) -> tuple[Any, ...] | None:
        request = sub.request
        index = self.calendar.latest_started(now_ns, request.use_rth)
        if index < 0:
            return None
        session = self.calendar.session(index)
        edges = bin_edges(session, request.bar_size, request.use_rth, 0, now_ns + 1)
        if len(edges) < 2:
            return None
        edges = edges[-2:]
        tape = market.tape_for(session, live).between(int(edges[0]), int(edges[1]))
        bars = aggregate(tape, edges, request.what)
        if not len(bars):
            return None
        label = (
            session.day.strftime("%Y%m%d")
            if not request.bar_size.is_intraday
            else format_bar_time(int(bars.start_ns[0]), sub.format_date)
        )
        return (
            label,
            float(bars.open[0]),
            float(bars.high[0]),
            float(bars.low[0]),
            float(bars.close[0]),
            int(bars.volume[0]),
            float(bars.wap[0]),
            int(bars.count[0]),
        )

    # -- scanner ---------------------------------------------------------------------------
    def scan_rows(self) -> list[ScanRow]:
        now_ns = self.clock.now_ns()
        session = self.calendar.session(self.current_index)
        rows: list[ScanRow] = []
        for ticker in self.universe.values():
            market = self.markets.get(ticker.symbol)
            if market is not None:
                last_c, volume, prev_c = market.last_c, market.volume, market.prev_close_c
            else:
                tape = self.model.tape(ticker, session).between(session.ext_open_ns, now_ns)
                prev_c = self.model.prev_close_c(ticker, session.index)
                last_c = int(tape.price_c[-1]) if len(tape) else prev_c
                volume = int(tape.size.sum())
            elapsed = min(
                max(now_ns - session.ext_open_ns, NS), session.ext_close_ns - session.ext_open_ns
            )
            day_fraction = elapsed / (session.ext_close_ns - session.ext_open_ns)
            rows.append(
                ScanRow(
                    ticker,
                    last_c / 100,
                    prev_c / 100,
                    volume,
                    ticker.adv_shares * max(day_fraction, 0.01),
                )
            )
        return rows

    def _update_scans(self) -> None:
        if not any(conn.scans for conn in self.connections):
            return
        rows = self.scan_rows()
        for conn in self.connections:
            for sub in conn.scans.values():
                conn.send(msg.scanner_data(sub.req_id, rank(rows, sub.request)))

    # -- orders ----------------------------------------------------------------------------
    def _liquidity(self, market: Market) -> Callable[[int, int, int | None], list[tuple[int, int]]]:
        return lambda aggressor, quantity, limit_c: market.book.take(aggressor, quantity, limit_c)

    def _match_orders(self, market: Market) -> None:
        notices = self.blotter.match(
            market.ticker.symbol, self._liquidity(market), market.last_c, self.clock.now_ns()
        )
        self.notify(notices)

    def notify(self, notices: list[Notice]) -> None:
        for notice in notices:
            order = notice.order
            conn = self.client_ids.get(order.client_id)
            if conn is None:
                continue
            if notice.execution is None:
                conn.send(msg.open_order(_order_view(order)))
                conn.send(_status(order))
                continue
            conn.send(msg.execution_report(-1, notice.execution))
            conn.send(msg.open_order(_order_view(order)))
            conn.send(_status(order))
        if not any(n.execution is not None for n in notices):
            return
        account = self.config.accounts[0]
        for conn in self.connections:
            if conn.account_updates:
                self._send_portfolio(conn)
            if conn.positions_sub:
                for notice in notices:
                    if notice.execution is None:
                        continue
                    symbol = notice.order.ticker.symbol
                    pos = self.blotter.positions[symbol]
                    conn.send(
                        msg.position(
                            account, notice.order.ticker, float(pos.quantity), pos.avg_cost
                        )
                    )

    def _send_portfolio(self, conn: Connection) -> None:
        account = self.config.accounts[0]
        for key, value, currency in self.account_values():
            conn.send(encode(Out.ACCT_VALUE, 2, key, value, currency, account))
        for symbol, pos in self.blotter.positions.items():
            market = self.market(symbol)
            conn.send(
                msg.portfolio_value(
                    account,
                    market.ticker,
                    pos.quantity,
                    market.last_c / 100,
                    pos.avg_cost,
                    pos.realized_usd,
                )
            )
        conn.send(encode(Out.ACCT_UPDATE_TIME, 1, to_et(self.clock.now_ns()).strftime("%H:%M")))

    def account_values(self) -> list[tuple[str, str, str]]:
        cash = self.config.starting_cash_usd
        gross = 0.0
        unrealized = 0.0
        realized = 0.0
        for symbol, pos in self.blotter.positions.items():
            price = self.market(symbol).last_c / 100
            cash -= pos.quantity * pos.avg_cost
            gross += abs(pos.quantity) * price
            unrealized += (price - pos.avg_cost) * pos.quantity
            realized += pos.realized_usd
        cash += realized
        net = cash + sum(
            p.quantity * self.market(s).last_c / 100 for s, p in self.blotter.positions.items()
        )
        money = {
            "NetLiquidation": net,
            "TotalCashValue": cash,
            "BuyingPower": net * 4,
            "AvailableFunds": net - gross * 0.25,
            "ExcessLiquidity": net - gross * 0.25,
            "GrossPositionValue": gross,
            "EquityWithLoanValue": net,
            "InitMarginReq": gross * 0.25,
            "MaintMarginReq": gross * 0.25,
            "UnrealizedPnL": unrealized,
            "RealizedPnL": realized,
        }
        values = [(k, f"{v:.2f}", "USD") for k, v in money.items()]
        values.append(("AccountType", "INDIVIDUAL", ""))
        return values

    # -- faults (call on the loop) ---------------------------------------------------------
    def broadcast_error(self, code: int, text: str) -> None:
        for conn in list(self.connections):
            if conn.state == ConnState.READY:
                conn.error(-1, code, text)
        self.flush_all()

    def _all_subs(self, symbol: str | None = None) -> list[Any]:
        subs: list[Any] = []
        for market in self.markets.values():
            if symbol is None or market.ticker.symbol == symbol:
                subs += market.depth_subs + market.quote_subs + market.tbt_subs + market.bar_subs
        return subs

    def silence(self, symbol: str | None = None, silent: bool = True) -> None:
        """A silent feed: matching subscriptions stop sending, with no error (or resume)."""
        for sub in self._all_subs(symbol):
            sub.silent = silent

    def connectivity_lost(self) -> None:
        self.connectivity_lost_flag = True
        self.silence(None, True)
        self.broadcast_error(1100, "Connectivity between IB and Trader Workstation has been lost.")

    def connectivity_restored(self, data_kept: bool = True) -> None:
        self.connectivity_lost_flag = False
        if data_kept:
            self.silence(None, False)
            self.broadcast_error(
                1102,
                "Connectivity between IB and Trader Workstation has been restored - "
                "data maintained.",
            )
            return
        for conn in list(self.connections):
            self.cancel_subscriptions(conn)
        self.broadcast_error(
            1101, "Connectivity between IB and Trader Workstation has been restored - data lost."
        )

    def set_farm(self, ok: bool) -> None:
        """2103 (broken: feeds go quiet) or 2104 (OK: feeds resume)."""
        self.farm_broken = not ok
        self.silence(None, not ok)
        if ok:
            self.broadcast_error(2104, "Market data farm connection is OK:usfarm")
        else:
            self.broadcast_error(2103, "Market data farm connection is broken:usfarm")

    def depth_fault(self, code: int, symbol: str | None = None) -> None:
        """316 halts matching depth subscriptions (they end); 317 resets them (book resent)."""
        for market in list(self.markets.values()):
            if symbol is not None and market.ticker.symbol != symbol:
                continue
            for sub in list(market.depth_subs):
                if code == 316:
                    sub.conn.error(
                        sub.req_id, 316, "Market depth data has been HALTED. Please re-subscribe."
                    )
                    _remove(market.depth_subs, sub)
                    sub.conn.depth.pop(sub.req_id, None)
                    self.depth_in_use -= 1
                else:
                    sub.conn.error(
                        sub.req_id,
                        317,
                        "Market depth data has been RESET. Please "
                        "empty deep book contents before applying any new entries.",
                    )
                    sub.conn.send_text(market.depth_snapshot(sub))
        self.flush_all()

    def restart(self, down_s: float) -> asyncio.Task[None]:
        """A daily restart: every socket closes, connections are refused for `down_s`."""
        self._restart = asyncio.get_running_loop().create_task(self._do_restart(down_s))
        return self._restart

    async def _do_restart(self, down_s: float) -> None:
        port = self.port
        await self._close_all()
        await asyncio.sleep(down_s)
        await self._listen(port)

    # -- ground truth ----------------------------------------------------------------------
    def book_rows(self, symbol: str, rows: int) -> BookRows:
        return self.market(symbol).book.rows(rows)

    def session_tape(self, symbol: str, day_index: int | None = None) -> Tape:
        """The tape of a session (default: the clock's session): history, then live trades."""
        market = self.market(symbol)
        session = self.calendar.session(self.current_index if day_index is None else day_index)
        return market.tape_for(session, market.live_tape())


def _remove(items: list[Any], item: Any) -> None:
    with contextlib.suppress(ValueError):
        items.remove(item)


def _order_view(order: SimOrder) -> msg.OrderView:
    return msg.OrderView(
        order.order_id,
        order.client_id,
        order.perm_id,
        order.ticker,
        order.action,
        float(order.quantity),
        str(order.order_type),
        None if order.lmt_c is None else order.lmt_c / 100,
        None if order.aux_c is None else order.aux_c / 100,
        order.tif,
        order.oca_group,
        order.account,
        order.order_ref,
        order.parent_id,
        order.oca_type,
        order.outside_rth,
        order.transmit,
        str(order.status),
    )


def _status(order: SimOrder) -> bytes:
    return msg.order_status(
        order.order_id,
        str(order.status),
        float(order.filled),
        float(order.remaining),
        order.avg_price,
        order.perm_id,
        order.parent_id,
        order.last_fill_c / 100,
        order.client_id,
    )


# -- request handlers --------------------------------------------------------------------------
def _handlers() -> dict[int, Handler]:
    from ibdesk.sim import handlers

    return handlers.table()


# -- blocking wrapper ----------------------------------------------------------------------------
class SimThread:
    """A `SimServer` on a background thread with its own loop, for blocking callers.

    `start()` returns once the port accepts connections; `.host`/`.port` say where. Every
    fault and ground-truth method runs on the sim's loop and returns its result.
    """

    def __init__(self, config: SimConfig = SimConfig(port=0)) -> None:
        self.config = config
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="ibdesk-sim", daemon=True
        )
        self.server: SimServer | None = None

    def start(self) -> SimThread:
        self._thread.start()

        async def make() -> SimServer:
            server = SimServer(self.config)
            await server.start()
            return server

        self.server = self._run(make())
        return self

    def stop(self) -> None:
        if self.server is not None:
            self._run(self.server.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> SimThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def sim(self) -> SimServer:
        assert self.server is not None, "SimThread.start() first"
        return self.server

    @property
    def host(self) -> str:
        return self.sim.host

    @property
    def port(self) -> int:
        return self.sim.port

    def _run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start a coroutine on the sim's loop (e.g. `faults.run_schedule`); returns at once."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the sim's loop (consistent with the stream) and return its result."""

        async def run() -> T:
            result = fn()
            self.sim.flush_all()
            return result

        return self._run(run())

    # faults
    def connectivity_lost(self) -> None:
        self.call(self.sim.connectivity_lost)

    def connectivity_restored(self, data_kept: bool = True) -> None:
        self.call(lambda: self.sim.connectivity_restored(data_kept))

    def farm_broken(self) -> None:
        self.call(lambda: self.sim.set_farm(False))

    def farm_ok(self) -> None:
        self.call(lambda: self.sim.set_farm(True))

    def depth_halt(self, symbol: str | None = None) -> None:
        self.call(lambda: self.sim.depth_fault(316, symbol))

    def depth_reset(self, symbol: str | None = None) -> None:
        self.call(lambda: self.sim.depth_fault(317, symbol))

    def silence(self, symbol: str | None = None, silent: bool = True) -> None:
        self.call(lambda: self.sim.silence(symbol, silent))

    def restart(self, down_s: float) -> None:
        """Close every socket and refuse connections for `down_s`; returns at once."""
        self.call(lambda: self.sim.restart(down_s))

    def wait_accepting(self, timeout_s: float = 30.0) -> None:
        async def wait() -> None:
            while self.sim._restart is not None and not self.sim._restart.done():
                await asyncio.wait_for(asyncio.shield(self.sim._restart), timeout_s)
            await asyncio.wait_for(self.sim.accepting.wait(), timeout_s)

        self._run(wait(), timeout_s + 1)

    def pause(self) -> None:
        """Freeze every market (no events) so a test can compare a settled stream with truth."""
        self.call(lambda: setattr(self.sim, "paused", True))

    def resume(self) -> None:
        self.call(lambda: setattr(self.sim, "paused", False))

    # ground truth
    def book(self, symbol: str, rows: int = 10) -> BookRows:
        return self.call(lambda: self.sim.book_rows(symbol, rows))

    def tape(self, symbol: str) -> Tape:
        return self.call(lambda: self.sim.session_tape(symbol))

    def now_ns(self) -> int:
        return self.sim.clock.now_ns()


__all__ = [
    "SERVER_VERSION",
    "Aggressor",
    "BookRows",
    "DepthOp",
    "OrderError",
    "OrderType",
    "SimConfig",
    "SimServer",
    "SimThread",
]
