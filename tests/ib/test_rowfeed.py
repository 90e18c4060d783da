"""RowFeed: depth and trade messages routed into rows on ib_async's real decoder."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st
from ib_async import IB, Stock, TickByTickBidAsk

from ibdesk.ib.rowfeed import DepthUpdate, RowFeed, TradeTick


def _stock(symbol: str, con_id: int) -> Stock:
    return Stock(symbol, "SMART", "USD", conId=con_id)  # as qualified: tickers key on conId


def _ib_with_feed() -> tuple[IB, RowFeed]:
    ib = IB()
    return ib, RowFeed(ib.client.decoder)


def _depth_rows(feed: RowFeed) -> list[DepthUpdate]:
    [(_, rows)] = feed.take()
    assert all(isinstance(r, DepthUpdate) for r in rows)
    return [r for r in rows if isinstance(r, DepthUpdate)]


def _interpret(ib: IB, *messages: list[str]) -> None:
    for fields in messages:
        ib.client.decoder.interpret(fields)


def test_routed_depth_messages_become_rows_with_the_read_time() -> None:
    ib, feed = _ib_with_feed()
    feed.route_depth(7, "depth:AAPL:SMART", "AAPL", is_smart=False)
    feed.read_ns = 123
    _interpret(
        ib,
        ["12", "1", "7", "0", "0", "1", "189.25", "300"],
        ["12", "1", "7", "3", "2", "0", "189.31", "0"],
    )
    [(route, rows)] = feed.take()
    assert route.key == "depth:AAPL:SMART"
    assert rows == [
        DepthUpdate("depth:AAPL:SMART", "AAPL", 123, 0, 0, 1, 189.25, 300.0, "", False),
        # a delete keeps the price and size on the wire (ib_async would rewrite them)
        DepthUpdate("depth:AAPL:SMART", "AAPL", 123, 3, 2, 0, 189.31, 0.0, "", False),
    ]
    assert feed.take() == []  # taken rows are not handed out twice


def test_l2_messages_carry_market_maker_and_smart_flag() -> None:
    ib, feed = _ib_with_feed()
    feed.route_depth(9, "depth:TSLA:SMART", "TSLA", is_smart=True)
    _interpret(
        ib,
        ["13", "1", "9", "2", "NSDQ", "1", "0", "251.1", "5", "1"],
        ["13", "1", "9", "0", "ARCA", "0", "1", "250.9", "7", "0"],
        ["13", "1", "9", "1", "IEX", "0", "1", "250.8", "2"],  # before server version 146
    )
    rows = _depth_rows(feed)
    assert [(r.market_maker, r.operation, r.side, r.is_smart) for r in rows] == [
        ("NSDQ", 1, 0, True),
        ("ARCA", 0, 1, False),
        ("IEX", 0, 1, True),  # no flag on the wire: the subscription's
    ]


def test_unrouted_request_ids_still_reach_ib_async() -> None:
    ib, feed = _ib_with_feed()
    ticker = ib.wrapper.startTicker(5, _stock("MSFT", 272093), "mktDepth")
    _interpret(ib, ["12", "1", "5", "0", "0", "1", "410.5", "100"])
    assert feed.take() == []
    assert [(t.price, t.size) for t in ticker.domTicks] == [(410.5, 100.0)]
    assert [(lv.price, lv.size) for lv in ticker.domBids] == [(410.5, 100.0)]


def test_retired_request_rows_are_handed_out_then_its_tail_is_dropped() -> None:
    ib, feed = _ib_with_feed()
    feed.route_depth(3, "depth:AMD:SMART", "AMD", is_smart=False)
    _interpret(ib, ["12", "1", "3", "0", "0", "1", "150.0", "10"])
    feed.retire(3)
    replacement = feed.route_depth(4, "depth:AMD:SMART", "AMD", is_smart=False)
    _interpret(
        ib,
        ["12", "1", "3", "1", "0", "1", "149.9", "10"],  # in flight for the old request
        ["12", "1", "4", "0", "0", "0", "150.1", "20"],
    )
    batches = feed.take()
    assert [(route is replacement, [r.price for r in rows]) for route, rows in batches] == [
        (False, [150.0]),  # received before the retirement: kept, first
        (True, [150.1]),
    ]
    assert feed.dropped == 1


def test_tick_by_tick_prints_become_trades_and_other_tick_types_fall_back() -> None:
    ib, feed = _ib_with_feed()
    feed.route_trades(11, "tbt:AllLast:NVDA:SMART", "NVDA")
    feed.read_ns = 99
    bid_ask = ib.wrapper.startTicker(12, _stock("NVDA", 4815747), "BidAsk")
    _interpret(
        ib,
        ["99", "11", "2", "1700000000", "120.5", "300", "0", "NASDAQ", ""],
        ["99", "11", "2", "1700000000", "-1", "0", "0", "", ""],  # IB's empty placeholder
        ["99", "12", "3", "1700000000", "120.4", "120.6", "100", "200", "0"],
    )
    [(_, rows)] = feed.take()
    assert rows == [TradeTick("tbt:AllLast:NVDA:SMART", "NVDA", 99, 120.5, 300.0, "NASDAQ")]
    quotes = [t for t in bid_ask.tickByTicks if isinstance(t, TickByTickBidAsk)]
    assert [(t.bidPrice, t.askPrice) for t in quotes] == [(120.4, 120.6)]


def test_malformed_message_is_logged_by_ib_async_and_the_feed_goes_on() -> None:
    ib, feed = _ib_with_feed()
    feed.route_depth(2, "depth:AAPL:SMART", "AAPL", is_smart=False)
    _interpret(
        ib,
        ["12", "1", "2", "x", "0", "1", "1.0", "1"],  # Decoder.interpret logs and drops it
        ["12", "1", "2", "0", "0", "1", "1.5", "2"],
    )
    assert [(r.position, r.price) for r in _depth_rows(feed)] == [(0, 1.5)]


prices = st.floats(min_value=0.01, max_value=1e5, allow_nan=False).map(lambda p: round(p, 4))


@given(
    position=st.integers(0, 19),
    operation=st.sampled_from([0, 1]),
    side=st.sampled_from([0, 1]),
    price=prices,
    size=st.integers(0, 10**7),
)
def test_fields_decode_as_ib_async_decodes_them(
    position: int, operation: int, side: int, price: float, size: int
) -> None:
    """Inserts/updates: the row holds what ib_async's own handler would have stored."""
    fields = ["12", "1", "1", str(position), str(operation), str(side), repr(price), str(size)]
    ours, feed = _ib_with_feed()
    feed.route_depth(1, "k", "S", is_smart=False)
    _interpret(ours, fields)
    [row] = _depth_rows(feed)
    theirs = IB()
    ticker = theirs.wrapper.startTicker(1, _stock("S", 1), "mktDepth")
    _interpret(theirs, fields)
    [tick] = ticker.domTicks
    assert (row.position, row.operation, row.side) == (tick.position, tick.operation, tick.side)
    assert row.price == tick.price
    assert row.size == tick.size
    assert not math.isnan(row.price)
