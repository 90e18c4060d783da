"""The depth analysis' parameters and results: the frozen values that the book pass and the
trades produce and the report and the plots read (units in the names); no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from ibdesk.depth.stats import Fit, FloatArray, IntArray

NS_PER_S = 1_000_000_000
NS_PER_MINUTE = 60 * NS_PER_S
BPS = 10_000.0


@dataclass(frozen=True, slots=True)
class AnalysisParams:
    """Knobs of the analysis: OFI/impact window, tick for the volume profile, gap cap."""

    window_ns: int = NS_PER_S
    tick_usd: float = 0.01
    max_gap_ns: int = 60 * NS_PER_S


@dataclass(frozen=True, slots=True)
class SpreadStats:
    """Quoted spread ask_px_00 − bid_px_00 over rows with both sides (dollars and bps)."""

    mean: float | None
    median: float | None
    p95: float | None
    mean_bps: float | None
    median_bps: float | None
    p95_bps: float | None
    time_weighted_mean: float | None
    rows: int


@dataclass(frozen=True, slots=True)
class DepthStats:
    """Mean resting size (shares) per side over 1, 5 and all levels, and mean imbalance."""

    bid_size_1: float | None
    ask_size_1: float | None
    bid_size_5: float | None
    ask_size_5: float | None
    bid_size_all: float | None
    ask_size_all: float | None
    imbalance_1: float | None
    imbalance_5: float | None
    imbalance_all: float | None


@dataclass(frozen=True, slots=True)
class OfiLevel:
    """OFI at one book level (1 = best): day total and its fit on the window's mid change."""

    level: int
    total: float
    fit: Fit


@dataclass(frozen=True, slots=True)
class WindowSeries:
    """Per-window series between consecutive windows that have a mid (the regressions' data)."""

    end_ns: IntArray
    mid_change: FloatArray
    ofi: FloatArray  # shape (windows, ofi levels): OFI of each level over the window
    signed_volume: FloatArray
    microprice_offset_before: FloatArray  # microprice − mid at the start of the window


@dataclass(frozen=True, slots=True)
class MicropriceStats:
    """Stoikov's microprice: mean distance from the mid and its link to the next mid move."""

    mean_distance: float | None
    corr_next_mid_change: float | None
    n_windows: int


@dataclass(frozen=True, slots=True)
class VolumeProfile:
    """Traded volume per tick-binned price, with VPOC and the 70% value area."""

    tick_usd: float
    prices: FloatArray
    volumes: FloatArray
    total_volume: float
    vpoc: float | None
    vah: float | None
    val: float | None
    value_area_volume: float


@dataclass(frozen=True, slots=True)
class PriceImpact:
    """Kyle's lambda and the effective / realized spread decomposition (bps, VW means)."""

    kyle_lambda: float | None
    kyle_r2: float | None
    n_windows: int
    effective_spread_bps: float | None
    realized_spread_bps: dict[int, float | None]  # horizon (s) -> value
    impact_bps: dict[int, float | None]
    trades_signed: int
    trades_lee_ready: int


@dataclass(frozen=True, slots=True)
class Dynamics:
    """Per-minute series for plots: spread, depth, OFI, mid and mean size per level."""

    minute_ns: IntArray
    rows: IntArray
    mid: FloatArray
    spread_mean: FloatArray
    bid_depth: FloatArray
    ask_depth: FloatArray
    ofi: FloatArray
    bid_size_by_level: FloatArray  # (minutes, levels)
    ask_size_by_level: FloatArray


@dataclass(frozen=True, slots=True)
class BookStats:
    """Everything the snapshot pass yields; trades are analysed against it afterwards."""

    rows: int
    levels: int
    spread: SpreadStats
    depth: DepthStats
    ofi_levels: tuple[OfiLevel, ...]
    ofi_multilevel_fit: Fit
    microprice: MicropriceStats
    windows: WindowSeries
    window_ids: IntArray  # ids (ts // window_ns) of the windows in `windows`, plus the first
    dynamics: Dynamics
    ts_ns: IntArray  # every row, sorted
    mid: FloatArray  # NaN where a side is missing
    spread_usd: FloatArray  # per row, NaN where a side is missing


@dataclass(frozen=True, slots=True)
class DepthAnalysis:
    """The full analysis of one symbol-day."""

    rows: int
    trades: int
    levels: int
    window_ns: int
    book: BookStats
    volume_profile: VolumeProfile
    price_impact: PriceImpact

    @property
    def ofi_total(self) -> float:
        return self.book.ofi_levels[0].total if self.book.ofi_levels else 0.0
