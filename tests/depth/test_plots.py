"""Figures: four non-empty PNGs and one HTML report that opens offline."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from ibdesk.depth import synthetic
from ibdesk.depth.plots import plot_paths, write_plots
from ibdesk.depth.report import analyze_day
from tests.depth.helpers import DAY, write_day

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _Links(HTMLParser):
    """Collects every URL an HTML element would load or link (script text is not markup)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href", "data"} and value:
                self.urls.append(value)
        if tag == "script" and not any(name == "src" for name, _ in attrs):
            self.inline_scripts += 1


def test_plots_write_four_pngs_and_an_offline_html(tmp_path: Path) -> None:
    spec = synthetic.SyntheticDay(symbol="AAPL", rows=4_000, levels=10, trades=400)
    write_day(tmp_path, spec, "ibkr", "143000")
    day = analyze_day(tmp_path, "AAPL", DAY)
    written = write_plots(day.analysis, day.report, tmp_path / "out" / "report")
    assert written == plot_paths(tmp_path / "out" / "report")
    pngs, html = written[:4], written[4]
    assert [p.name for p in pngs] == [
        "report_mid_spread.png",
        "report_depth_heatmap.png",
        "report_ofi_scatter.png",
        "report_volume_profile.png",
    ]
    for png in pngs:
        data = png.read_bytes()
        assert data.startswith(PNG_SIGNATURE)
        assert len(data) > 10_000, png.name
    text = html.read_text(encoding="utf-8")
    links = _Links()
    links.feed(text)
    assert links.urls == []
    assert links.inline_scripts >= 4
    assert "Plotly.newPlot" in text
    assert text.count("Plotly.newPlot") == 4
    assert "AAPL 2024-01-02" in text


def test_plots_without_trades_still_draw_every_figure(tmp_path: Path) -> None:
    spec = synthetic.SyntheticDay(symbol="AAPL", rows=500, levels=3, trades=0)
    write_day(tmp_path, spec, "sim", "150000", with_trades=False)
    day = analyze_day(tmp_path, "AAPL", DAY)
    written = write_plots(day.analysis, day.report, tmp_path / "fig")
    assert all(p.stat().st_size > 0 for p in written)
