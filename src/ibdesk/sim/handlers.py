"""Request handlers of the sim: one function per client message id.

Each reads its fields in the order ib_async 2.1.0 and `ibapi` write them at version 178,
and answers with the messages IB Gateway sends. Edges only: state lives in the server,
reached through `conn.sim` (a `connection.Gateway`); nothing here imports the server.
"""

from __future__ import annotations

import asyncio
import logging

from ibdesk.calendar import NS
from ibdesk.ib.pacing import HistoricalRequestKey
from ibdesk.sim import messages as msg
from ibdesk.sim.book import MIN_LEVELS
from ibdesk.sim.connection import Connection, ConnState, Handler, read_contract
from ibdesk.sim.history import (
    BarRequest,
    BarSet,
    WhatToShow,
    format_bar_time,
    parse_bar_size,
    parse_duration,
    parse_end,
)
from ibdesk.sim.orders import OrderType, SimOrder
from ibdesk.sim.protocol import FieldReader, In, Out, encode
from ibdesk.sim.scanner import DEFAULT_ROWS, ScanRequest, rank
from ibdesk.sim.subscriptions import BarSub, DepthSub, QuoteSub, ScanSub, TickByTickSub, discard

log = logging.getLogger("ibdesk.sim")


def _contract(conn: Connection, reader: FieldReader, req_id: int):
    ref = read_contract(reader)
    ticker = conn.sim.resolve(ref)
    if ticker is None:
        conn.error(req_id, 200, "No security definition has been found for the request")
    return ref, ticker


# -- connect-time requests ----------------------------------------------------------------------
def req_ids(conn: Connection, reader: FieldReader) -> None:
    conn.send(encode(Out.NEXT_VALID_ID, 1, conn.sim.next_order_id))


def req_managed_accounts(conn: Connection, reader: FieldReader) -> None:
    conn.send(encode(Out.MANAGED_ACCTS, 1, ",".join(conn.sim.config.accounts)))


def req_current_time(conn: Connection, reader: FieldReader) -> None:
    conn.send(encode(Out.CURRENT_TIME, 1, conn.sim.now_ns() // NS))


def req_positions(conn: Connection, reader: FieldReader) -> None:
    sim = conn.sim
    conn.positions_sub = True
    account = sim.config.accounts[0]
    for symbol, pos in sim.blotter.positions.items():
        conn.send(
            msg.position(account, sim.market(symbol).ticker, float(pos.quantity), pos.avg_cost)
        )
    conn.send(encode(Out.POSITION_END, 1))


def cancel_positions(conn: Connection, reader: FieldReader) -> None:
    conn.positions_sub = False


def req_open_orders(conn: Connection, reader: FieldReader) -> None:
    _send_open_orders(conn, only_own=True)


def req_all_open_orders(conn: Connection, reader: FieldReader) -> None:
    _send_open_orders(conn, only_own=False)


def _send_open_orders(conn: Connection, only_own: bool) -> None:
    for order in conn.sim.blotter.orders.values():
        if order.is_done or (only_own and order.client_id != conn.client_id):
            continue
        conn.send(msg.open_order(order_view(order)))
        conn.send(order_status(order))
    conn.send(encode(Out.OPEN_ORDER_END, 1))


def req_completed_orders(conn: Connection, reader: FieldReader) -> None:
    conn.send(encode(Out.COMPLETED_ORDERS_END))


def req_account_updates(conn: Connection, reader: FieldReader) -> None:
    reader.skip(1)
    subscribe = reader.bool()
    account = reader.str() or conn.sim.config.accounts[0]
    conn.account_updates = subscribe
    if subscribe:
        conn.sim.send_portfolio(conn)
        conn.send(encode(Out.ACCT_DOWNLOAD_END, 1, account))


def req_account_updates_multi(conn: Connection, reader: FieldReader) -> None:
    reader.skip(1)
    req_id = reader.int()
    account = reader.str() or conn.sim.config.accounts[0]
    model_code = reader.str()
    for key, value, currency in conn.sim.account_values():
        conn.send(
            encode(Out.ACCOUNT_UPDATE_MULTI, 1, req_id, account, model_code, key, value, currency)
        )
    conn.send(encode(Out.ACCOUNT_UPDATE_MULTI_END, 1, req_id))


def req_account_summary(conn: Connection, reader: FieldReader) -> None:
    reader.skip(1)
    req_id = reader.int()
    reader.skip(1)
    tags = {t.strip() for t in reader.str().split(",") if t.strip()}
    account = conn.sim.config.accounts[0]
    for key, value, currency in conn.sim.account_values():
        if not tags or key in tags or "All" in tags:
            conn.send(encode(Out.ACCOUNT_SUMMARY, 1, req_id, account, key, value, currency))
    conn.send(encode(Out.ACCOUNT_SUMMARY_END, 1, req_id))


def req_executions(conn: Connection, reader: FieldReader) -> None:
    reader.skip(1)
    req_id = reader.int()
    for ex in conn.sim.blotter.executions:
        order = ex.order
        if order.client_id != conn.client_id:
            continue
        conn.send(msg.execution_report(req_id, ex))
    conn.send(encode(Out.EXECUTION_DATA_END, 1, req_id))


def ignore(conn: Connection, reader: FieldReader) -> None:
    return None


# -- contracts ---------------------------------------------------------------------------------
def req_contract_details(conn: Connection, reader: FieldReader) -> None:
    reader.skip(1)
    req_id = reader.int()
    ref, ticker = _contract(conn, reader, req_id)
    if ticker is None:
        return
    exchange = ref.exchange or "SMART"
    conn.send(msg.contract_details(req_id, ticker, exchange))
    conn.send(msg.contract_details_end(req_id))


# -- market data -------------------------------------------------------------------------------
def req_mkt_data(conn: Connection, reader: FieldReader) -> None:
    reader.skip(1)
    req_id = reader.int()
    _ref, ticker = _contract(conn, reader, req_id)
    if ticker is None:
        return
    if reader.bool():  # delta-neutral contract
        reader.skip(3)
    generic = {g.strip() for g in reader.str().split(",") if g.strip()}
    snapshot = reader.bool()
    market = conn.sim.market(ticker.symbol)
    conn.send(encode(Out.MARKET_DATA_TYPE, 1, req_id, 1))
    conn.send(encode(Out.TICK_REQ_PARAMS, req_id, 0.01, "9c0001", 3))
    conn.send_text(market.quote_snapshot(req_id))
    if snapshot:
        conn.send(encode(Out.TICK_SNAPSHOT_END, 1, req_id))
        return
    sub = QuoteSub(conn, req_id, "233" in generic, silent=conn.sim.farm_broken)
    market.quote_subs.append(sub)
    conn.quotes[req_id] = (market, sub)


def cancel_mkt_data(conn: Connection, reader: FieldReader) -> None:
    reader.skip(1)
    entry = conn.quotes.pop(reader.int(), None)
    if entry is not None:
        discard(entry[0].quote_subs, entry[1])


def req_mkt_depth(conn: Connection, reader: FieldReader) -> None:
    reader.skip(1)
    req_id = reader.int()
    _ref, ticker = _contract(conn, reader, req_id)
    if ticker is None:
        return
    rows = max(1, min(reader.int(), MIN_LEVELS))
    smart = reader.bool()
    sim = conn.sim
    if sim.depth_in_use >= sim.config.depth_cap:
        conn.error(
            req_id,
            309,
            f"Max number ({sim.config.depth_cap}) of market depth requests has been reached",
        )
        return
    market = sim.market(ticker.symbol)
    prefix = f"{int(Out.MARKET_DEPTH_L2 if smart else Out.MARKET_DEPTH)}\x001\0{req_id}\0"
    sub = DepthSub(conn, req_id, rows, smart, prefix, silent=sim.farm_broken)
    sim.depth_in_use += 1
    conn.depth[req_id] = (market, sub)
    market.depth_subs.append(sub)
    conn.send_text(market.depth_snapshot(sub))


def cancel_mkt_depth(conn: Connection, reader: FieldReader) -> None:
    reader.skip(1)
    entry = conn.depth.pop(reader.int(), None)
    if entry is not None:
        discard(entry[0].depth_subs, entry[1])
        conn.sim.depth_in_use -= 1


def req_tick_by_tick(conn: Connection, reader: FieldReader) -> None:
    req_id = reader.int()
    _ref, ticker = _contract(conn, reader, req_id)
    if ticker is None:
        return
    kind = reader.str()
    if kind not in ("Last", "AllLast", "BidAsk", "MidPoint"):
        conn.error(req_id, 10189, f"Failed to request tick-by-tick data: unknown type {kind}")
        return
    market = conn.sim.market(ticker.symbol)
    sub = TickByTickSub(conn, req_id, kind, silent=conn.sim.farm_broken)
    market.tbt_subs.append(sub)
    conn.tbt[req_id] = (market, sub)
    if kind == "BidAsk":
        book = market.book
        conn.send(
            encode(
                Out.TICK_BY_TICK,
                req_id,
                3,
                conn.sim.now_ns() // NS,
                book.px[1][0] / 100,
                book.px[0][0] / 100,
                book.sz[1][0],
                book.sz[0][0],
                0,
            )
        )


def cancel_tick_by_tick(conn: Connection, reader: FieldReader) -> None:
    entry = conn.tbt.pop(reader.int(), None)
    if entry is not None:
        discard(entry[0].tbt_subs, entry[1])


# -- history ----------------------------------------------------------------------------------
def req_historical_data(conn: Connection, reader: FieldReader) -> None:
    req_id = reader.int()
    ref, ticker = _contract(conn, reader, req_id)
    if ticker is None:
        return
    reader.skip(1)  # includeExpired
    end_text = reader.str()
    bar_text = reader.str()
    duration_text = reader.str()
    use_rth = reader.bool()
    what_text = reader.str().upper()
    format_date = reader.int(1)
    keep_up_to_date = reader.bool()
    sim = conn.sim
    now_ns = sim.now_ns()
    try:
        bar_size = parse_bar_size(bar_text)
        duration = parse_duration(duration_text)
        end_ns = parse_end(end_text, now_ns)
        what = WhatToShow(what_text)
    except ValueError as exc:
        conn.error(req_id, 162, f"Historical Market Data Service error message:{exc}")
        return
    if bar_size.is_intraday and conn.pacing.applies_to(bar_size.seconds):
        key = HistoricalRequestKey(
            ticker.con_id, ref.exchange, what, end_text, duration_text, bar_text, use_rth
        )
        violation = conn.pacing.admit(key, asyncio.get_running_loop().time(), req_id)
        if violation is not None:
            conn.error(
                req_id,
                162,
                "Historical Market Data Service error message:"
                "Historical data request pacing violation",
            )
            return
    request = BarRequest(min(end_ns, now_ns), duration, bar_size, what, use_rth)
    market = sim.market(ticker.symbol)
    live = market.live_tape()  # snapshot on the loop; the bars are built on a worker thread
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(None, sim.bars, market, request, live)

    def answer(done: asyncio.Future[BarSet]) -> None:
        if conn.state == ConnState.CLOSED:
            conn.pacing.close(req_id)
            return
        try:
            bars = done.result()
        except Exception as exc:  # an unexpected failure becomes IB's error, not a hang
            log.exception("historical request %s failed", req_id)
            conn.error(req_id, 162, f"Historical Market Data Service error message:{exc}")
            conn.pacing.close(req_id)
            conn.flush()
            return
        if not len(bars) and not keep_up_to_date:
            conn.error(
                req_id,
                162,
                "Historical Market Data Service error message:"
                "HMDS query returned no data: " + ticker.symbol,
            )
            conn.pacing.close(req_id)
            conn.flush()
            return
        start_ns = int(bars.start_ns[0]) if len(bars) else request.end_ns
        start = format_bar_time(start_ns, 1)
        end = format_bar_time(request.end_ns, 1)
        conn.send(msg.historical_data(req_id, start, end, bars, format_date))
        if keep_up_to_date:
            sub = BarSub(conn, req_id, request, format_date, silent=sim.farm_broken)
            market.bar_subs.append(sub)
            conn.bars[req_id] = (market, sub)
        else:
            conn.pacing.close(req_id)
        conn.flush()

    future.add_done_callback(answer)


def cancel_historical_data(conn: Connection, reader: FieldReader) -> None:
    reader.skip(1)
    req_id = reader.int()
    conn.pacing.close(req_id)
    entry = conn.bars.pop(req_id, None)
    if entry is not None:
        discard(entry[0].bar_subs, entry[1])


def req_head_timestamp(conn: Connection, reader: FieldReader) -> None:
    req_id = reader.int()
    _ref, ticker = _contract(conn, reader, req_id)
    if ticker is None:
        return
    reader.skip(2)
    reader.str()
    format_date = reader.int(1)
    first = conn.sim.calendar.session(0)
    conn.send(encode(Out.HEAD_TIMESTAMP, req_id, format_bar_time(first.open_ns, format_date)))


# -- scanner ----------------------------------------------------------------------------------
def req_scanner_parameters(conn: Connection, reader: FieldReader) -> None:
    conn.send(encode(Out.SCANNER_PARAMETERS, 1, msg.SCANNER_PARAMETERS_XML))


def _optional_float(text: str) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return None if value is None or value >= 1.7e308 else value


def req_scanner_subscription(conn: Connection, reader: FieldReader) -> None:
    req_id = reader.int()
    rows = reader.int(-1)
    reader.skip(2)  # instrument, locationCode
    code = reader.str()
    above_price = _optional_float(reader.str())
    below_price = _optional_float(reader.str())
    above_volume_f = _optional_float(reader.str())
    reader.skip(13)  # marketCap .. stockTypeFilter
    for pair in (reader.str() + ";" + reader.str()).split(";"):
        tag, _, value = pair.partition("=")
        number = _optional_float(value.strip())
        if tag.strip() == "priceAbove" and number is not None:
            above_price = number
        elif tag.strip() == "priceBelow" and number is not None:
            below_price = number
        elif tag.strip() == "volumeAbove" and number is not None:
            above_volume_f = number
    request = ScanRequest(
        code,
        rows if rows > 0 else DEFAULT_ROWS,
        above_price,
        below_price,
        None if above_volume_f is None else int(above_volume_f),
    )
    conn.scans[req_id] = ScanSub(conn, req_id, request)
    conn.send(msg.scanner_data(req_id, rank(conn.sim.scan_rows(), request)))


def cancel_scanner_subscription(conn: Connection, reader: FieldReader) -> None:
    reader.skip(1)
    conn.scans.pop(reader.int(), None)


# -- orders -----------------------------------------------------------------------------------
def place_order(conn: Connection, reader: FieldReader) -> None:
    order_id = reader.int()
    _ref, ticker = _contract(conn, reader, order_id)
    if ticker is None:
        return
    reader.skip(2)  # secIdType, secId
    action = reader.str().upper()
    quantity = reader.float()
    order_type_text = reader.str().upper()
    lmt = _optional_float(reader.str())
    aux = _optional_float(reader.str())
    tif = reader.str() or "DAY"
    oca_group = reader.str()
    account = reader.str() or conn.sim.config.accounts[0]
    reader.skip(2)  # openClose, origin
    order_ref = reader.str()
    transmit = reader.bool()
    parent_id = reader.int()
    reader.skip(4)  # blockOrder, sweepToFill, displaySize, triggerMethod
    outside_rth = reader.bool()
    reader.skip(1)  # hidden
    reader.skip(7)  # sharesAllocation, discretionaryAmt, goodAfterTime, goodTillDate, fa*
    reader.skip(4)  # modelCode, shortSaleSlot, designatedLocation, exemptCode
    oca_type = reader.int()
    try:
        order_type = OrderType(order_type_text)
    except ValueError:
        conn.error(order_id, 387, f"Unsupported order type {order_type_text} in the simulator.")
        return
    if action not in ("BUY", "SELL") or quantity <= 0:
        conn.error(order_id, 321, "Error validating request: action and quantity")
        return
    needs_lmt = order_type in (OrderType.LMT, OrderType.STP_LMT)
    needs_aux = order_type in (OrderType.STP, OrderType.STP_LMT)
    if (needs_lmt and lmt is None) or (needs_aux and aux is None):
        conn.error(order_id, 321, "Error validating request: missing price")
        return
    sim = conn.sim
    sim.next_order_id = max(sim.next_order_id, order_id + 1)
    assert conn.client_id is not None
    existing = sim.blotter.orders.get((conn.client_id, order_id))
    order = SimOrder(
        order_id,
        conn.client_id,
        existing.perm_id if existing else sim.blotter.next_perm_id(),
        ticker,
        action,
        int(quantity),
        order_type,
        None if lmt is None else round(lmt * 100),
        None if aux is None else round(aux * 100),
        tif,
        oca_group,
        oca_type,
        parent_id,
        transmit,
        account,
        order_ref,
        outside_rth,
    )
    market = sim.market(ticker.symbol)
    notices = sim.blotter.place(order, sim.liquidity(market), market.last_c, sim.now_ns())
    sim.notify(notices)


def cancel_order(conn: Connection, reader: FieldReader) -> None:
    reader.skip(1)
    order_id = reader.int()
    assert conn.client_id is not None
    notices = conn.sim.blotter.cancel(conn.client_id, order_id)
    if not notices:
        conn.error(order_id, 10147, f"OrderId {order_id} that needs to be cancelled is not found.")
    conn.sim.notify(notices)


def req_global_cancel(conn: Connection, reader: FieldReader) -> None:
    conn.sim.notify(conn.sim.blotter.cancel_all())


# -- order messages (also sent by the server on fills) --------------------------------------
def order_view(order: SimOrder) -> msg.OrderView:
    """An order as openOrder shows it."""
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


def order_status(order: SimOrder) -> bytes:
    """The orderStatus message of an order."""
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


def table() -> dict[int, Handler]:
    return {
        In.REQ_IDS: req_ids,
        In.REQ_MANAGED_ACCTS: req_managed_accounts,
        In.REQ_CURRENT_TIME: req_current_time,
        In.REQ_POSITIONS: req_positions,
        In.CANCEL_POSITIONS: cancel_positions,
        In.REQ_OPEN_ORDERS: req_open_orders,
        In.REQ_ALL_OPEN_ORDERS: req_all_open_orders,
        In.REQ_AUTO_OPEN_ORDERS: ignore,
        In.REQ_COMPLETED_ORDERS: req_completed_orders,
        In.REQ_ACCT_DATA: req_account_updates,
        In.REQ_ACCOUNT_UPDATES_MULTI: req_account_updates_multi,
        In.CANCEL_ACCOUNT_UPDATES_MULTI: ignore,
        In.REQ_ACCOUNT_SUMMARY: req_account_summary,
        In.CANCEL_ACCOUNT_SUMMARY: ignore,
        In.REQ_EXECUTIONS: req_executions,
        In.REQ_MARKET_DATA_TYPE: ignore,
        In.REQ_CONTRACT_DATA: req_contract_details,
        In.REQ_MKT_DATA: req_mkt_data,
        In.CANCEL_MKT_DATA: cancel_mkt_data,
        In.REQ_MKT_DEPTH: req_mkt_depth,
        In.CANCEL_MKT_DEPTH: cancel_mkt_depth,
        In.REQ_TICK_BY_TICK: req_tick_by_tick,
        In.CANCEL_TICK_BY_TICK: cancel_tick_by_tick,
        In.REQ_HISTORICAL_DATA: req_historical_data,
        In.CANCEL_HISTORICAL_DATA: cancel_historical_data,
        In.REQ_HEAD_TIMESTAMP: req_head_timestamp,
        In.REQ_SCANNER_PARAMETERS: req_scanner_parameters,
        In.REQ_SCANNER_SUBSCRIPTION: req_scanner_subscription,
        In.CANCEL_SCANNER_SUBSCRIPTION: cancel_scanner_subscription,
        In.PLACE_ORDER: place_order,
        In.CANCEL_ORDER: cancel_order,
        In.REQ_GLOBAL_CANCEL: req_global_cancel,
    }
