"""The live book (pure): invariants after every event, and replay of its changes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ibdesk.sim.book import MIN_LEVELS, Aggressor, LiveBook
from tests.sim.ibbook import RowBook


def _book_with_replay(seed: int) -> tuple[LiveBook, RowBook, list[tuple[int, int, int]]]:
    book = LiveBook(31_820, seed)
    replay = RowBook()
    for side in (0, 1):
        for position, (px, sz) in enumerate(zip(book.px[side], book.sz[side], strict=True)):
            replay.apply(position, 0, side, px, sz)
    trades: list[tuple[int, int, int]] = []

    def on_change(side: int, op: int, position: int, price_c: int, size: int) -> None:
        replay.apply(position, op, side, price_c, size)
        replay.check(10_000)

    book.on_change = on_change
    book.on_trade = lambda p, s, a: trades.append((p, s, a))
    return book, replay, trades


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_book_stays_sorted_uncrossed_and_deep_after_every_change(seed: int) -> None:
    book, replay, _ = _book_with_replay(seed)
    for _ in range(2000):
        book.step()
        assert len(book.px[0]) >= 20
        assert len(book.px[1]) >= 20
    assert [p for p, _ in replay.rows[1]] == book.px[1]
    assert [s for _, s in replay.rows[0]] == book.sz[0]


def test_same_seed_gives_the_same_market() -> None:
    a, _, ta = _book_with_replay(3)
    b, _, tb = _book_with_replay(3)
    for _ in range(500):
        a.step()
        b.step()
    assert a.px == b.px
    assert ta == tb


def test_a_market_buy_walks_the_asks_with_partial_fills() -> None:
    book, _, trades = _book_with_replay(1)
    first_two = book.sz[0][0] + book.sz[0][1]
    asks = book.px[0][:3]
    fills = book.take(Aggressor.BUY, first_two + 1)
    assert [p for p, _ in fills] == asks
    assert sum(s for _, s in fills) == first_two + 1
    assert [(p, s) for p, s, _ in trades] == fills
    assert len(book.px[0]) >= MIN_LEVELS


def test_a_limit_stops_at_its_price() -> None:
    book, _, _ = _book_with_replay(2)
    best = book.best_bid_c
    fills = book.take(Aggressor.SELL, 10**9, limit_c=best)
    assert fills == [(best, fills[0][1])]
