"""Depth and trade messages of our own subscriptions decoded straight into typed rows.

For every depth message ib_async 2.1.0 converts the fields generically, stores a DOMLevel
in a dict that does not follow IB's row shifts, copies that side's levels into
`ticker.domBids`/`domAsks`, appends a MktDepthData and marks the ticker pending; every
tick-by-tick print becomes attribute objects, ticker fields and a TickByTickAllLast. That
is per-message work the recorder never uses (it keeps its own book with IB's semantics)
and most of its time at tens of thousands of messages a second.

`RowFeed` takes over the decoder's handlers for `updateMktDepth` (msg 12),
`updateMktDepthL2` (msg 13) and `tickByTick` (msg 99). A message whose request id is
routed here becomes a row in that route's list, as the gateway sent it (a delete keeps
the price and size on the wire); every other request id goes to ib_async's own handler
as before. Messages for a request we replaced or cancelled are dropped (the tail of a
stream we no longer hold). A malformed message raises into ib_async's `Decoder.interpret`,
which logs it, as it does for any message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from ib_async.decoder import Decoder

from ibdesk.ib import compat
from ibdesk.ib.compat import Handler

MSG_MARKET_DEPTH = 12
MSG_MARKET_DEPTH_L2 = 13
MSG_TICK_BY_TICK = 99
TICK_TYPES_WITH_TRADES = ("1", "2")  # Last, AllLast

_new = tuple.__new__  # builds a NamedTuple without its Python-level __new__ (hot path)


class DepthUpdate(NamedTuple):
    """One IB depth operation (operation 0 insert, 1 update, 2 delete; side 0 ask, 1 bid)."""

    key: str
    symbol: str
    ts_ns: int
    position: int
    operation: int
    side: int
    price: float
    size: float
    market_maker: str
    is_smart: bool


class TradeTick(NamedTuple):
    """One tick-by-tick Last/AllLast print (`ts_ns` is the receive time)."""

    key: str
    symbol: str
    ts_ns: int
    price: float
    size: float
    exchange: str


Row = DepthUpdate | TradeTick


@dataclass(slots=True)
class Route:
    """Where one request's messages go: the rows of subscription `key` since the last take."""

    key: str
    symbol: str
    req_id: int
    is_smart: bool = False
    rows: list[Row] = field(default_factory=list)


class RowFeed:
    """Routes depth and trade messages by request id into per-subscription row lists."""

    def __init__(self, decoder: Decoder) -> None:
        handlers = compat.decoder_handlers(decoder)
        self._fallback: dict[int, Handler] = {
            msg: handlers[msg] for msg in (MSG_MARKET_DEPTH, MSG_MARKET_DEPTH_L2, MSG_TICK_BY_TICK)
        }
        handlers[MSG_MARKET_DEPTH] = self._on_depth
        handlers[MSG_MARKET_DEPTH_L2] = self._on_depth_l2
        handlers[MSG_TICK_BY_TICK] = self._on_tick_by_tick
        self._depth: dict[int, Route] = {}
        self._trades: dict[int, Route] = {}
        self._retired: set[int] = set()
        self._retiring: list[Route] = []  # retired with rows not yet taken
        self.read_ns = 0  # receive time stamped on the rows: set at the start of a socket read
        self.dropped = 0

    def route_depth(self, req_id: int, key: str, symbol: str, *, is_smart: bool) -> Route:
        """Send `req_id`'s depth messages to a new route."""
        return self._add(self._depth, Route(key, symbol, req_id, is_smart))

    def route_trades(self, req_id: int, key: str, symbol: str) -> Route:
        """Send `req_id`'s tick-by-tick Last/AllLast prints to a new route."""
        return self._add(self._trades, Route(key, symbol, req_id))

    def _add(self, routes: dict[int, Route], route: Route) -> Route:
        routes[route.req_id] = route
        self._retired.discard(route.req_id)
        return route

    def retire(self, req_id: int) -> None:
        """Stop routing `req_id`; messages still in flight for it are dropped."""
        route = self._depth.pop(req_id, None) or self._trades.pop(req_id, None)
        if route is not None:
            self._retired.add(req_id)
            if route.rows:
                self._retiring.append(route)

    def take(self) -> list[tuple[Route, list[Row]]]:
        """Each route's rows received since the last call, in arrival order per route.

        Retired routes come first: their rows arrived before their replacement was requested.
        """
        out: list[tuple[Route, list[Row]]] = []
        retiring, self._retiring = self._retiring, []
        for route in [*retiring, *self._depth.values(), *self._trades.values()]:
            if route.rows:
                out.append((route, route.rows))
                route.rows = []
        return out

    # ---- decoder handlers (hot path) --------------------------------------------------------
    def _on_depth(self, fields: list[str]) -> None:
        """msg 12: msgId, version, reqId, position, operation, side, price, size."""
        route = self._depth.get(int(fields[2]))
        if route is None:
            self._not_routed(fields, MSG_MARKET_DEPTH)
            return
        route.rows.append(
            _new(
                DepthUpdate,
                (
                    route.key,
                    route.symbol,
                    self.read_ns,
                    int(fields[3]),
                    int(fields[4]),
                    int(fields[5]),
                    float(fields[6] or 0),
                    float(fields[7] or 0),
                    "",
                    route.is_smart,
                ),
            )
        )

    def _on_depth_l2(self, fields: list[str]) -> None:
        """msg 13: msgId, version, reqId, position, marketMaker, operation, side, price, size
        and, from server version 146, isSmartDepth."""
        route = self._depth.get(int(fields[2]))
        if route is None:
            self._not_routed(fields, MSG_MARKET_DEPTH_L2)
            return
        smart = bool(int(fields[9] or 0)) if len(fields) > 9 else route.is_smart
        route.rows.append(
            _new(
                DepthUpdate,
                (
                    route.key,
                    route.symbol,
                    self.read_ns,
                    int(fields[3]),
                    int(fields[5]),
                    int(fields[6]),
                    float(fields[7] or 0),
                    float(fields[8] or 0),
                    fields[4],
                    smart,
                ),
            )
        )

    def _on_tick_by_tick(self, fields: list[str]) -> None:
        """msg 99: msgId, reqId, tickType, time, then for Last/AllLast (1/2): price, size,
        mask, exchange, specialConditions."""
        route = self._trades.get(int(fields[1]))
        if route is None or fields[2] not in TICK_TYPES_WITH_TRADES:
            self._not_routed(fields, MSG_TICK_BY_TICK, int(fields[1]))
            return
        price, size = float(fields[4]), float(fields[5])
        if price == -1 and size == 0:
            return  # IB's "no print" placeholder, not a trade
        route.rows.append(
            _new(TradeTick, (route.key, route.symbol, self.read_ns, price, size, fields[7]))
        )

    def _not_routed(self, fields: list[str], msg: int, req_id: int | None = None) -> None:
        if (int(fields[2]) if req_id is None else req_id) in self._retired:
            self.dropped += 1
        else:
            self._fallback[msg](fields)
