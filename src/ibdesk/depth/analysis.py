"""Order-book microstructure of one symbol-day: the book pass (spread, depth, order flow
imbalance, microprice, per-minute dynamics), pure, vectorised, streamed in chunks, and the
entry points that complete it with the day's trades (`ibdesk.depth.tape`).

It must not do I/O: input is polars frames in the L2 snapshot schema v1 (`ts` as Datetime
or int64 ns, `bid_px_00`...) fed chunk by chunk in time order, plus one trades v1 frame;
output is the frozen values of `ibdesk.depth.results`. Memory stays bounded by the chunk
size plus three float64 values per snapshot row (time, mid, spread) and small per-window
and per-minute aggregates, so a 470k-row, 20-level day never sits in memory whole.

Conventions: prices in dollars, sizes in shares, times in ns since the epoch (UTC). A
missing (null or NaN) price means the level is empty; a missing size counts as 0 shares.
"""

from __future__ import annotations

import queue
from collections import defaultdict, deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

from ibdesk.depth.results import (
    BPS,
    NS_PER_MINUTE,
    AnalysisParams,
    BookStats,
    DepthAnalysis,
    DepthStats,
    Dynamics,
    MicropriceStats,
    OfiLevel,
    SpreadStats,
    WindowSeries,
)
from ibdesk.depth.stats import (
    BoolArray,
    FloatArray,
    IntArray,
    ValueGaps,
    corr,
    filled_percentile,
    fit_ols,
    mean_or_none,
    none_if_nan,
)
from ibdesk.depth.tape import TradeMarks, TradeTape, mark_trades, price_impact, trade_tape

MAX_OFI_LEVELS = 5
CHUNK_WORKERS = 1  # summaries beside the 2 decoding threads: more only add scratch memory
P95 = 95.0


# --------------------------------------------------------------------------- snapshot columns


def level_count(columns: list[str]) -> int:
    """Number of complete levels (bid/ask price and size present) among `columns`."""
    names = set(columns)
    k = 0
    while all(f"{p}_{k:02d}" in names for p in ("bid_px", "bid_sz", "ask_px", "ask_sz")):
        k += 1
    return k


def snapshot_columns(levels: int) -> list[str]:
    """The snapshot columns the analysis reads: ts, every level's sizes (depth, heatmap)
    and the prices of the OFI levels only (deeper prices enter no metric)."""
    ofi_levels = min(MAX_OFI_LEVELS, levels)
    return [
        "ts",
        *(f"{side}_sz_{k:02d}" for side in ("bid", "ask") for k in range(levels)),
        *(f"{side}_px_{k:02d}" for side in ("bid", "ask") for k in range(ofi_levels)),
    ]


def normalize_chunk(chunk: pl.DataFrame, levels: int, *, fill_nulls: bool = True) -> pl.DataFrame:
    """`snapshot_columns` of `chunk` in the analysis' types: ts int64 ns, sizes float64
    with missing = 0, prices float64 with missing = NaN.

    Only the columns that need it are converted, so a normalized chunk costs nothing to
    normalize again; the loader calls this while decoding, in its read-ahead thread, with
    `fill_nulls=False`: missing values stay null there and the chunk's summary fills them
    into scratch buffers it reuses, cheaper than a new column per chunk.
    """
    frame = chunk.select(snapshot_columns(levels))
    fixes: list[pl.Expr] = []
    ts_dtype = frame.schema["ts"]
    if isinstance(ts_dtype, pl.Datetime):
        fixes.append(pl.col("ts").dt.cast_time_unit("ns").cast(pl.Int64))
    elif ts_dtype != pl.Int64:
        fixes.append(pl.col("ts").cast(pl.Int64))
    for series in frame.get_columns()[1:]:
        if series.dtype != pl.Float64 or (fill_nulls and series.null_count()):
            fix = pl.col(series.name).cast(pl.Float64)
            if fill_nulls:
                fix = fix.fill_null(_missing_value(series.name))
            fixes.append(fix)
    return frame.with_columns(fixes) if fixes else frame


def _missing_value(column: str) -> float:
    """What a missing value of a snapshot column means: 0 shares, or no price (NaN)."""
    return 0.0 if "_sz_" in column else np.nan


def _chunk_arrays(
    chunk: pl.DataFrame, levels: int, ofi_levels: int, work: Workspace
) -> tuple[IntArray, list[FloatArray], list[FloatArray], list[FloatArray], list[FloatArray]]:
    """ts (int64 ns), bid and ask sizes per level (missing = 0), bid and ask prices of
    the OFI levels (missing = NaN), as numpy arrays: views (no copy) of single-chunk
    columns without nulls, `work`'s buffers for columns with nulls."""
    columns = normalize_chunk(chunk, levels, fill_nulls=False).get_columns()
    floats = [_filled(series, work) for series in columns[1:]]
    at = 2 * levels
    return (
        np.asarray(columns[0].to_numpy(), dtype=np.int64),
        floats[:levels],
        floats[levels:at],
        floats[at : at + ofi_levels],
        floats[at + ofi_levels :],
    )


def _filled(series: pl.Series, work: Workspace) -> FloatArray:
    """A float64 column as numpy with its missing values filled (`_missing_value`): the
    column's own buffer when nothing is missing, else a copy in `work` with the missing
    rows overwritten (the values under nulls are undefined)."""
    if not series.null_count():
        return np.asarray(series.to_numpy(), dtype=np.float64)
    array = series.to_arrow()
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    n, offset = len(array), array.offset
    validity, data = array.buffers()[:2]
    assert validity is not None
    assert data is not None
    values = np.frombuffer(data, np.float64, count=n, offset=offset * 8)
    present = np.unpackbits(np.frombuffer(validity, np.uint8), count=offset + n, bitorder="little")
    out = work.floats(f"column {series.name}", n)
    np.copyto(out, values)
    out[np.flatnonzero(present[offset:] == 0)] = _missing_value(series.name)
    return out


class Workspace:
    """Scratch arrays that one thread's chunk summaries reuse for their temporaries, so the
    chunks of a day do not each allocate (and fault in) fresh memory for them."""

    __slots__ = ("_buffers",)

    def __init__(self) -> None:
        self._buffers: dict[str, npt.NDArray[Any]] = {}

    def _get(self, name: str, n: int, dtype: type[np.generic]) -> npt.NDArray[Any]:
        buffer = self._buffers.get(name)
        if buffer is None or len(buffer) < n:
            buffer = np.empty(n, dtype=dtype)
            self._buffers[name] = buffer
        return buffer[:n]

    def floats(self, name: str, n: int) -> FloatArray:
        return self._get(name, n, np.float64)

    def ints(self, name: str, n: int) -> IntArray:
        return self._get(name, n, np.int64)

    def flags(self, name: str, n: int) -> BoolArray:
        return self._get(name, n, np.bool_)


def _imbalance_totals(
    bids: list[FloatArray], asks: list[FloatArray], work: Workspace, *, check_nan: bool = True
) -> dict[str, float] | None:
    """Sum and count of the depth imbalance (`imbalance`) over the first 1, min(5, N) and
    N levels of each row: one add per level into running totals (in `work`), each depth's
    imbalance taken as the totals reach it. None, with `check_nan`, when a size is NaN
    (the caller counts those as 0 and asks again)."""
    n, levels = len(bids[0]), len(bids)
    top = min(MAX_OFI_LEVELS, levels)
    out: dict[str, float] = {}
    both_sides, difference = work.floats("f0", n), work.floats("f1", n)
    share, has_depth = work.floats("f2", n), work.flags("has_depth", n)

    def add(label: str, bid: FloatArray, ask: FloatArray) -> None:
        np.add(bid, ask, out=both_sides)
        np.greater(both_sides, 0.0, out=has_depth)
        share.fill(0.0)
        np.divide(np.subtract(bid, ask, out=difference), both_sides, out=share, where=has_depth)
        out[f"imb_{label}_sum"] = float(share.sum())
        out[f"imb_{label}_n"] = float(np.count_nonzero(has_depth))

    add("1", bids[0], asks[0])
    bid, ask = bids[0], asks[0]
    if levels > 1:
        bid = np.add(bids[0], bids[1], out=work.floats("f3", n))
        ask = np.add(asks[0], asks[1], out=work.floats("f4", n))
    for k in range(2, levels):
        if k == top:
            add("5", bid, ask)
        np.add(bid, bids[k], out=bid)
        np.add(ask, asks[k], out=ask)
    if top == levels:
        add("5", bid, ask)
    if check_nan and np.isnan(bid.sum() + ask.sum()):
        return None
    add("all", bid, ask)
    return out


def _ofi_pairs_into(
    out: FloatArray,
    bid_px: FloatArray,
    bid_sz: FloatArray,
    ask_px: FloatArray,
    ask_sz: FloatArray,
    work: Workspace,
) -> None:
    """`ofi_contribution` between consecutive rows of one chunk into `out` (one shorter),
    for sizes without NaN.

    Pairs lacking a price come out finite (comparisons with NaN are false); the caller
    masks them to 0.
    """
    pb, pb_prev, pa, pa_prev = bid_px[1:], bid_px[:-1], ask_px[1:], ask_px[:-1]
    test, part = work.flags("ofi_test", len(out)), work.floats("f2", len(out))
    np.multiply(np.greater_equal(pb, pb_prev, out=test), bid_sz[1:], out=out)
    out -= np.multiply(np.less_equal(pb, pb_prev, out=test), bid_sz[:-1], out=part)
    out -= np.multiply(np.less_equal(pa, pa_prev, out=test), ask_sz[1:], out=part)
    out += np.multiply(np.greater_equal(pa, pa_prev, out=test), ask_sz[:-1], out=part)


def ofi_contribution(
    bid_px: FloatArray,
    bid_sz: FloatArray,
    ask_px: FloatArray,
    ask_sz: FloatArray,
    prev_bid_px: FloatArray,
    prev_bid_sz: FloatArray,
    prev_ask_px: FloatArray,
    prev_ask_sz: FloatArray,
) -> FloatArray:
    """Order flow imbalance e_n of Cont, Kukanov & Stoikov (2014), "The price impact of
    order book events", J. Financial Econometrics 12(1), eq. (2), at one level:

        e_n = 1{Pb_n ≥ Pb_{n−1}}·Qb_n − 1{Pb_n ≤ Pb_{n−1}}·Qb_{n−1}
            − 1{Pa_n ≤ Pa_{n−1}}·Qa_n + 1{Pa_n ≥ Pa_{n−1}}·Qa_{n−1}

    NaN where either row lacks this level's bid or ask price (the pair is skipped); a
    missing size counts as 0.
    """
    valid = ~(np.isnan(bid_px) | np.isnan(ask_px) | np.isnan(prev_bid_px) | np.isnan(prev_ask_px))
    e = (
        (bid_px >= prev_bid_px) * _zero_nan(bid_sz)
        - (bid_px <= prev_bid_px) * _zero_nan(prev_bid_sz)
        - (ask_px <= prev_ask_px) * _zero_nan(ask_sz)
        + (ask_px >= prev_ask_px) * _zero_nan(prev_ask_sz)
    )
    return np.where(valid, e, np.nan)


def imbalance(bid_size: FloatArray, ask_size: FloatArray) -> FloatArray:
    """Depth imbalance (ΣQb − ΣQa)/(ΣQb + ΣQa) in [−1, 1]; NaN when both sides are empty."""
    total = bid_size + ask_size
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (bid_size - ask_size) / total, np.nan)


def microprice(
    bid_px: FloatArray, bid_sz: FloatArray, ask_px: FloatArray, ask_sz: FloatArray
) -> FloatArray:
    """Stoikov's weighted mid I·Pa + (1 − I)·Pb with I = Qb/(Qb + Qa) (Stoikov 2018,
    "The micro-price", Quantitative Finance 18(12)); NaN without both sides or sizes."""
    total = bid_sz + ask_sz
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = np.where(total > 0, bid_sz / total, np.nan)
    return weight * ask_px + (1.0 - weight) * bid_px


def _zero_nan(values: FloatArray) -> FloatArray:
    return np.where(np.isnan(values), 0.0, values)


# --------------------------------------------------------------------------- grouping


@dataclass(frozen=True, slots=True)
class Groups:
    """Per-key reductions of rows sorted by key: sums (of 1-D or 2-D row arrays), and the
    last non-NaN value."""

    keys: IntArray
    sums: dict[str, FloatArray]
    lasts: dict[str, FloatArray]


def group_sorted(
    keys: IntArray,
    sums: dict[str, FloatArray],
    lasts: dict[str, FloatArray],
    count: str | None = None,
) -> Groups:
    """Reduce runs of equal keys (rows sorted by key) with `reduceat`, no Python row loop.

    With `count`, the number of rows of each key is added to the sums under that name.
    """
    if len(keys) == 0:
        empty_sums = {k: v[:0] for k, v in sums.items()}
        if count is not None:
            empty_sums[count] = np.zeros(0)
        return Groups(keys, empty_sums, {k: v[:0] for k, v in lasts.items()})
    starts = np.concatenate(([0], np.flatnonzero(keys[1:] != keys[:-1]) + 1))
    ends = np.append(starts[1:], len(keys)) - 1
    out_lasts = {name: _last_values(values, starts, ends) for name, values in lasts.items()}
    out_sums = {k: np.add.reduceat(v, starts) for k, v in sums.items()}
    if count is not None:
        out_sums[count] = np.diff(np.append(starts, len(keys))).astype(np.float64)
    return Groups(keys[starts], out_sums, out_lasts)


def _last_values(values: FloatArray, starts: IntArray, ends: IntArray) -> FloatArray:
    """The last non-NaN value of each run [start, end] of rows (NaN when it has none); the
    rows without a value are visited only when a run ends on one."""
    out = values[ends]
    if not np.isnan(out).any():
        return out
    at = ValueGaps.of(values).last_with_value(ends)
    return np.where(at >= starts, values[np.maximum(at, 0)], np.nan)


def merge_groups(parts: list[Groups]) -> Groups:
    """Combine per-chunk groups: sums add up, lasts keep the latest non-NaN value."""
    if not parts:
        return Groups(np.zeros(0, np.int64), {}, {})
    keys = np.concatenate([p.keys for p in parts])
    sums = {k: np.concatenate([p.sums[k] for p in parts]) for k in parts[0].sums}
    lasts = {k: np.concatenate([p.lasts[k] for p in parts]) for k in parts[0].lasts}
    if len(keys) > 1 and bool(np.any(keys[1:] < keys[:-1])):
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        sums = {k: v[order] for k, v in sums.items()}
        lasts = {k: v[order] for k, v in lasts.items()}
    return group_sorted(keys, sums, lasts)


# --------------------------------------------------------------------------- book pass


@dataclass(frozen=True, slots=True)
class ChunkSummary:
    """One chunk reduced on its own: everything but the OFI of its first row, which needs
    the previous chunk's last row (`first`/`last`: per OFI level, bid px, bid size, ask px
    and ask size of the chunk's first and last row)."""

    rows: int
    ts: IntArray
    mid: FloatArray
    spread: FloatArray
    windows: Groups
    minutes: Groups
    totals: dict[str, float]
    first: tuple[tuple[float, float, float, float], ...]
    last: tuple[tuple[float, float, float, float], ...]
    first_both: bool
    last_both: bool


def _row(
    bid_px: FloatArray, bid_sz: FloatArray, ask_px: FloatArray, ask_sz: FloatArray, at: int
) -> tuple[float, float, float, float]:
    return float(bid_px[at]), float(bid_sz[at]), float(ask_px[at]), float(ask_sz[at])


RowsOut = tuple[IntArray, FloatArray, FloatArray]


def summarize_chunk(
    chunk: pl.DataFrame,
    levels: int,
    window_ns: int,
    work: Workspace | None = None,
    rows_out: RowsOut | None = None,
) -> ChunkSummary | None:
    """Reduce one snapshot chunk (sorted here if needed) to per-window and per-minute sums,
    day totals and its per-row time, mid and spread; None for an empty chunk. Pure (its
    temporaries live in `work`, which one thread at a time may lend it; the per-row time,
    mid and spread go to `rows_out` when given, one array per day instead of per chunk),
    so chunks can be summarized concurrently and folded in time order."""
    n = chunk.height
    if n == 0:
        return None
    work = work or Workspace()
    ofi_levels = min(MAX_OFI_LEVELS, levels)
    ts, bids, asks, bid_px, ask_px = _chunk_arrays(chunk, levels, ofi_levels, work)
    if n > 1 and bool(np.any(ts[1:] < ts[:-1])):
        order = np.argsort(ts, kind="stable")
        ts = ts[order]
        bids, asks = [a[order] for a in bids], [a[order] for a in asks]
        bid_px, ask_px = [a[order] for a in bid_px], [a[order] for a in ask_px]
    totals: dict[str, float] = defaultdict(float)

    # depth: row totals over 1, 5 and all levels feed the imbalances (day totals only;
    # the mean sizes come from the per-minute sums of each level)
    imbalances = _imbalance_totals(bids, asks, work)
    if imbalances is None:  # a NaN size counts as 0
        bids = [np.where(np.isnan(a), 0.0, a) for a in bids]
        asks = [np.where(np.isnan(a), 0.0, a) for a in asks]
        imbalances = _imbalance_totals(bids, asks, work, check_nan=False)
    assert imbalances is not None
    totals.update(imbalances)

    # level 0: mid and spread (NaN where a side is missing), microprice offset
    bid0, ask0 = bid_px[0], ask_px[0]
    if rows_out is None:
        mid, spread = np.add(bid0, ask0), np.subtract(ask0, bid0)
    else:
        np.copyto(rows_out[0], ts)
        ts = rows_out[0]
        mid = np.add(bid0, ask0, out=rows_out[1])
        spread = np.subtract(ask0, bid0, out=rows_out[2])
    mid *= 0.5
    micro_off = _microprice_offset(bid0, bids[0], ask0, asks[0], mid, work)
    has_micro = np.isnan(micro_off, out=work.flags("has_micro", n))
    np.logical_not(has_micro, out=has_micro)
    totals["micro_sum"] += float(np.sum(micro_off, where=has_micro))
    totals["micro_n"] += float(np.count_nonzero(has_micro))
    no_spread = np.isnan(spread, out=work.flags("no_spread", n))
    both = np.logical_not(no_spread, out=work.flags("both", n))

    # OFI per level between consecutive rows of the chunk; the first row's OFI (paired
    # with the previous chunk's last row) is left at 0 for `BookAccumulator.fold`
    pair_ok = work.flags("pair_ok", n)
    pair_ok[0] = False
    np.logical_and(both[1:], both[:-1], out=pair_ok[1:])
    ofi: dict[str, FloatArray] = {}
    for k in range(ofi_levels):
        e = work.floats(f"ofi_{k}", n)
        e[0] = 0.0
        _ofi_pairs_into(e[1:], bid_px[k], bids[k], ask_px[k], asks[k], work)
        valid = pair_ok
        if k > 0:  # level 0's prices are in `both` already
            lacks = np.isnan(bid_px[k], out=work.flags("lacks_level", n))
            lacks |= np.isnan(ask_px[k], out=work.flags("lacks_ask", n))
            valid = work.flags("pair_valid", n)
            valid[0] = False
            np.logical_or(lacks[1:], lacks[:-1], out=valid[1:])
            np.logical_not(valid[1:], out=valid[1:])
            valid &= pair_ok
        e *= valid
        ofi[f"ofi_{k}"] = e
        totals[f"ofi_{k}"] += float(e.sum())
    window_keys = np.floor_divide(ts, window_ns, out=work.ints("keys", n))
    windows = group_sorted(window_keys, ofi, {"mid": mid, "micro": micro_off})
    spread_sum, spread_n = work.floats("f3", n), work.floats("f4", n)
    np.copyto(spread_sum, spread)
    np.copyto(spread_sum, 0.0, where=no_spread)
    np.copyto(spread_n, both)
    sums = {"spread_sum": spread_sum, "spread_n": spread_n, "ofi_0": ofi["ofi_0"]}
    sums.update((f"bsz_{k}", bids[k]) for k in range(levels))
    sums.update((f"asz_{k}", asks[k]) for k in range(levels))
    minute_keys = np.floor_divide(ts, NS_PER_MINUTE, out=work.ints("keys", n))
    return ChunkSummary(
        rows=n,
        ts=ts,
        mid=mid,
        spread=spread,
        windows=windows,
        minutes=group_sorted(minute_keys, sums, {"mid": mid}, count="rows"),
        totals=dict(totals),
        first=tuple(_row(bid_px[k], bids[k], ask_px[k], asks[k], 0) for k in range(ofi_levels)),
        last=tuple(_row(bid_px[k], bids[k], ask_px[k], asks[k], -1) for k in range(ofi_levels)),
        first_both=bool(both[0]),
        last_both=bool(both[-1]),
    )


def _microprice_offset(
    bid_px: FloatArray,
    bid_sz: FloatArray,
    ask_px: FloatArray,
    ask_sz: FloatArray,
    mid: FloatArray,
    work: Workspace,
) -> FloatArray:
    """`microprice` − mid in `work`'s buffers (the same operations, no temporaries)."""
    n = len(mid)
    total = np.add(bid_sz, ask_sz, out=work.floats("f0", n))
    weight = work.floats("f1", n)
    with np.errstate(invalid="ignore", divide="ignore"):
        np.divide(bid_sz, total, out=weight)
    no_size = np.greater(total, 0.0, out=work.flags("micro_sized", n))
    np.logical_not(no_size, out=no_size)
    np.copyto(weight, np.nan, where=no_size)
    offset = np.multiply(weight, ask_px, out=work.floats("micro_offset", n))
    np.subtract(1.0, weight, out=weight)
    offset += np.multiply(weight, bid_px, out=weight)
    offset -= mid
    return offset


class BookAccumulator:
    """Folds snapshot chunks, in time order, into the day's book statistics.

    Each chunk is reduced at once (`summarize_chunk`) to per-window and per-minute sums
    (and three floats per row), so memory is bounded by the chunk; summaries are folded in
    time order, and the last row of a chunk is kept to pair with the first row of the next
    one, so OFI is the same however the day is chunked and whichever thread summarized it.

    Cost: one pass over each column the analysis needs (`snapshot_columns`: ts, every
    size, the prices of the OFI levels), numpy views of the chunk's buffers rather than
    copies, day totals folded per chunk and only the per-minute/per-window series kept.
    With `expected_rows` (the day's row count, from file metadata) the per-row time, mid
    and spread are written straight into one array each for the day, not gathered from
    per-chunk arrays at the end; more rows than expected still work (gathered then).
    """

    __slots__ = (
        "_carry",
        "_day_rows",
        "_levels",
        "_mid_parts",
        "_minute_parts",
        "_ofi_levels",
        "_params",
        "_placed",
        "_prev_both",
        "_sorted_rows",
        "_spread_parts",
        "_totals",
        "_ts_parts",
        "_window_parts",
        "rows",
    )

    def __init__(self, levels: int, params: AnalysisParams, expected_rows: int = 0) -> None:
        if levels < 1:
            raise ValueError("a snapshot needs at least one level")
        self._levels = levels
        self._ofi_levels = min(MAX_OFI_LEVELS, levels)
        self._params = params
        self._day_rows: RowsOut | None = None
        if expected_rows > 0:
            self._day_rows = (
                np.empty(expected_rows, np.int64),
                np.empty(expected_rows),
                np.empty(expected_rows),
            )
        self._placed = 0  # rows handed out of `_day_rows`; -1 once a chunk did not fit
        self._sorted_rows: RowsOut | None = None
        nan = np.full(1, np.nan)
        # last row of the previous chunk per OFI level: bid px, bid size, ask px, ask size
        self._carry: list[tuple[FloatArray, ...]] = [(nan, nan, nan, nan)] * self._ofi_levels
        self._prev_both = False
        self._totals: dict[str, float] = defaultdict(float)
        self._ts_parts: list[IntArray] = []
        self._mid_parts: list[FloatArray] = []
        self._spread_parts: list[FloatArray] = []
        self._window_parts: list[Groups] = []
        self._minute_parts: list[Groups] = []
        self.rows = 0

    def add(self, chunk: pl.DataFrame) -> None:
        """Fold one chunk (later than the previous chunk's rows; sorted here if needed)."""
        rows_out = self._claim_rows(chunk.height)
        summary = summarize_chunk(chunk, self._levels, self._params.window_ns, None, rows_out)
        if summary is not None:
            self.fold(summary)

    def _claim_rows(self, n: int) -> RowsOut | None:
        """The next `n` rows of the day arrays, in the order chunks are folded; None (for
        this and every later chunk) once they are full."""
        if self._day_rows is None or self._placed < 0:
            return None
        start, end = self._placed, self._placed + n
        if end > len(self._day_rows[0]):
            self._placed = -1
            return None
        self._placed = end
        ts, mid, spread = self._day_rows
        return ts[start:end], mid[start:end], spread[start:end]

    def add_all(self, chunks: Iterable[pl.DataFrame], workers: int = CHUNK_WORKERS) -> None:
        """Fold `chunks` in order, summarizing up to `workers` of them at once in threads
        (numpy releases the GIL in its loops, so the summaries share the cores); at most
        `workers` chunks are held beyond the one the iterator is producing. One worker
        (the default) summarizes in this thread: beside the loader's decoding threads it
        keeps 2 cores busy, and each further worker needs its own scratch `Workspace`."""
        if workers <= 1:
            work = Workspace()
            for chunk in chunks:
                rows_out = self._claim_rows(chunk.height)
                summary = summarize_chunk(
                    chunk, self._levels, self._params.window_ns, work, rows_out
                )
                if summary is not None:
                    self.fold(summary)
            return
        levels, window_ns = self._levels, self._params.window_ns
        spare: queue.SimpleQueue[Workspace] = queue.SimpleQueue()
        for _ in range(workers):
            spare.put(Workspace())

        def summarize(chunk: pl.DataFrame, rows_out: RowsOut | None) -> ChunkSummary | None:
            work = spare.get()
            try:
                return summarize_chunk(chunk, levels, window_ns, work, rows_out)
            finally:
                spare.put(work)

        with ThreadPoolExecutor(workers, thread_name_prefix="ibdesk-depth-chunk") as pool:
            pending: deque[Future[ChunkSummary | None]] = deque()
            for chunk in chunks:
                pending.append(pool.submit(summarize, chunk, self._claim_rows(chunk.height)))
                if len(pending) >= workers:
                    self._fold_done(pending.popleft())
            while pending:
                self._fold_done(pending.popleft())

    def _fold_done(self, future: Future[ChunkSummary | None]) -> None:
        summary = future.result()
        if summary is not None:
            self.fold(summary)

    def fold(self, summary: ChunkSummary) -> None:
        """Add a chunk's summary (in time order), pairing its first row with the previous
        chunk's last row for OFI: the one number a chunk cannot compute alone."""
        self.rows += summary.rows
        self._sorted_rows = None
        totals = self._totals
        for name, value in summary.totals.items():
            totals[name] += value
        for k in range(self._ofi_levels):
            if self._prev_both and summary.first_both:
                first = [np.array([v]) for v in summary.first[k]]
                e0 = float(ofi_contribution(*first, *self._carry[k])[0])
                if np.isfinite(e0) and e0 != 0.0:
                    summary.windows.sums[f"ofi_{k}"][0] += e0
                    if k == 0:
                        summary.minutes.sums["ofi_0"][0] += e0
                    totals[f"ofi_{k}"] += e0
            self._carry[k] = tuple(np.array([v]) for v in summary.last[k])
        self._prev_both = summary.last_both
        self._ts_parts.append(summary.ts)
        self._mid_parts.append(summary.mid)
        self._spread_parts.append(summary.spread)
        self._window_parts.append(summary.windows)
        self._minute_parts.append(summary.minutes)

    def day_rows(self) -> RowsOut:
        """Time, mid and spread of every row, sorted by time: what `finish` reports per
        row, available before it (for work that needs only these, such as `mark_trades`).
        Call after the last chunk."""
        if self._sorted_rows is not None:
            return self._sorted_rows
        if self._day_rows is not None and self._placed >= 0:
            day_ts, day_mid, day_spread = self._day_rows
            ts, mid = day_ts[: self._placed], day_mid[: self._placed]
            spread = day_spread[: self._placed]
        else:
            ts = np.concatenate(self._ts_parts) if self._ts_parts else np.zeros(0, np.int64)
            mid = np.concatenate(self._mid_parts) if self._mid_parts else np.zeros(0)
            spread = np.concatenate(self._spread_parts) if self._spread_parts else np.zeros(0)
        if len(ts) > 1 and bool(np.any(ts[1:] < ts[:-1])):
            order = np.argsort(ts, kind="stable")
            ts, mid, spread = ts[order], mid[order], spread[order]
        rows: RowsOut = (ts, mid, spread)
        self._sorted_rows = rows
        return rows

    def finish(self) -> BookStats:
        """The day's statistics; call once after the last chunk."""
        ts, mid, spread = self.day_rows()
        # the spread's partial sorts release the GIL: run them beside the merges and fits
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ibdesk-depth-spread")
        spread_stats = pool.submit(_spread_stats, ts, mid, spread, self._params.max_gap_ns)
        pool.shutdown(wait=False)
        minutes = merge_groups(self._minute_parts)
        windows = merge_groups(self._window_parts)
        series, window_ids = self._window_series(windows)

        def total(name: str) -> float:
            return float(self._totals.get(name, 0.0))

        def size_total(side: str, depth: int) -> float:
            return float(sum(float(minutes.sums[f"{side}_{k}"].sum()) for k in range(depth)))

        ofi_levels = tuple(
            OfiLevel(
                level=k + 1,
                total=total(f"ofi_{k}"),
                fit=fit_ols(series.ofi[:, k], series.mid_change),
            )
            for k in range(self._ofi_levels)
        )
        offsets = series.microprice_offset_before
        has_offset = ~np.isnan(offsets)
        microprice_stats = MicropriceStats(
            mean_distance=mean_or_none(total("micro_sum"), total("micro_n")),
            corr_next_mid_change=corr(offsets[has_offset], series.mid_change[has_offset]),
            n_windows=int(has_offset.sum()),
        )
        rows = float(self.rows)
        top5 = min(MAX_OFI_LEVELS, self._levels)
        depth = DepthStats(
            bid_size_1=mean_or_none(size_total("bsz", 1), rows),
            ask_size_1=mean_or_none(size_total("asz", 1), rows),
            bid_size_5=mean_or_none(size_total("bsz", top5), rows),
            ask_size_5=mean_or_none(size_total("asz", top5), rows),
            bid_size_all=mean_or_none(size_total("bsz", self._levels), rows),
            ask_size_all=mean_or_none(size_total("asz", self._levels), rows),
            imbalance_1=mean_or_none(total("imb_1_sum"), total("imb_1_n")),
            imbalance_5=mean_or_none(total("imb_5_sum"), total("imb_5_n")),
            imbalance_all=mean_or_none(total("imb_all_sum"), total("imb_all_n")),
        )
        return BookStats(
            rows=self.rows,
            levels=self._levels,
            spread=spread_stats.result(),
            depth=depth,
            ofi_levels=ofi_levels,
            ofi_multilevel_fit=fit_ols(series.ofi, series.mid_change),
            microprice=microprice_stats,
            windows=series,
            window_ids=window_ids,
            dynamics=self._dynamics(minutes),
            ts_ns=ts,
            mid=mid,
            spread_usd=spread,
        )

    def _window_series(self, windows: Groups) -> tuple[WindowSeries, IntArray]:
        """Changes between consecutive windows that end with a mid.

        OFI is accumulated over every window and differenced at those windows, so the OFI
        of a window without a two-sided book is counted with the next mid change.
        """
        k = self._ofi_levels
        if len(windows.keys) == 0:
            empty = np.zeros(0)
            series = WindowSeries(np.zeros(0, np.int64), empty, np.zeros((0, k)), empty, empty)
            return series, np.zeros(0, np.int64)
        mid_last = windows.lasts["mid"]
        cum_ofi = np.column_stack([np.cumsum(windows.sums[f"ofi_{j}"]) for j in range(k)])
        has_mid = ~np.isnan(mid_last)
        valid_ids = windows.keys[has_mid]
        series = WindowSeries(
            end_ns=(valid_ids[1:] + 1) * self._params.window_ns,
            mid_change=np.diff(mid_last[has_mid]),
            ofi=np.diff(cum_ofi[has_mid], axis=0),
            signed_volume=np.zeros(max(len(valid_ids) - 1, 0)),
            microprice_offset_before=windows.lasts["micro"][has_mid][:-1],
        )
        return series, valid_ids

    def _dynamics(self, minutes: Groups) -> Dynamics:
        if len(minutes.keys) == 0:
            empty = np.zeros(0)
            shape = (0, self._levels)
            return Dynamics(
                np.zeros(0, np.int64),
                np.zeros(0, np.int64),
                empty,
                empty,
                empty,
                empty,
                empty,
                np.zeros(shape),
                np.zeros(shape),
            )
        sums = minutes.sums
        rows = sums["rows"]
        bid_sums = np.column_stack([sums[f"bsz_{k}"] for k in range(self._levels)])
        ask_sums = np.column_stack([sums[f"asz_{k}"] for k in range(self._levels)])
        per_row = rows[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            return Dynamics(
                minute_ns=minutes.keys * NS_PER_MINUTE,
                rows=rows.astype(np.int64),
                mid=minutes.lasts["mid"],
                spread_mean=np.where(
                    sums["spread_n"] > 0, sums["spread_sum"] / sums["spread_n"], np.nan
                ),
                bid_depth=bid_sums.sum(axis=1) / rows,
                ask_depth=ask_sums.sum(axis=1) / rows,
                ofi=sums["ofi_0"],
                bid_size_by_level=bid_sums / per_row,
                ask_size_by_level=ask_sums / per_row,
            )


def _spread_stats(
    ts: IntArray, mid: FloatArray, spread: FloatArray, max_gap_ns: int
) -> SpreadStats:
    """Spread statistics; the time-weighted mean weights each row by the time until the next
    row (capped at `max_gap_ns` so a pause between sessions does not dominate; the last row
    gets the median gap).

    One day-long scratch array serves the gaps, the weights and the spreads in bps; the
    partial sorts reorder the arrays they are given in place (all ours).
    """
    valid = ~np.isnan(spread)
    count = int(np.count_nonzero(valid))
    if count == 0:
        return SpreadStats(None, None, None, None, None, None, None, 0)
    everywhere = count == len(spread)
    weights = np.empty(len(ts))
    if len(ts) > 1:
        gaps = np.subtract(ts[1:], ts[:-1], out=weights[:-1])
        median_gap = filled_percentile(gaps, 50.0)
        if median_gap is None:
            median_gap = float(np.median(gaps, overwrite_input=True))
            np.subtract(ts[1:], ts[:-1], out=weights[:-1])  # in time order again
        weights[-1] = median_gap
    else:
        weights[-1] = 1.0
    np.minimum(weights, float(max_gap_ns), out=weights)
    where = True if everywhere else valid  # skip the mask when every row has a spread
    weight_total = float(np.sum(weights, where=where))
    weighted = float(np.sum(np.multiply(weights, spread, out=weights), where=where))
    values = spread.copy() if everywhere else spread[valid]
    mean = float(values.mean())
    tw = weighted / weight_total if weight_total > 0 else mean
    median, p95 = filled_percentile(values, 50.0), filled_percentile(values, P95)
    if median is None or p95 is None:
        median, p95 = (float(q) for q in np.percentile(values, [50.0, P95], overwrite_input=True))
    every_bps = np.divide(spread, mid, out=weights)
    every_bps *= BPS
    bps = every_bps if everywhere else every_bps[valid]
    mean_bps = float(bps.mean())
    median_bps, p95_bps = (float(q) for q in np.percentile(bps, [50.0, P95], overwrite_input=True))
    return SpreadStats(
        mean=mean,
        median=median,
        p95=p95,
        mean_bps=none_if_nan(mean_bps),
        median_bps=none_if_nan(median_bps),
        p95_bps=none_if_nan(p95_bps),
        time_weighted_mean=tw,
        rows=count,
    )


# --------------------------------------------------------------------------- entry points


def analyze(
    chunks: Iterable[pl.DataFrame],
    trades: pl.DataFrame | None,
    levels: int,
    params: AnalysisParams | None = None,
) -> DepthAnalysis:
    """Analyse a day: `chunks` is an iterable of snapshot frames in time order."""
    params = params or AnalysisParams()
    accumulator = BookAccumulator(levels, params)
    accumulator.add_all(chunks)
    book = accumulator.finish()
    return analyze_trades(book, trades, params)


def analyze_trades(
    book: BookStats, trades: pl.DataFrame | None, params: AnalysisParams
) -> DepthAnalysis:
    """Complete a book pass with the day's trades (volume profile and price impact)."""
    tape = trade_tape(trades, params)
    return complete_analysis(book, tape, mark_trades(tape, book.ts_ns, book.mid), params)


def complete_analysis(
    book: BookStats, tape: TradeTape, marks: TradeMarks, params: AnalysisParams
) -> DepthAnalysis:
    """The day's analysis from its book pass and its trades marked against the same rows."""
    impact, signed_per_window = price_impact(tape, marks, book, params)
    windows = replace(book.windows, signed_volume=signed_per_window)
    return DepthAnalysis(
        rows=book.rows,
        trades=tape.count,
        levels=book.levels,
        window_ns=params.window_ns,
        book=replace(book, windows=windows),
        volume_profile=tape.profile,
        price_impact=impact,
    )
