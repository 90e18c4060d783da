"""Encoders of the messages the sim sends, with the exact field counts of server version 178.

Pure: values in, framed bytes out. The layouts follow ib_async 2.1.0's decoder and the
official `ibapi` decoder at version 178 (no version field where 178 dropped it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ibdesk.calendar import to_et
from ibdesk.sim.history import BarSet, format_bar_time
from ibdesk.sim.protocol import Out, encode, format_price
from ibdesk.sim.universe import Ticker

if TYPE_CHECKING:
    from ibdesk.sim.orders import Execution

TIME_ZONE_ID = "US/Eastern"
TRADING_HOURS = "0400-2000"
ORDER_TYPES = (
    "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,BENCHPX,COND,CONDORDER,DAY,"
    "DEACT,GAT,GTC,GTD,GTT,HID,IOC,LIT,LMT,MIT,MKT,MTL,NGCOMB,NONALGO,OCA,PEGBENCH,"
    "SCALE,SCALERST,SNAPMID,SNAPMKT,SNAPREL,STP,STPLMT,TRAIL,WHATIF"
)
VALID_EXCHANGES = (
    "SMART,AMEX,NYSE,CBOE,PHLX,ISE,CHX,ARCA,NASDAQ,DRCTEDGE,BEX,BATS,EDGEA,BYX,IEX,"
    "EDGX,FOXRIVER,PEARL,NYSENAT,LTSE,MEMX,IBEOS,OVERNIGHT,PSX"
)


def contract_block(ticker: Ticker, exchange: str = "SMART") -> tuple[object, ...]:
    """conId, symbol, secType, lastTradeDate, strike, right, multiplier, exchange, currency,
    localSymbol, tradingClass (11 fields, the block of position/execDetails/openOrder)."""
    return (
        ticker.con_id,
        ticker.symbol,
        ticker.sec_type,
        "",
        0.0,
        "",
        "",
        exchange,
        "USD",
        ticker.symbol,
        trading_class(ticker),
    )


def trading_class(ticker: Ticker) -> str:
    """IB's trading class of a US stock: NMS for NASDAQ listings, the symbol otherwise."""
    return "NMS" if ticker.primary_exchange == "NASDAQ" else ticker.symbol


def error(req_id: int, code: int, text: str) -> bytes:
    return encode(Out.ERROR, 2, req_id, code, text, "")


def contract_details(req_id: int, ticker: Ticker, exchange: str = "SMART") -> bytes:
    return encode(
        Out.CONTRACT_DATA,
        req_id,
        ticker.symbol,
        ticker.sec_type,
        "",
        0.0,
        "",
        exchange,
        "USD",
        ticker.symbol,
        trading_class(ticker),
        trading_class(ticker),
        ticker.con_id,
        0.01,
        "",
        ORDER_TYPES,
        VALID_EXCHANGES,
        1,
        0,
        ticker.long_name,
        ticker.primary_exchange,
        "",
        "Technology",
        "Computers",
        "Computers",
        TIME_ZONE_ID,
        TRADING_HOURS,
        TRADING_HOURS,
        "",
        0,
        0,
        1,
        "",
        "",
        "26,26",
        "",
        "COMMON",
        1,
        1,
        100,
    )


def contract_details_end(req_id: int) -> bytes:
    return encode(Out.CONTRACT_DATA_END, 1, req_id)


def historical_data(req_id: int, start: str, end: str, bars: BarSet, format_date: int) -> bytes:
    """One `17` message with every bar: date, open, high, low, close, volume, wap, count."""
    parts: list[str] = [str(int(Out.HISTORICAL_DATA)), str(req_id), start, end, str(len(bars))]
    labels = bars.day_label
    starts = bars.start_ns.tolist()
    rows = zip(
        bars.open.tolist(),
        bars.high.tolist(),
        bars.low.tolist(),
        bars.close.tolist(),
        bars.volume.tolist(),
        bars.wap.tolist(),
        bars.count.tolist(),
        strict=True,
    )
    for i, (o, h, lo, c, v, w, n) in enumerate(rows):
        label = labels[i] if labels is not None else format_bar_time(starts[i], format_date)
        parts += [
            label,
            format_price(o),
            format_price(h),
            format_price(lo),
            format_price(c),
            str(v),
            format_price(w),
            str(n),
        ]
    body = "\0".join(parts) + "\0"
    data = body.encode()
    return len(data).to_bytes(4, "big") + data


def historical_update(
    req_id: int,
    label: str,
    o: float,
    h: float,
    lo: float,
    c: float,
    volume: int,
    wap: float,
    count: int,
) -> bytes:
    return encode(Out.HISTORICAL_DATA_UPDATE, req_id, count, label, o, c, h, lo, wap, volume)


def position(account: str, ticker: Ticker, quantity: float, avg_cost: float) -> bytes:
    return encode(Out.POSITION_DATA, 3, account, *contract_block(ticker), quantity, avg_cost)


def portfolio_value(
    account: str,
    ticker: Ticker,
    quantity: float,
    market_price: float,
    avg_cost: float,
    realized: float,
) -> bytes:
    value = quantity * market_price
    unrealized = (market_price - avg_cost) * quantity
    return encode(
        Out.PORTFOLIO_VALUE,
        8,
        ticker.con_id,
        ticker.symbol,
        ticker.sec_type,
        "",
        0.0,
        "",
        "",
        ticker.primary_exchange,
        "USD",
        ticker.symbol,
        trading_class(ticker),
        quantity,
        market_price,
        round(value, 2),
        avg_cost,
        round(unrealized, 2),
        round(realized, 2),
        account,
    )


@dataclass(frozen=True, slots=True)
class OrderView:
    """What openOrder/orderStatus say about one order."""

    order_id: int
    client_id: int
    perm_id: int
    ticker: Ticker
    action: str
    quantity: float
    order_type: str
    lmt_price: float | None
    aux_price: float | None
    tif: str
    oca_group: str
    account: str
    order_ref: str
    parent_id: int
    oca_type: int
    outside_rth: bool
    transmit: bool
    status: str


def open_order(view: OrderView, exchange: str = "SMART") -> bytes:
    """`5` for a plain (non-combo, non-algo) order: 129 fields at version 178."""
    c = contract_block(view.ticker, exchange)
    return encode(
        Out.OPEN_ORDER,
        view.order_id,
        *c,
        view.action,
        view.quantity,
        view.order_type,
        view.lmt_price,
        view.aux_price,
        view.tif,
        view.oca_group,
        view.account,
        "",
        0,
        view.order_ref,
        view.client_id,
        view.perm_id,
        view.outside_rth,
        False,
        0.0,
        "",
        "",
        "",
        "",
        "",
        # modelCode .. deltaNeutralAuxPrice
        "",
        "",
        "",
        "",
        "",
        0,
        "",
        "",
        0,
        "",
        "",
        "",
        "",
        "",
        "",
        False,
        False,
        False,
        "",
        view.oca_type,
        False,
        False,
        "",
        view.parent_id,
        0,
        "",
        0,
        "",
        "",
        # continuousUpdate .. comboLegsDescrip, then the three empty lists
        False,
        0,
        "",
        "",
        "",
        "",
        "",
        0,
        0,
        0,
        # scale: initLevelSize, subsLevelSize, priceIncrement; hedgeType
        "",
        "",
        "",
        "",
        # optOutSmartRouting, clearingAccount, clearingIntent, notHeld, dnc present, algo
        False,
        "",
        "IB",
        False,
        False,
        "",
        # solicited, whatIf, order state (status .. warningText), randomizeSize/Price
        False,
        False,
        view.status,
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        False,
        False,
        # conditions
        0,
        # adjustedOrderType .. usePriceMgmtAlgo
        "None",
        "",
        "",
        "",
        "",
        "",
        "",
        0,
        "",
        "",
        "",
        "",
        False,
        False,
        False,
        "",
        # duration, postToAts, autoCancelParent, minTradeQty, minCompeteSize,
        # competeAgainstBestOffset, midOffsetAtWhole, midOffsetAtHalf
        "",
        "",
        False,
        "",
        "",
        "",
        "",
        "",
    )


def order_status(
    order_id: int,
    status: str,
    filled: float,
    remaining: float,
    avg_price: float,
    perm_id: int,
    parent_id: int,
    last_price: float,
    client_id: int,
) -> bytes:
    return encode(
        Out.ORDER_STATUS,
        order_id,
        status,
        filled,
        remaining,
        avg_price,
        perm_id,
        parent_id,
        last_price,
        client_id,
        "",
        0.0,
    )


def exec_details(
    req_id: int,
    order_id: int,
    ticker: Ticker,
    exec_id: str,
    time_text: str,
    account: str,
    side: str,
    shares: float,
    price: float,
    perm_id: int,
    client_id: int,
    cum_qty: float,
    avg_price: float,
    order_ref: str,
) -> bytes:
    return encode(
        Out.EXECUTION_DATA,
        req_id,
        order_id,
        *contract_block(ticker, "SMART"),
        exec_id,
        time_text,
        account,
        ticker.primary_exchange,
        side,
        shares,
        price,
        perm_id,
        client_id,
        0,
        cum_qty,
        avg_price,
        order_ref,
        "",
        "",
        "",
        1,
        False,
    )


def commission_report(exec_id: str, commission: float, realized_pnl: float | None) -> bytes:
    return encode(
        Out.COMMISSION_REPORT,
        1,
        exec_id,
        commission,
        "USD",
        1.7976931348623157e308 if realized_pnl is None else realized_pnl,
        "",
        "",
    )


def scanner_row(rank: int, ticker: Ticker) -> tuple[object, ...]:
    return (
        rank,
        ticker.con_id,
        ticker.symbol,
        ticker.sec_type,
        "",
        0.0,
        "",
        "SMART",
        "USD",
        ticker.symbol,
        trading_class(ticker),
        trading_class(ticker),
        "",
        "",
        "",
        "",
    )


def scanner_data(req_id: int, tickers: list[Ticker]) -> bytes:
    fields: list[object] = [Out.SCANNER_DATA, 3, req_id, len(tickers)]
    for rank, ticker in enumerate(tickers):
        fields += scanner_row(rank, ticker)
    return encode(*fields)


SCANNER_PARAMETERS_XML = (
    '<?xml version="1.0" encoding="UTF-8"?><ScanParameterResponse>'
    "<InstrumentList><Instrument><name>US Stocks</name><type>STK</type></Instrument>"
    "</InstrumentList><ScanTypeList>"
    "<ScanType><displayName>Top % Gainers</displayName><scanCode>TOP_PERC_GAIN</scanCode>"
    "<instruments>STK</instruments></ScanType>"
    "<ScanType><displayName>Hot by Volume</displayName><scanCode>HOT_BY_VOLUME</scanCode>"
    "<instruments>STK</instruments></ScanType>"
    "<ScanType><displayName>Most Active</displayName><scanCode>MOST_ACTIVE</scanCode>"
    "<instruments>STK</instruments></ScanType>"
    "</ScanTypeList></ScanParameterResponse>"
)


def execution_report(req_id: int, ex: Execution) -> bytes:
    """execDetails then commissionReport for one fill (`req_id` -1 when unsolicited)."""
    order = ex.order
    when = to_et(ex.time_ns).strftime("%Y%m%d %H:%M:%S") + " US/Eastern"
    details = exec_details(
        req_id,
        order.order_id,
        order.ticker,
        ex.exec_id,
        when,
        order.account,
        "BOT" if order.aggressor > 0 else "SLD",
        ex.size,
        ex.price_c / 100,
        order.perm_id,
        order.client_id,
        ex.cum_qty,
        ex.avg_price,
        order.order_ref,
    )
    return details + commission_report(ex.exec_id, ex.commission_usd, ex.realized_pnl_usd)
