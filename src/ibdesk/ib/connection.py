"""The one connection to IB every feature goes through: connect, stay alive, resubscribe.

Async-first wrapper over `ib_async.IB`:
- connect with retries and exponential backoff (tenacity; `CONNECTION_TIMEOUT`,
  `RETRY_ATTEMPTS`), auto-detecting the port (paper 4002 then 7497, live 4001 then 7496);
  a client id in use (error 326) moves to the next id;
- a subscription registry (market data, depth, tick-by-tick) owned here, so every
  subscription is re-established after a socket loss (reconnect with backoff until the
  gateway is back), 1101, 2103 -> 2104, 316 and a silent feed; 1102 keeps them; 317 (depth
  reset) keeps the stream, as IB documents, and tells consumers to empty the book;
- events for consumers (the recorder): a gap opens with its reason when data stops being
  trustworthy and closes when data flows again on the re-established subscription.

ib_async throttles outgoing requests to 45/s by itself, under IB's ~50 messages/s limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ib_async import IB, Contract, Ticker
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from ibdesk.config import Settings
from ibdesk.errors import GatewayUnavailableError, WorkFailedError
from ibdesk.ib import compat
from ibdesk.ib.errors import IbError
from ibdesk.ib.fastread import install_fast_reader
from ibdesk.ib.gateway import candidate_ports, unavailable_message
from ibdesk.ib.readiness import SIM_ACCOUNT_PREFIX
from ibdesk.ib.rowfeed import DepthUpdate, Route, RowFeed, TradeTick

log = logging.getLogger(__name__)
api_log = logging.getLogger("ibdesk.api")

MAX_CLIENT_ID_BUMPS = 16
STREAM_FARM_BROKEN = 2103
STREAM_FARM_OK = 2104


class SubscriptionKind(StrEnum):
    MARKET_DATA = "market_data"
    DEPTH = "depth"
    TICK_BY_TICK = "tick_by_tick"


class GapReason(StrEnum):
    """Why data stopped being trustworthy for a subscription."""

    DISCONNECTED = "disconnected"  # socket lost (e.g. the daily gateway restart)
    CONNECTIVITY_LOST = "connectivity_lost"  # 1100
    DATA_FARM_BROKEN = "data_farm_broken"  # 2103
    DEPTH_HALTED = "depth_halted"  # 316
    DEPTH_RESET = "depth_reset"  # 317
    SILENT_FEED = "silent_feed"  # nothing received for too long while the market is open


@dataclass(slots=True)
class Subscription:
    """A live request the application holds; `generation` grows on every (re)request."""

    key: str
    kind: SubscriptionKind
    contract: Contract
    num_rows: int = 0
    is_smart: bool = False
    generic_ticks: str = ""
    tick_type: str = ""
    ticker: Ticker | None = None
    generation: int = 0
    last_data_s: float = 0.0
    failed: IbError | None = None


@dataclass(frozen=True, slots=True)
class GapStarted:
    key: str
    reason: GapReason
    start_ns: int
    detail: str = ""


@dataclass(frozen=True, slots=True)
class GapEnded:
    key: str
    reason: GapReason
    start_ns: int
    end_ns: int


@dataclass(frozen=True, slots=True)
class Resubscribed:
    """The subscription was requested again: consumers restart its book from empty."""

    key: str
    generation: int
    reason: GapReason


@dataclass(frozen=True, slots=True)
class SubscriptionFailed:
    key: str
    error: IbError


@dataclass(frozen=True, slots=True)
class Reconnected:
    port: int
    client_id: int
    attempts: int


ConnectionEvent = GapStarted | GapEnded | Resubscribed | SubscriptionFailed | Reconnected
Listener = Callable[[ConnectionEvent], None]


DataEvent = DepthUpdate | TradeTick
DataListener = Callable[[Sequence[DataEvent]], None]


@dataclass(frozen=True, slots=True)
class ConnectionConfig:
    """Where and how to connect; build it with `from_settings`."""

    host: str
    ports: tuple[int, ...]
    client_id: int
    timeout_s: float
    retry_attempts: int
    readonly: bool = False
    reconnect: bool = True
    reconnect_max_delay_s: float = 1.0
    silent_after_s: float = 10.0
    watchdog_interval_s: float = 1.0

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        port: int | None = None,
        client_id: int | None = None,
        live: bool | None = None,
        readonly: bool = False,
        **overrides: Any,
    ) -> ConnectionConfig:
        ports = (port,) if port is not None else tuple(candidate_ports(settings, live))
        fields: dict[str, Any] = {
            "host": settings.ib_host,
            "ports": ports,
            "client_id": settings.ib_client_id if client_id is None else client_id,
            "timeout_s": settings.connection_timeout,
            "retry_attempts": settings.retry_attempts,
            "readonly": readonly,
        }
        return cls(**(fields | overrides))


class _ClientIdInUseError(Exception):
    pass


class _NotReachableError(Exception):
    pass


@dataclass(slots=True)
class _OpenGap:
    reason: GapReason
    start_ns: int
    awaiting_data: bool = False


@dataclass(slots=True)
class _State:
    listeners: list[Listener] = field(default_factory=list)
    data_listeners: list[DataListener] = field(default_factory=list)
    routes: dict[str, Route] = field(default_factory=dict)  # by subscription key
    gaps: dict[str, _OpenGap] = field(default_factory=dict)
    farm_broken: bool = False
    closing: bool = False
    reconnect_task: asyncio.Task[None] | None = None
    watchdog_task: asyncio.Task[None] | None = None


class IBConnection:
    """One ib_async connection plus the subscriptions the application holds on it."""

    def __init__(
        self,
        config: ConnectionConfig,
        *,
        market_open: Callable[[], bool] = lambda: True,
        wall_ns: Callable[[], int] = time.time_ns,
        monotonic_s: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.ib = IB()
        install_fast_reader(self.ib.client)
        self._feed = RowFeed(self.ib.client.decoder)
        arrived, processed = compat.tcp_data_hooks(self.ib.client)
        self._read_arrived: Callable[[], None] = arrived or _nothing
        self._read_processed: Callable[[], None] = processed or _nothing
        compat.set_tcp_data_hooks(self.ib.client, self._on_read_start, self._on_read_end)
        self.client_id = config.client_id
        self.port: int | None = None
        self.reconnects = 0
        self.subscriptions: dict[str, Subscription] = {}
        self._market_open = market_open
        self._wall_ns = wall_ns
        self._monotonic_s = monotonic_s
        self._state = _State()
        self._client_id_refused = asyncio.Event()
        self.ib.errorEvent += self._on_error
        self.ib.disconnectedEvent += self._on_disconnected
        self.ib.pendingTickersEvent += self._on_tickers

    # ---- lifecycle ------------------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        return self.ib.isConnected()

    @property
    def accounts(self) -> list[str]:
        return list(self.ib.managedAccounts())

    @property
    def is_sim(self) -> bool:
        """True when connected to an ibdesk sim (its accounts start with SIM)."""
        accounts = self.accounts
        return bool(accounts) and all(a.startswith(SIM_ACCOUNT_PREFIX) for a in accounts)

    def add_listener(self, listener: Listener) -> None:
        """Receive connection events (gaps, resubscriptions, failures, reconnects)."""
        self._state.listeners.append(listener)

    def add_data_listener(self, listener: DataListener) -> None:
        """Receive depth updates and trade prints as typed events, in arrival order.

        The listener gets one list per subscription and socket read (batches keep the hot
        path cheap). Depth and tick-by-tick subscriptions deliver here only: their messages
        are decoded past ib_async's Ticker (see `ibdesk.ib.rowfeed`), so `ticker.domBids`
        and `ticker.tickByTicks` stay empty.

        Data that arrived before a connection event is always delivered before that event.
        """
        self._state.data_listeners.append(listener)

    async def connect(self) -> None:
        """Connect with retries and backoff; raises GatewayUnavailableError naming the ports."""
        self._state.closing = False
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.config.retry_attempts + 1),
                wait=wait_exponential(multiplier=0.25, max=4.0),
                retry=retry_if_exception_type((_NotReachableError, TimeoutError, ConnectionError)),
                reraise=True,
            ):
                with attempt:
                    await self._connect_once()
        except (_NotReachableError, TimeoutError, ConnectionError):
            raise GatewayUnavailableError(
                unavailable_message(self.config.host, list(self.config.ports))
            ) from None
        self._state.watchdog_task = asyncio.get_running_loop().create_task(self._watchdog())

    async def _connect_once(self) -> None:
        refused = 0
        for port in self.config.ports:
            for _ in range(MAX_CLIENT_ID_BUMPS):
                try:
                    await self._connect_port(port)
                    return
                except _ClientIdInUseError:
                    log.warning(
                        "client id %s in use (326); trying %s", self.client_id, self.client_id + 1
                    )
                    self.client_id += 1
                except ConnectionRefusedError:
                    refused += 1
                    break
            else:
                raise WorkFailedError(
                    f"client ids {self.config.client_id}..{self.client_id} "
                    f"are all in use on port {port}"
                )
        raise _NotReachableError(f"refused on {refused} port(s)")

    async def _connect_port(self, port: int) -> None:
        refused = asyncio.Event()
        self._client_id_refused = refused
        connect = asyncio.ensure_future(
            self.ib.connectAsync(
                self.config.host,
                port,
                clientId=self.client_id,
                timeout=self.config.timeout_s,
                readonly=self.config.readonly,
            )
        )
        watch = asyncio.ensure_future(refused.wait())
        try:
            # IB answers a taken client id with 326 and closes the socket; ib_async would
            # only notice at its timeout, so stop waiting as soon as 326 arrives.
            await asyncio.wait({connect, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
        if refused.is_set():
            connect.cancel()
            with contextlib.suppress(BaseException):
                await connect
            self.ib.disconnect()
            raise _ClientIdInUseError
        try:
            connect.result()
        except (ConnectionError, TimeoutError, OSError) as exc:
            if isinstance(exc, ConnectionRefusedError):
                raise
            raise ConnectionError(str(exc)) from None
        self.port = port
        log.info(
            "connected to %s:%s as client %s (accounts %s)",
            self.config.host,
            port,
            self.client_id,
            ",".join(self.accounts),
        )

    async def close(self) -> None:
        """Disconnect for good: no reconnect, watchdog stopped, subscriptions dropped."""
        self._state.closing = True
        for task in (self._state.reconnect_task, self._state.watchdog_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self.ib.isConnected():
            for sub in list(self.subscriptions.values()):
                self._cancel(sub)
        self.subscriptions.clear()
        self.ib.disconnect()

    # ---- subscriptions ----------------------------------------------------------------------
    def subscribe_depth(
        self, contract: Contract, num_rows: int, *, is_smart: bool = False
    ) -> Subscription:
        key = f"depth:{contract.symbol}:{contract.exchange}"
        sub = Subscription(
            key, SubscriptionKind.DEPTH, contract, num_rows=num_rows, is_smart=is_smart
        )
        return self._register(sub)

    def subscribe_market_data(self, contract: Contract, generic_ticks: str = "") -> Subscription:
        key = f"mkt:{contract.symbol}:{contract.exchange}"
        sub = Subscription(key, SubscriptionKind.MARKET_DATA, contract, generic_ticks=generic_ticks)
        return self._register(sub)

    def subscribe_tick_by_tick(
        self, contract: Contract, tick_type: str = "AllLast"
    ) -> Subscription:
        key = f"tbt:{tick_type}:{contract.symbol}:{contract.exchange}"
        sub = Subscription(key, SubscriptionKind.TICK_BY_TICK, contract, tick_type=tick_type)
        return self._register(sub)

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscriptions.pop(sub.key, None)
        self._state.gaps.pop(sub.key, None)
        self._retire_route(sub)
        if self.ib.isConnected():
            self._cancel(sub)

    def _register(self, sub: Subscription) -> Subscription:
        if sub.key in self.subscriptions:
            return self.subscriptions[sub.key]
        self.subscriptions[sub.key] = sub
        self._request(sub)
        return sub

    def _request(self, sub: Subscription) -> None:
        sub.generation += 1
        sub.failed = None
        sub.last_data_s = self._monotonic_s()
        self._retire_route(sub)
        if sub.kind is SubscriptionKind.DEPTH:
            sub.ticker = self.ib.reqMktDepth(sub.contract, sub.num_rows, sub.is_smart)
        elif sub.kind is SubscriptionKind.MARKET_DATA:
            sub.ticker = self.ib.reqMktData(sub.contract, sub.generic_ticks)
        else:
            sub.ticker = self.ib.reqTickByTickData(sub.contract, sub.tick_type)
        if sub.kind is not SubscriptionKind.MARKET_DATA:  # decoded into rows: route its id
            req_id = compat.ticker_request_id(self.ib.wrapper, sub.ticker, _req_kind(sub))
            if req_id is None:
                raise WorkFailedError(f"ib_async filed no request id for {sub.key}")
            symbol = sub.contract.symbol
            self._state.routes[sub.key] = (
                self._feed.route_depth(req_id, sub.key, symbol, is_smart=sub.is_smart)
                if sub.kind is SubscriptionKind.DEPTH
                else self._feed.route_trades(req_id, sub.key, symbol)
            )
        api_log.debug("requested %s (generation %s)", sub.key, sub.generation)

    def _retire_route(self, sub: Subscription) -> None:
        route = self._state.routes.pop(sub.key, None)
        if route is not None:
            self._feed.retire(route.req_id)

    def _cancel(self, sub: Subscription) -> None:
        self._retire_route(sub)
        with contextlib.suppress(Exception):
            if sub.kind is SubscriptionKind.DEPTH:
                self.ib.cancelMktDepth(sub.contract, sub.is_smart)
            elif sub.kind is SubscriptionKind.MARKET_DATA:
                self.ib.cancelMktData(sub.contract)
            else:
                self.ib.cancelTickByTickData(sub.contract, sub.tick_type)

    def _resubscribe(self, sub: Subscription, reason: GapReason, *, cancel_first: bool) -> None:
        if not self.ib.isConnected() or sub.key not in self.subscriptions:
            return
        if cancel_first:
            self._cancel(sub)
        self._request(sub)
        gap = self._state.gaps.get(sub.key)
        if gap is not None:
            gap.awaiting_data = True
        self._emit(Resubscribed(sub.key, sub.generation, reason))

    def _resubscribe_all(self, reason: GapReason, *, cancel_first: bool) -> None:
        for sub in list(self.subscriptions.values()):
            if sub.failed is None or sub.failed.code != 309:
                self._resubscribe(sub, reason, cancel_first=cancel_first)

    # ---- gaps -------------------------------------------------------------------------------
    def _open_gap(
        self, key: str, reason: GapReason, detail: str = "", start_ns: int | None = None
    ) -> None:
        if key in self._state.gaps:
            return
        start = self._wall_ns() if start_ns is None else start_ns
        self._state.gaps[key] = _OpenGap(reason, start)
        log.warning("gap on %s: %s %s", key, reason.value, detail)
        self._emit(GapStarted(key, reason, start, detail))

    def _close_gap(self, key: str) -> None:
        gap = self._state.gaps.pop(key, None)
        if gap is not None:
            end = self._wall_ns()
            log.info("gap on %s closed after %.3fs", key, (end - gap.start_ns) / 1e9)
            self._emit(GapEnded(key, gap.reason, gap.start_ns, end))

    def open_gaps(self) -> dict[str, GapReason]:
        return {key: gap.reason for key, gap in self._state.gaps.items()}

    def _emit(self, event: ConnectionEvent) -> None:
        self._hand_out_data()
        for listener in list(self._state.listeners):
            try:
                listener(event)
            except Exception:  # a consumer's bug must not kill the connection
                log.exception("connection listener failed on %s", event)

    # ---- data --------------------------------------------------------------------------------
    def _on_read_start(self) -> None:
        """A socket read begins: its messages share this receive time."""
        self._feed.read_ns = self._wall_ns()
        self._read_arrived()

    def _on_read_end(self) -> None:
        self._hand_out_data()
        self._read_processed()  # ib_async's: pendingTickersEvent -> _on_tickers

    def _hand_out_data(self) -> None:
        """Deliver the rows decoded so far; data on a route we hold closes its gap."""
        batches = self._feed.take()
        if not batches:
            return
        for listener in self._state.data_listeners:
            for _route, rows in batches:
                listener(rows)
        now = self._monotonic_s()
        for route, _rows in batches:
            if self._state.routes.get(route.key) is not route:
                continue  # the tail of a replaced request is not fresh data
            self._fresh(route.key, now)

    def _fresh(self, key: str, now: float) -> None:
        sub = self.subscriptions.get(key)
        if sub is None:
            return
        sub.last_data_s = now
        gap = self._state.gaps.get(key)
        if gap is not None and gap.awaiting_data:
            self._close_gap(key)

    # ---- ib_async events ---------------------------------------------------------------------
    def _on_tickers(self, tickers: set[Ticker]) -> None:
        """Freshness of market data subscriptions (depth and trades arrive as rows)."""
        now = self._monotonic_s()
        for sub in list(self.subscriptions.values()):
            ticker = sub.ticker
            if sub.kind is not SubscriptionKind.MARKET_DATA or ticker is None:
                continue
            if ticker in tickers and ticker.ticks:
                self._fresh(sub.key, now)

    def _sub_for_req(self, req_id: int) -> Subscription | None:
        for sub in self.subscriptions.values():
            ticker = sub.ticker
            if ticker is None:
                continue
            if compat.ticker_request_id(self.ib.wrapper, ticker, _req_kind(sub)) == req_id:
                return sub
        return None

    def _on_error(self, req_id: int, code: int, message: str, contract: Any) -> None:
        error = IbError.of(code, message, req_id)
        api_log.info("IB %s %s (reqId %s): %s", error.kind.value, code, req_id, message)
        if code == 326:
            self._client_id_refused.set()
        if code == 1100:
            for key in self.subscriptions:
                self._open_gap(key, GapReason.CONNECTIVITY_LOST, message)
        elif code == 1101:
            self._resubscribe_all(GapReason.CONNECTIVITY_LOST, cancel_first=False)
        elif code == 1102:
            for key in list(self._state.gaps):
                if self._state.gaps[key].reason is GapReason.CONNECTIVITY_LOST:
                    self._close_gap(key)
        elif code == STREAM_FARM_BROKEN:
            self._state.farm_broken = True
            for key in self.subscriptions:
                self._open_gap(key, GapReason.DATA_FARM_BROKEN, message)
        elif code == STREAM_FARM_OK and self._state.farm_broken:
            self._state.farm_broken = False
            self._resubscribe_all(GapReason.DATA_FARM_BROKEN, cancel_first=True)
        elif code == 317:
            # IB: "empty the deep book before applying new entries"; the stream goes on.
            sub = self._sub_for_req(req_id)
            if sub is not None:
                self._open_gap(sub.key, GapReason.DEPTH_RESET, message)
                self._state.gaps[sub.key].awaiting_data = True
        elif code == 316:
            # IB: "halted, re-subscribe"; the subscription has ended on the server.
            sub = self._sub_for_req(req_id)
            if sub is not None:
                self._open_gap(sub.key, GapReason.DEPTH_HALTED, message)
                self._resubscribe(sub, GapReason.DEPTH_HALTED, cancel_first=False)
        elif code in (309, 200, 354, 10089, 10168, 101):
            sub = self._sub_for_req(req_id)
            if sub is not None:
                sub.failed = error
                log.error("%s failed: %s %s", sub.key, code, message)
                self._emit(SubscriptionFailed(sub.key, error))

    def _on_disconnected(self) -> None:
        self.port = None
        if self._state.closing or not self.config.reconnect:
            return
        for key in self.subscriptions:
            self._open_gap(key, GapReason.DISCONNECTED, "socket closed")
        if self._state.reconnect_task is None or self._state.reconnect_task.done():
            loop = asyncio.get_event_loop()
            self._state.reconnect_task = loop.create_task(self._reconnect_forever())

    async def _reconnect_forever(self) -> None:
        """Reconnect with capped exponential backoff until the gateway is back, then resubscribe."""
        delay = 0.1
        attempts = 0
        while not self._state.closing:
            attempts += 1
            try:
                await self._connect_once()
            except (_NotReachableError, TimeoutError, ConnectionError, OSError) as exc:
                log.info("reconnect attempt %s failed: %s", attempts, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.reconnect_max_delay_s)
                continue
            self.reconnects += 1
            assert self.port is not None
            self._emit(Reconnected(self.port, self.client_id, attempts))
            self._resubscribe_all(GapReason.DISCONNECTED, cancel_first=False)
            return

    async def _watchdog(self) -> None:
        """Re-request subscriptions that went silent while their market is open."""
        while not self._state.closing:
            await asyncio.sleep(self.config.watchdog_interval_s)
            if not self.ib.isConnected() or not self._market_open():
                continue
            now = self._monotonic_s()
            for sub in list(self.subscriptions.values()):
                if sub.failed is not None or sub.key in self._state.gaps:
                    continue
                silent_s = now - sub.last_data_s
                if silent_s >= self.config.silent_after_s:
                    start_ns = self._wall_ns() - int(silent_s * 1e9)
                    self._open_gap(
                        sub.key, GapReason.SILENT_FEED, f"no data for {silent_s:.1f}s", start_ns
                    )
                    self._resubscribe(sub, GapReason.SILENT_FEED, cancel_first=True)


def _req_kind(sub: Subscription) -> str:
    """The key under which ib_async's wrapper files the request id of `sub`'s ticker."""
    if sub.kind is SubscriptionKind.DEPTH:
        return compat.DEPTH_REQUEST_KEY
    if sub.kind is SubscriptionKind.MARKET_DATA:
        return compat.MARKET_DATA_REQUEST_KEY
    return sub.tick_type


def _nothing() -> None:
    """Stands in for a read hook ib_async's wrapper does not define."""
