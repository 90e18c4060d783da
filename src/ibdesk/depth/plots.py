"""Figures of an analysis: four PNGs (matplotlib) and one offline interactive HTML (plotly).

Owns presentation only: every number comes from the `DepthAnalysis` and its report. The
HTML embeds plotly.js inline and loads nothing from the network, so it opens offline.
Matplotlib is used through `Figure` objects (no pyplot state, no GUI backend).
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from matplotlib.figure import Figure
from plotly.subplots import make_subplots

from ibdesk.depth.results import NS_PER_MINUTE, DepthAnalysis
from ibdesk.depth.stats import FloatArray, IntArray

MAX_POINTS = 5_000
PNG_DPI = 110
MIN_MINUTES_FOR_MEAN = 30  # shorter captures show every snapshot's spread
SUFFIXES = ("mid_spread", "depth_heatmap", "ofi_scatter", "volume_profile")


def plot_paths(base: Path) -> list[Path]:
    """Where `write_plots` writes: `{base}_{name}.png` for each figure, then `{base}.html`."""
    return [base.with_name(f"{base.name}_{s}.png") for s in SUFFIXES] + [
        base.with_name(f"{base.name}.html")
    ]


def _stride(n: int, limit: int = MAX_POINTS) -> slice:
    return slice(None, None, max(1, -(-n // limit)))


def _times(ns: IntArray) -> np.ndarray:
    return ns.astype("datetime64[ns]")


def _level_axis(levels: int) -> list[str]:
    """Heatmap rows: deepest bid at the bottom, best bid and best ask in the middle."""
    return [f"bid {k}" for k in range(levels - 1, -1, -1)] + [f"ask {k}" for k in range(levels)]


def _heatmap_matrix(analysis: DepthAnalysis) -> FloatArray:
    dyn = analysis.book.dynamics
    bids = dyn.bid_size_by_level[:, ::-1]
    return np.column_stack([bids, dyn.ask_size_by_level]).T


def _ofi_fit_line(analysis: DepthAnalysis) -> tuple[FloatArray, FloatArray] | None:
    fit = analysis.book.ofi_levels[0].fit
    x = analysis.book.windows.ofi[:, 0]
    if fit.betas[0] is None or fit.intercept is None or len(x) == 0:
        return None
    xs = np.array([x.min(), x.max()])
    return xs, fit.intercept + fit.betas[0] * xs


def _save(figure: Figure, path: Path) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    figure.savefig(tmp, dpi=PNG_DPI, format="png", bbox_inches="tight")
    os.replace(tmp, path)
    return path


def _mid_spread_png(analysis: DepthAnalysis, title: str, path: Path) -> Path:
    book = analysis.book
    pick = _stride(len(book.ts_ns))
    times = _times(book.ts_ns[pick])
    figure = Figure(figsize=(11, 6))
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    top.plot(times, book.mid[pick], linewidth=0.8, color="tab:blue")
    top.set_ylabel("mid ($)")
    top.set_title(f"{title}: mid and spread")
    bottom.plot(times, book.spread_usd[pick], linewidth=0.4, color="tab:red", alpha=0.3)
    dyn = book.dynamics
    if len(dyn.minute_ns) > 1:
        minutes = _times(dyn.minute_ns + NS_PER_MINUTE // 2)
        bottom.plot(minutes, dyn.spread_mean, color="tab:red", label="per-minute mean")
        bottom.legend(loc="upper right")
    bottom.set_ylabel("spread ($)")
    bottom.set_xlabel("time (UTC)")
    figure.autofmt_xdate()
    return _save(figure, path)


def _heatmap_png(analysis: DepthAnalysis, title: str, path: Path) -> Path:
    dyn = analysis.book.dynamics
    figure = Figure(figsize=(11, 6))
    axes = figure.subplots()
    matrix = _heatmap_matrix(analysis)
    if matrix.size:
        minutes = _times(dyn.minute_ns).astype("datetime64[m]").astype(str)
        image = axes.imshow(matrix, aspect="auto", origin="lower", cmap="viridis")
        figure.colorbar(image, ax=axes, label="mean size (shares)")
        labels = _level_axis(analysis.levels)
        axes.set_yticks(range(len(labels)), labels, fontsize=7)
        ticks = np.linspace(0, len(minutes) - 1, num=min(len(minutes), 8)).astype(int)
        axes.set_xticks(ticks, [str(minutes[i])[11:] for i in ticks])
    axes.set_title(f"{title}: depth per level per minute")
    axes.set_xlabel("minute (UTC)")
    return _save(figure, path)


def _ofi_png(analysis: DepthAnalysis, title: str, path: Path) -> Path:
    windows = analysis.book.windows
    pick = _stride(len(windows.mid_change), 20_000)
    figure = Figure(figsize=(8, 6))
    axes = figure.subplots()
    axes.scatter(windows.ofi[pick, 0], windows.mid_change[pick], s=4, alpha=0.4)
    line = _ofi_fit_line(analysis)
    fit = analysis.book.ofi_levels[0].fit
    if line is not None:
        r2 = f"{fit.r2:.3f}" if fit.r2 is not None else "n/a"
        axes.plot(*line, color="tab:red", label=f"beta={fit.betas[0]:.3g} $/share, r2={r2}")
        axes.legend(loc="upper left")
    axes.set_xlabel(f"OFI per {analysis.window_ns / 1e9:g} s window (shares)")
    axes.set_ylabel("mid change ($)")
    axes.set_title(f"{title}: order flow imbalance vs mid change")
    return _save(figure, path)


def _profile_png(analysis: DepthAnalysis, title: str, path: Path) -> Path:
    profile = analysis.volume_profile
    figure = Figure(figsize=(7, 8))
    axes = figure.subplots()
    if len(profile.prices):
        axes.barh(profile.prices, profile.volumes, height=profile.tick_usd * 0.9, color="tab:gray")
        for value, name, color in (
            (profile.vpoc, "VPOC", "tab:red"),
            (profile.vah, "VAH", "tab:green"),
            (profile.val, "VAL", "tab:green"),
        ):
            if value is not None:
                axes.axhline(value, color=color, linestyle="--", label=f"{name} {value:g}")
        axes.legend(loc="lower right")
    else:
        axes.text(0.5, 0.5, "no trades", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlabel("volume (shares)")
    axes.set_ylabel("price ($)")
    axes.set_title(f"{title}: volume profile")
    return _save(figure, path)


def _html_figures(analysis: DepthAnalysis, title: str) -> list[go.Figure]:
    book = analysis.book
    pick = _stride(len(book.ts_ns))
    times = _times(book.ts_ns[pick])
    mid_spread = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35])
    mid_spread.add_trace(go.Scattergl(x=times, y=book.mid[pick], name="mid"), row=1, col=1)
    dyn = book.dynamics
    if len(dyn.minute_ns) >= MIN_MINUTES_FOR_MEAN:
        # Every snapshot's spread is an unreadable band at day scale; the minute mean reads.
        spread = go.Scatter(
            x=_times(dyn.minute_ns), y=dyn.spread_mean, name="spread (per-minute mean)"
        )
    else:
        spread = go.Scattergl(x=times, y=book.spread_usd[pick], name="spread", line={"shape": "hv"})
    mid_spread.add_trace(spread, row=2, col=1)
    mid_spread.update_layout(title=f"{title}: mid and spread ($)")

    heatmap = go.Figure(
        go.Heatmap(
            z=_heatmap_matrix(analysis),
            x=_times(dyn.minute_ns),
            y=_level_axis(analysis.levels),
            colorbar={"title": {"text": "shares"}},
        )
    )
    heatmap.update_layout(title=f"{title}: depth per level per minute")

    windows = book.windows
    wpick = _stride(len(windows.mid_change), 20_000)
    ofi = go.Figure(
        go.Scattergl(
            x=windows.ofi[wpick, 0], y=windows.mid_change[wpick], mode="markers", name="windows"
        )
    )
    line = _ofi_fit_line(analysis)
    if line is not None:
        ofi.add_trace(go.Scatter(x=line[0], y=line[1], mode="lines", name="OLS fit"))
    ofi.update_layout(
        title=f"{title}: OFI vs mid change", xaxis_title="OFI (shares)", yaxis_title="Δmid ($)"
    )

    profile = analysis.volume_profile
    volume = go.Figure(go.Bar(x=profile.volumes, y=profile.prices, orientation="h", name="volume"))
    for value, name in ((profile.vpoc, "VPOC"), (profile.vah, "VAH"), (profile.val, "VAL")):
        if value is not None:
            volume.add_hline(y=value, line_dash="dash", annotation_text=f"{name} {value:g}")
    volume.update_layout(title=f"{title}: volume profile", xaxis_title="shares", yaxis_title="$")
    return [mid_spread, heatmap, ofi, volume]


def _summary_rows(report: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        ("source", f"{report['source']} (found: {', '.join(report['sources'])})"),
        ("snapshot rows", report["rows"]),
        ("trades", report["trades"]),
        ("mean spread ($)", report["spread"]["mean"]),
        ("mean spread (bps)", report["spread"]["mean_bps"]),
        ("OFI total (shares)", report["ofi"]["total"]),
        ("OFI beta ($/share)", report["ofi"]["beta"]),
        ("OFI r2", report["ofi"]["r2"]),
        ("multi-level OFI r2", report["ofi_multilevel"]["r2"]),
        ("VPOC / VAL / VAH ($)", "{vpoc} / {val} / {vah}".format(**report["volume_profile"])),
        ("Kyle's lambda ($/share)", report["price_impact"]["kyle_lambda"]),
        ("effective spread (bps)", report["price_impact"]["effective_spread_bps"]),
    ]


def _display(value: Any) -> str:
    """Six significant digits for the page (the JSON report keeps every digit)."""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _html_page(analysis: DepthAnalysis, report: dict[str, Any], title: str) -> str:
    figures = _html_figures(analysis, title)
    divs = [
        figure.to_html(full_html=False, include_plotlyjs=(i == 0), include_mathjax=False)
        for i, figure in enumerate(figures)
    ]
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{html.escape(_display(value))}</td></tr>"
        for name, value in _summary_rows(report)
    )
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}th{text-align:left;padding-right:2em}"
        "</style></head><body>"
        f"<h1>{html.escape(title)}</h1><table>{rows}</table>" + "".join(divs) + "</body></html>\n"
    )


def write_plots(analysis: DepthAnalysis, report: dict[str, Any], base: Path) -> list[Path]:
    """Write the four PNGs and the HTML report at `plot_paths(base)`; return the paths."""
    base.parent.mkdir(parents=True, exist_ok=True)
    title = f"{report['symbol']} {report['date']} ({report['source']})"
    png_paths = plot_paths(base)[:4]
    html_path = plot_paths(base)[4]
    written = [
        _mid_spread_png(analysis, title, png_paths[0]),
        _heatmap_png(analysis, title, png_paths[1]),
        _ofi_png(analysis, title, png_paths[2]),
        _profile_png(analysis, title, png_paths[3]),
    ]
    tmp = html_path.with_name(html_path.name + ".tmp")
    tmp.write_text(_html_page(analysis, report, title), encoding="utf-8")
    os.replace(tmp, html_path)
    return [*written, html_path]
