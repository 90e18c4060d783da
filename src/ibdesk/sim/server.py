"""The simulated gateway: an asyncio TCP server speaking the TWS API at version 178.

Owns the listening socket, the connections (`connection.py`), the per-symbol feeds
(`subscriptions.py`), the engine's timer, orders and faults. The market itself comes from a
`MarketSource` (`source.py`; by default the seeded `synthetic.SyntheticMarket`); tapes and
bars are in `history.py`, fills in `orders.py`, ranking in `scanner.py`, request handlers in
`handlers.py`, message layouts in `messages.py`. `SimServer` runs on a caller's event loop;
`SimThread` runs one on a background thread for blocking callers (tests).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

from ibdesk.calendar import NS, SessionCalendar, to_et
from ibdesk.domain.book import DepthOp
from ibdesk.sim import handlers
from ibdesk.sim import messages as msg
from ibdesk.sim.book import Aggressor, BookRows
from ibdesk.sim.config import SimConfig
from ibdesk.sim.connection import Connection, ConnState, ContractRef, Handler
from ibdesk.sim.handlers import order_status, order_view
from ibdesk.sim.history import (
    BarRequest,
    BarSet,
    Tape,
    aggregate,
    bin_edges,
    build_bars,
    format_bar_time,
)
from ibdesk.sim.orders import Blotter, Notice, OrderError, OrderType
from ibdesk.sim.protocol import SERVER_VERSION, Out, encode
from ibdesk.sim.scanner import ScanRow, rank
from ibdesk.sim.source import MarketSource
from ibdesk.sim.subscriptions import BarSub, SymbolFeed, discard
from ibdesk.sim.synthetic import SyntheticMarket
from ibdesk.sim.universe import Ticker, lookup

log = logging.getLogger("ibdesk.sim")
T = TypeVar("T")


class SimServer:
    """The simulated gateway on an asyncio loop. `await start()`, then `await stop()`."""

    def __init__(self, config: SimConfig = SimConfig(), market: MarketSource | None = None):
        self.config = config
        self.source: MarketSource = market or SyntheticMarket(
            seed=config.seed,
            clock=config.clock,
            speed=config.speed,
            events_per_s=config.events_per_s,
            symbols=config.symbols,
        )
        self.universe: Mapping[str, Ticker] = self.source.universe
        self.calendar: SessionCalendar = self.source.calendar
        self.current_index = self.source.session_index
        self.markets: dict[str, SymbolFeed] = {}
        self.connections: set[Connection] = set()
        self.client_ids: dict[int, Connection] = {}
        self.blotter = Blotter()
        self.next_order_id = 1
        self.depth_in_use = 0
        self.host = config.host
        self.port = config.port
        self.handlers: dict[int, Handler] = handlers.table()
        self.farm_broken = False
        self.connectivity_lost_flag = False
        self.paused = False
        self.accepting = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._engine: asyncio.Task[None] | None = None
        self._restart: asyncio.Task[None] | None = None

    def now_ns(self) -> int:
        """The market's clock (UTC ns)."""
        return self.source.now_ns()

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

    def market(self, symbol: str) -> SymbolFeed:
        market = self.markets.get(symbol)
        if market is None:
            ticker = self.ticker(symbol)
            if ticker is None:
                raise KeyError(symbol)
            market = SymbolFeed(self.source, ticker)
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
        source = self.source
        for market in list(self.markets.values()):
            symbol = market.ticker.symbol
            if not (market.subscribed or self.blotter.has_working(symbol)):
                continue
            source.advance(market.ticker, elapsed_s)
            if market.orders_dirty or self.blotter.has_working(symbol):
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
            discard(market.depth_subs, depth_sub)
            self.depth_in_use -= 1
        for market, quote_sub in conn.quotes.values():
            discard(market.quote_subs, quote_sub)
        for market, tbt_sub in conn.tbt.values():
            discard(market.tbt_subs, tbt_sub)
        for market, bar_sub in conn.bars.values():
            discard(market.bar_subs, bar_sub)
        conn.depth.clear()
        conn.quotes.clear()
        conn.tbt.clear()
        conn.bars.clear()
        conn.scans.clear()

    # -- history ---------------------------------------------------------------------------
    def bars(self, market: SymbolFeed, request: BarRequest, live: Tape) -> BarSet:
        """A request's bars; thread-safe given a `live` snapshot taken on the loop."""
        return build_bars(self.calendar, request, lambda s: market.tape_for(s, live))

    def _update_bars(self) -> None:
        now_ns = self.now_ns()
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
        self, market: SymbolFeed, sub: BarSub, live: Tape, now_ns: int
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
        now_ns = self.now_ns()
        session = self.calendar.session(self.current_index)
        rows: list[ScanRow] = []
        for ticker in self.universe.values():
            market = self.markets.get(ticker.symbol)
            if market is not None:
                last_c, volume, prev_c = market.last_c, market.volume, market.prev_close_c
            else:
                tape = self.source.history(ticker, session).between(session.ext_open_ns, now_ns)
                prev_c = self.source.prev_close_c(ticker, session.index)
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
    def liquidity(
        self, market: SymbolFeed
    ) -> Callable[[int, int, int | None], list[tuple[int, int]]]:
        return lambda aggressor, quantity, limit_c: market.book.take(aggressor, quantity, limit_c)

    def _match_orders(self, market: SymbolFeed) -> None:
        notices = self.blotter.match(
            market.ticker.symbol, self.liquidity(market), market.last_c, self.now_ns()
        )
        self.notify(notices)

    def notify(self, notices: list[Notice]) -> None:
        for notice in notices:
            order = notice.order
            conn = self.client_ids.get(order.client_id)
            if conn is None:
                continue
            if notice.execution is None:
                conn.send(msg.open_order(order_view(order)))
                conn.send(order_status(order))
                continue
            conn.send(msg.execution_report(-1, notice.execution))
            conn.send(msg.open_order(order_view(order)))
            conn.send(order_status(order))
        if not any(n.execution is not None for n in notices):
            return
        account = self.config.accounts[0]
        for conn in self.connections:
            if conn.account_updates:
                self.send_portfolio(conn)
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

    def send_portfolio(self, conn: Connection) -> None:
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
        conn.send(encode(Out.ACCT_UPDATE_TIME, 1, to_et(self.now_ns()).strftime("%H:%M")))

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
                    discard(market.depth_subs, sub)
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


# -- blocking wrapper ----------------------------------------------------------------------------
class SimThread:
    """A `SimServer` on a background thread with its own loop, for blocking callers.

    `start()` returns once the port accepts connections; `.host`/`.port` say where. Every
    fault and ground-truth method runs on the sim's loop and returns its result.
    """

    def __init__(
        self, config: SimConfig = SimConfig(port=0), market: MarketSource | None = None
    ) -> None:
        self.config = config
        self.market = market
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="ibdesk-sim", daemon=True
        )
        self.server: SimServer | None = None

    def start(self) -> SimThread:
        self._thread.start()

        async def make() -> SimServer:
            server = SimServer(self.config, self.market)
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
        return self.sim.now_ns()


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
