"""One client session of the sim: the socket protocol (handshake, start API, dispatch with
IB's message-rate limit), its subscriptions, and what it needs from the server (`Gateway`).

Request handlers (`handlers.py`) take a `Connection` and reach the server's state only
through `Connection.sim`, typed as `Gateway`, so they never import the server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from ibdesk.calendar import SessionCalendar, to_et
from ibdesk.ib.pacing import PacingLedger
from ibdesk.sim import messages as msg
from ibdesk.sim.config import SimConfig
from ibdesk.sim.history import BarRequest, BarSet, Tape
from ibdesk.sim.orders import Blotter, Notice
from ibdesk.sim.protocol import (
    API_PREFIX,
    FieldReader,
    FrameReader,
    HandshakeError,
    In,
    Out,
    encode,
    negotiate,
    parse_version_offer,
)
from ibdesk.sim.scanner import ScanRow
from ibdesk.sim.subscriptions import BarSub, DepthSub, QuoteSub, ScanSub, SymbolFeed, TickByTickSub
from ibdesk.sim.universe import Ticker

log = logging.getLogger("ibdesk.sim")

FARM_OK = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)


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

    def __init__(self, sim: Gateway) -> None:
        self.sim = sim
        self.state = ConnState.PREFIX
        self.reader = FrameReader()
        self.out: list[str] = []
        self.transport: asyncio.Transport | None = None
        self.client_id: int | None = None
        self.version = 0
        self.depth: dict[int, tuple[SymbolFeed, DepthSub]] = {}
        self.quotes: dict[int, tuple[SymbolFeed, QuoteSub]] = {}
        self.tbt: dict[int, tuple[SymbolFeed, TickByTickSub]] = {}
        self.bars: dict[int, tuple[SymbolFeed, BarSub]] = {}
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
        now = to_et(self.sim.now_ns()).strftime("%Y%m%d %H:%M:%S") + " US/Eastern"
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
Liquidity = Callable[[int, int, int | None], list[tuple[int, int]]]


class Gateway(Protocol):
    """The server as its connections and request handlers see it (`server.SimServer`)."""

    config: SimConfig
    next_order_id: int
    depth_in_use: int

    @property
    def calendar(self) -> SessionCalendar: ...

    @property
    def blotter(self) -> Blotter: ...

    @property
    def connections(self) -> set[Connection]: ...

    @property
    def client_ids(self) -> dict[int, Connection]: ...

    @property
    def handlers(self) -> Mapping[int, Handler]: ...

    @property
    def farm_broken(self) -> bool: ...

    def now_ns(self) -> int: ...

    def resolve(self, ref: ContractRef) -> Ticker | None: ...

    def market(self, symbol: str) -> SymbolFeed: ...

    def bars(self, market: SymbolFeed, request: BarRequest, live: Tape) -> BarSet: ...

    def scan_rows(self) -> list[ScanRow]: ...

    def liquidity(self, market: SymbolFeed) -> Liquidity: ...

    def notify(self, notices: list[Notice]) -> None: ...

    def send_portfolio(self, conn: Connection) -> None: ...

    def account_values(self) -> list[tuple[str, str, str]]: ...

    def drop_connection(self, conn: Connection) -> None: ...
