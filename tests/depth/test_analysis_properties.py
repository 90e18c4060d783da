"""Property tests of the analysis: symmetries and invariances that hold for any book."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ibdesk.depth.analysis import analyze
from ibdesk.depth.results import AnalysisParams
from tests.depth.helpers import NS, T0

TICK = 0.01
LEVELS = 3


@st.composite
def books(draw: st.DrawFn, min_rows: int = 2, max_rows: int = 40) -> pl.DataFrame:
    """Random books on the tick grid, `LEVELS` deep, with occasional one-sided rows."""
    n = draw(st.integers(min_rows, max_rows))
    bid_ticks = np.array(draw(st.lists(st.integers(990, 1010), min_size=n, max_size=n)))
    spread = np.array(draw(st.lists(st.integers(1, 3), min_size=n, max_size=n)))
    gaps_ms = np.array(draw(st.lists(st.integers(1, 1500), min_size=n, max_size=n)))
    one_sided = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n))) & draw(
        st.booleans()
    )
    sizes = st.lists(st.integers(1, 1000), min_size=n, max_size=n)
    data: dict[str, np.ndarray] = {"ts": T0 + np.cumsum(gaps_ms) * 1_000_000}
    for k in range(LEVELS):
        data[f"bid_px_{k:02d}"] = (bid_ticks - k) * TICK
        data[f"bid_sz_{k:02d}"] = np.array(draw(sizes), dtype=float)
    for k in range(LEVELS):
        data[f"ask_px_{k:02d}"] = np.where(one_sided, np.nan, (bid_ticks + spread + k) * TICK)
        data[f"ask_sz_{k:02d}"] = np.where(one_sided, np.nan, np.array(draw(sizes), dtype=float))
    frame = pl.DataFrame(data)
    return frame.with_columns(pl.col(c).fill_nan(None) for c in frame.columns if c != "ts")


def mirrored(frame: pl.DataFrame) -> pl.DataFrame:
    """Swap bid and ask: prices negated (the best bid becomes the best ask), sizes swapped."""
    renamed = {}
    for k in range(LEVELS):
        renamed[f"bid_px_{k:02d}"] = -pl.col(f"ask_px_{k:02d}")
        renamed[f"ask_px_{k:02d}"] = -pl.col(f"bid_px_{k:02d}")
        renamed[f"bid_sz_{k:02d}"] = pl.col(f"ask_sz_{k:02d}")
        renamed[f"ask_sz_{k:02d}"] = pl.col(f"bid_sz_{k:02d}")
    return frame.with_columns(**renamed)


@settings(max_examples=60, deadline=None)
@given(books())
def test_ofi_changes_sign_when_bid_and_ask_are_swapped(frame: pl.DataFrame) -> None:
    direct = analyze([frame], None, LEVELS)
    swapped = analyze([mirrored(frame)], None, LEVELS)
    for mine, theirs in zip(direct.book.ofi_levels, swapped.book.ofi_levels, strict=True):
        assert theirs.total == pytest.approx(-mine.total)
    assert swapped.book.windows.ofi == pytest.approx(-direct.book.windows.ofi)


@settings(max_examples=60, deadline=None)
@given(books(), st.floats(0.01, 1000.0))
def test_imbalance_is_invariant_to_scaling_sizes(frame: pl.DataFrame, factor: float) -> None:
    scaled = frame.with_columns(pl.col(r"^.*_sz_\d\d$") * factor)
    before = analyze([frame], None, LEVELS).book.depth
    after = analyze([scaled], None, LEVELS).book.depth
    for name in ("imbalance_1", "imbalance_5", "imbalance_all"):
        assert getattr(after, name) == pytest.approx(getattr(before, name), abs=1e-12)
    assert after.bid_size_all == pytest.approx((before.bid_size_all or 0) * factor)


@settings(max_examples=60, deadline=None)
@given(books(min_rows=3), st.data())
def test_results_do_not_depend_on_chunking(frame: pl.DataFrame, data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.sets(st.integers(1, frame.height - 1), max_size=frame.height - 1)))
    bounds = [0, *cuts, frame.height]
    chunks = [frame.slice(a, b - a) for a, b in itertools.pairwise(bounds)]
    params = AnalysisParams(window_ns=NS)
    whole = analyze([frame], None, LEVELS, params)
    pieces = analyze(chunks, None, LEVELS, params)
    assert [x.total for x in pieces.book.ofi_levels] == pytest.approx(
        [x.total for x in whole.book.ofi_levels]
    )
    assert pieces.book.windows.ofi == pytest.approx(whole.book.windows.ofi)
    assert pieces.book.windows.mid_change == pytest.approx(whole.book.windows.mid_change)
    assert pieces.book.spread == whole.book.spread
    assert pieces.book.depth.imbalance_all == pytest.approx(whole.book.depth.imbalance_all)
    assert pieces.book.dynamics.ofi == pytest.approx(whole.book.dynamics.ofi)


@settings(max_examples=60, deadline=None)
@given(books())
def test_ofi_of_an_unchanged_book_is_zero(frame: pl.DataFrame) -> None:
    first = frame.head(1)
    constant = pl.concat([first] * frame.height).with_columns(ts=frame.get_column("ts"))
    assert analyze([constant], None, LEVELS).ofi_total == 0.0
