"""`ibdesk analyze-depth`: order-book microstructure report (JSON) and plots of a symbol-day."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import typer

from ibdesk.cli import runtime
from ibdesk.cli.framework import AnalyzeDepthCommand
from ibdesk.depth import report as depth_report
from ibdesk.depth.loading import SourceChoice
from ibdesk.depth.results import AnalysisParams
from ibdesk.describe import output_schema
from ibdesk.errors import UserInputError

_WINDOW_RE = re.compile(r"^\s*(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|sec|m|min)?\s*$")
_UNIT_NS = {"ms": 1_000_000, "s": 1_000_000_000, "sec": 1_000_000_000}
_UNIT_NS.update({"m": 60 * _UNIT_NS["s"], "min": 60 * _UNIT_NS["s"]})


def parse_window_ns(text: str) -> int:
    """`--window` as ns: a number with unit ms, s or min (`1s`, `500ms`, `5min`; bare = s)."""
    match = _WINDOW_RE.match(text)
    if match is None:
        raise UserInputError(f"invalid --window {text!r}: expected e.g. 1s, 500ms or 5min")
    unit = match.group("unit") or "s"
    window_ns = round(float(match.group("value")) * _UNIT_NS[unit])
    if window_ns < _UNIT_NS["ms"]:
        raise UserInputError(f"invalid --window {text!r}: must be at least 1ms")
    return window_ns


def parse_day(text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise UserInputError(f"invalid --date {text!r}: expected YYYY-MM-DD") from None


def _symbol_folder_name(level2_root: Path, symbol: str) -> str:
    """The symbol as typed, or upper-cased when only that folder exists (`aapl` -> `AAPL`)."""
    name = symbol.strip()
    if not (level2_root / name).is_dir() and (level2_root / name.upper()).is_dir():
        return name.upper()
    return name


def register(app: typer.Typer) -> None:
    @app.command("analyze-depth", cls=AnalyzeDepthCommand)
    @output_schema(depth_report.report_schema())
    def analyze_depth(
        symbol: str = typer.Option(..., "--symbol", "-s", help="Symbol (folder under DIR)."),
        data_dir: Path | None = typer.Option(
            None, "--data-dir", "-d", help="Level 2 folder (default: the data root's level2)."
        ),
        date: str | None = typer.Option(
            None, "--date", help="Day YYYY-MM-DD (default: the latest day with data)."
        ),
        output: Path | None = typer.Option(
            None, "--output", "-o", help="Write the JSON report to FILE (default: stdout)."
        ),
        plot: bool = typer.Option(
            False, "--plot", help="Also write 4 PNG figures and an offline HTML report."
        ),
        source: SourceChoice = typer.Option(
            SourceChoice.AUTO,
            "--source",
            help="Data source; auto uses ibkr, else databento, else sim (never mixed).",
        ),
        window: str = typer.Option(
            "1s", "--window", help="Window for OFI and impact regressions (500ms, 1s, 1min)."
        ),
        tick: float = typer.Option(
            0.01, "--tick", help="Tick size in dollars for the volume profile."
        ),
        verbose: bool = typer.Option(
            False, "--verbose", "-v", help="Debug logging on the console."
        ),
    ) -> None:
        """Analyse a symbol-day's order book: spread, depth, OFI, microprice, profile, impact.

        Loads every snapshot and trades file of the symbol and day under DIR/SYMBOL/ from one
        source, prints the JSON report (or writes it with --output) and, with --plot, writes
        figures next to it. No data for the day exits 2 naming the folder and the days found.
        """
        params = AnalysisParams(window_ns=parse_window_ns(window), tick_usd=_valid_tick(tick))
        day = parse_day(date)
        settings = runtime.start(verbose=verbose)
        level2_root = data_dir if data_dir is not None else settings.level2_root
        name = _symbol_folder_name(level2_root, symbol)
        result = depth_report.analyze_day(level2_root, name, day, source, params)
        selection = result.selection
        found = ", ".join(s.value for s in selection.sources)
        typer.echo(
            f"analyze-depth: {name} {selection.day.isoformat()} source={selection.source.value} "
            f"(found: {found}) rows={result.analysis.rows} trades={result.analysis.trades}",
            err=True,
        )
        if output is not None:
            depth_report.write_report(result.report, output)
            typer.echo(f"analyze-depth: wrote {output}", err=True)
        else:
            typer.echo(depth_report.to_json(result.report))
        if plot:
            from ibdesk.depth import plots

            base = (
                output.with_suffix("")
                if output is not None
                else Path.cwd() / f"{name}_{selection.day.isoformat()}_depth"
            )
            for path in plots.write_plots(result.analysis, result.report, base):
                typer.echo(f"analyze-depth: wrote {path}", err=True)


def _valid_tick(tick: float) -> float:
    if not tick > 0:
        raise UserInputError(f"invalid --tick {tick!r}: must be a positive price step in dollars")
    return tick
