"""Orders in the sim: MKT, LMT, STP, STP LMT, brackets (parentId/transmit), OCA groups.

Pure apart from the `Liquidity` it fills against (the live book's `take`): this module
decides what fills, when and how much, and keeps positions and executions; the server turns
its `Notice`s into openOrder/orderStatus/execDetails/commissionReport messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from ibdesk.sim.universe import Ticker

# (aggressor +1 buy / -1 sell, quantity, limit_c or None) -> fills [(price_c, size)]
Liquidity = Callable[[int, int, int | None], list[tuple[int, int]]]

COMMISSION_PER_SHARE_USD = 0.005
COMMISSION_MIN_USD = 1.0


class OrderType(StrEnum):
    MKT = "MKT"
    LMT = "LMT"
    STP = "STP"
    STP_LMT = "STP LMT"


class OrderStatus(StrEnum):
    PRE_SUBMITTED = "PreSubmitted"
    SUBMITTED = "Submitted"
    FILLED = "Filled"
    CANCELLED = "Cancelled"


class OrderError(ValueError):
    """An order the sim refuses; `code` is IB's error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class SimOrder:
    order_id: int
    client_id: int
    perm_id: int
    ticker: Ticker
    action: str
    quantity: int
    order_type: OrderType
    lmt_c: int | None
    aux_c: int | None
    tif: str = "DAY"
    oca_group: str = ""
    oca_type: int = 0
    parent_id: int = 0
    transmit: bool = True
    account: str = ""
    order_ref: str = ""
    outside_rth: bool = False
    status: OrderStatus = OrderStatus.PRE_SUBMITTED
    filled: int = 0
    notional_c: int = 0
    last_fill_c: int = 0
    triggered: bool = False
    children: list[int] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled

    @property
    def avg_price(self) -> float:
        return self.notional_c / self.filled / 100 if self.filled else 0.0

    @property
    def aggressor(self) -> int:
        return 1 if self.action == "BUY" else -1

    @property
    def is_done(self) -> bool:
        return self.status in (OrderStatus.FILLED, OrderStatus.CANCELLED)


@dataclass(frozen=True, slots=True)
class Execution:
    exec_id: str
    order: SimOrder
    price_c: int
    size: int
    cum_qty: int
    avg_price: float
    time_ns: int
    commission_usd: float
    realized_pnl_usd: float | None


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the owning client must be told: an order's state, or an execution."""

    order: SimOrder
    execution: Execution | None = None


@dataclass(slots=True)
class Position:
    quantity: int = 0
    avg_cost: float = 0.0
    realized_usd: float = 0.0


class Blotter:
    """All orders, positions and executions of the sim's account."""

    def __init__(self) -> None:
        self.orders: dict[tuple[int, int], SimOrder] = {}
        self.positions: dict[str, Position] = {}
        self.executions: list[Execution] = []
        self._held: dict[tuple[int, int], SimOrder] = {}
        self._perm = 1_000_000
        self._exec_seq = 0

    def next_perm_id(self) -> int:
        self._perm += 1
        return self._perm

    def working(self, symbol: str) -> list[SimOrder]:
        return [
            o
            for o in self.orders.values()
            if o.ticker.symbol == symbol and not o.is_done and self._is_active(o)
        ]

    def has_working(self, symbol: str) -> bool:
        return any(o.ticker.symbol == symbol and not o.is_done for o in self.orders.values())

    def _is_active(self, order: SimOrder) -> bool:
        if order.parent_id:
            parent = self.orders.get((order.client_id, order.parent_id))
            return parent is None or parent.status is OrderStatus.FILLED
        return True

    def place(
        self, order: SimOrder, liquidity: Liquidity, last_c: int, now_ns: int
    ) -> list[Notice]:
        """Accept an order; hold it when not transmitted, else release it with its group."""
        key = (order.client_id, order.order_id)
        existing = self.orders.get(key)
        if existing is not None and not existing.is_done:
            existing.quantity, existing.lmt_c, existing.aux_c = (
                order.quantity,
                order.lmt_c,
                order.aux_c,
            )
            return [
                Notice(existing),
                *self.match(existing.ticker.symbol, liquidity, last_c, now_ns),
            ]
        if order.parent_id:
            parent = self.orders.get((order.client_id, order.parent_id)) or self._held.get(
                (order.client_id, order.parent_id)
            )
            if parent is not None:
                parent.children.append(order.order_id)
        if not order.transmit:
            self._held[key] = order
            return []
        released = [order]
        root = order.parent_id or order.order_id
        for held_key in list(self._held):
            held = self._held[held_key]
            if held.client_id == order.client_id and root in (held.order_id, held.parent_id):
                released.append(self._held.pop(held_key))
        released.sort(key=lambda o: o.order_id)
        notices: list[Notice] = []
        for item in released:
            item.status = (
                OrderStatus.PRE_SUBMITTED
                if not self._is_active_after(item, released)
                else OrderStatus.SUBMITTED
            )
            self.orders[(item.client_id, item.order_id)] = item
            notices.append(Notice(item))
        notices += self.match(order.ticker.symbol, liquidity, last_c, now_ns)
        return notices

    def _is_active_after(self, order: SimOrder, released: list[SimOrder]) -> bool:
        if not order.parent_id:
            return True
        parent = self.orders.get((order.client_id, order.parent_id))
        return parent is not None and parent.status is OrderStatus.FILLED

    def cancel(self, client_id: int, order_id: int) -> list[Notice]:
        order = self.orders.get((client_id, order_id)) or self._held.pop(
            (client_id, order_id), None
        )
        if order is None or order.is_done:
            return []
        order.status = OrderStatus.CANCELLED
        notices = [Notice(order)]
        for child_id in order.children:
            notices += self.cancel(client_id, child_id)
        return notices

    def cancel_all(self) -> list[Notice]:
        notices: list[Notice] = []
        for order in list(self.orders.values()):
            notices += self.cancel(order.client_id, order.order_id)
        return notices

    def match(self, symbol: str, liquidity: Liquidity, last_c: int, now_ns: int) -> list[Notice]:
        """Fill whatever is marketable now; trigger stops on the last trade price."""
        notices: list[Notice] = []
        for order in self.working(symbol):
            if order.is_done:
                continue
            if order.status is OrderStatus.PRE_SUBMITTED:
                order.status = OrderStatus.SUBMITTED
                notices.append(Notice(order))
            if order.order_type in (OrderType.STP, OrderType.STP_LMT) and not order.triggered:
                stop = order.aux_c or 0
                hit = last_c >= stop if order.aggressor > 0 else (0 < last_c <= stop)
                if not hit:
                    continue
                order.triggered = True
            limit = order.lmt_c if order.order_type in (OrderType.LMT, OrderType.STP_LMT) else None
            fills = liquidity(order.aggressor, order.remaining, limit)
            for price_c, size in fills:
                notices += self._fill(order, price_c, size, now_ns, liquidity, last_c)
        return notices

    def _fill(
        self,
        order: SimOrder,
        price_c: int,
        size: int,
        now_ns: int,
        liquidity: Liquidity,
        last_c: int,
    ) -> list[Notice]:
        order.filled += size
        order.notional_c += price_c * size
        order.last_fill_c = price_c
        if order.remaining <= 0:
            order.status = OrderStatus.FILLED
        realized = self._book_position(order, price_c, size)
        self._exec_seq += 1
        commission = round(max(COMMISSION_MIN_USD, COMMISSION_PER_SHARE_USD * size), 2)
        execution = Execution(
            f"0000e0d5.{self._exec_seq:08x}.01.01",
            order,
            price_c,
            size,
            order.filled,
            order.avg_price,
            now_ns,
            commission,
            realized,
        )
        self.executions.append(execution)
        notices = [Notice(order, execution)]
        notices += self._oca(order, size)
        if order.status is OrderStatus.FILLED and order.children:
            notices += self.match(order.ticker.symbol, liquidity, last_c, now_ns)
        return notices

    def _oca(self, order: SimOrder, size: int) -> list[Notice]:
        """Bracket children of one parent, and orders sharing an OCA group, cancel each other."""
        notices: list[Notice] = []
        for other in self.orders.values():
            if other is order or other.is_done or other.client_id != order.client_id:
                continue
            siblings = order.parent_id and other.parent_id == order.parent_id
            same_group = order.oca_group and other.oca_group == order.oca_group
            if not (siblings or same_group):
                continue
            if same_group and order.oca_type in (2, 3):
                other.quantity -= size
                if other.remaining > 0:
                    notices.append(Notice(other))
                    continue
            other.status = OrderStatus.CANCELLED
            notices.append(Notice(other))
        return notices

    def _book_position(self, order: SimOrder, price_c: int, size: int) -> float | None:
        position = self.positions.setdefault(order.ticker.symbol, Position())
        signed = size * order.aggressor
        price = price_c / 100
        if position.quantity == 0 or (position.quantity > 0) == (signed > 0):
            total = position.quantity + signed
            position.avg_cost = (position.avg_cost * abs(position.quantity) + price * size) / abs(
                total
            )
            position.quantity = total
            return None
        closing = min(abs(signed), abs(position.quantity))
        direction = 1 if position.quantity > 0 else -1
        realized = (price - position.avg_cost) * closing * direction
        position.realized_usd += realized
        position.quantity += signed
        if position.quantity == 0:
            position.avg_cost = 0.0
        elif (position.quantity > 0) != (direction > 0):
            position.avg_cost = price
        return round(realized, 2)
