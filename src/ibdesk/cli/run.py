"""`ibdesk run`: the fully automated run (gateway, bars, Parquet, analysis, signals)."""

from __future__ import annotations

import asyncio
import contextlib
import json

import typer
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ibdesk import pipeline
from ibdesk.cli import runtime
from ibdesk.describe import output_schema

_OUTPUT_SCHEMA = {
    "type": "object",
    "description": (
        "a summary table on the terminal; with saving on, the same as JSON in "
        "DATA/runs/{YYYYMMDD_HHMMSS}.json (this schema); --json prints it on stdout"
    ),
    "properties": {
        "started": {"type": "string", "format": "date-time"},
        "finished": {"type": ["string", "null"]},
        "source": {"type": "string", "enum": ["sim", "ibkr"]},
        "gateway": {"type": "string"},
        "live": {"type": "boolean"},
        "historical_requests": {"type": "integer"},
        "duration": {"type": "string"},
        "bar_size": {"type": "string"},
        "saved": {"type": "boolean"},
        "failed": {"type": "array", "items": {"type": "string"}},
        "stage_seconds": {"type": "object", "additionalProperties": {"type": "number"}},
        "symbols": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "bars": {"type": "integer"},
                    "first_ts": {"type": ["string", "null"]},
                    "last_ts": {"type": ["string", "null"]},
                    "last_close": {"type": ["number", "null"]},
                    "indicators": {"type": "object"},
                    "signals": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "ts": {"type": "string"},
                                "symbol": {"type": "string"},
                                "signal": {"type": "string"},
                                "side": {"type": "string", "enum": ["buy", "sell"]},
                                "price": {"type": "number"},
                                "reason": {"type": "string"},
                            },
                            "required": ["ts", "symbol", "signal", "side", "price", "reason"],
                        },
                    },
                    "files": {"type": "array", "items": {"type": "string"}},
                    "error": {"type": ["string", "null"]},
                    "rvol_sessions": {
                        "type": "object",
                        "description": "previous sessions RVOL compares with: read from the "
                        "store, fetched (once, then stored)",
                        "properties": {
                            "stored": {"type": "integer"},
                            "fetched": {"type": "integer"},
                        },
                    },
                    "rvol_note": {"type": ["string", "null"]},
                },
                "required": ["bars", "signals", "error"],
            },
        },
    },
    "required": ["started", "source", "failed", "symbols"],
}


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _render(summary: pipeline.RunSummary, logs: str) -> None:
    table = Table(
        title=f"ibdesk run ({summary.source}, {summary.duration} of {summary.bar_size} bars)"
    )
    for column in (
        "symbol",
        "bars",
        "last",
        "VWAP",
        "EMA9",
        "EMA20",
        "ATR",
        "gap %",
        "RVOL",
        "signals",
    ):
        table.add_column(column, justify="right" if column != "symbol" else "left")
    for symbol, result in summary.symbols.items():
        if result.error:
            table.add_row(symbol, "[red]failed[/]", result.error, *([""] * 7))
            continue
        ind = result.indicators
        table.add_row(
            symbol,
            str(result.bars),
            _fmt(result.last_close),
            _fmt(ind.get("vwap")),
            _fmt(ind.get("ema_fast")),
            _fmt(ind.get("ema_slow")),
            _fmt(ind.get("atr"), 3),
            _fmt(ind.get("gap_pct")),
            _fmt(ind.get("rvol")),
            str(len(result.signals)),
        )
    runtime.stdout.print(table)
    for symbol, result in summary.symbols.items():
        if not result.error and result.indicators.get("rvol") is None and result.rvol_note:
            runtime.stdout.print(f"  {symbol}: {result.rvol_note}")
    for result in summary.symbols.values():
        for signal in result.signals[-5:]:
            when, side, name = signal["ts"], signal["side"], signal["signal"]
            runtime.stdout.print(f"  {when} {signal['symbol']} {side:4} {name}: {signal['reason']}")
    if summary.summary_path is not None:
        runtime.stdout.print(f"run summary: {summary.summary_path}")
        root = summary.summary_path.parent.parent
        runtime.stdout.print(f"files: {root}/bars, {root}/signals (Parquet); logs: {logs}")
    if summary.failed:
        runtime.stderr.print(f"[red]failed:[/] {', '.join(summary.failed)}")


def register(app: typer.Typer) -> None:
    @app.command("run")
    @output_schema(_OUTPUT_SCHEMA)
    def run(
        symbols: list[str] = typer.Option(
            ["TSLA"], "--symbols", help="Symbols (space or comma separated)."
        ),
        duration: str = typer.Option(
            "1 D", "--duration", help='IB duration, e.g. "1 D", "5 D", "1 W".'
        ),
        bar_size: str = typer.Option(
            "1 min", "--bar-size", help='IB bar size, e.g. "1 min", "5 mins".'
        ),
        live: bool = typer.Option(
            False, "--live", help="Live account (asks for confirmation); default paper."
        ),
        no_save: bool = typer.Option(
            False, "--no-save", help="Write nothing (no Parquet, no run summary)."
        ),
        sim: bool = typer.Option(
            False, "--sim", help="Start the built-in simulator on a free port and use it."
        ),
        rth_only: bool = typer.Option(False, "--rth-only", help="Regular trading hours bars only."),
        port: int | None = typer.Option(None, "--port", help="Gateway port; default auto-detect."),
        as_json: bool = typer.Option(False, "--json", help="Print the run summary JSON on stdout."),
        verbose: bool = typer.Option(
            False, "--verbose", "-v", help="Debug logging on the console."
        ),
    ) -> None:
        """Fully automated run: gateway, qualify, bars, Parquet, indicators and signals, summary.

        Paper by default; places no orders. Exits 1 when a symbol failed (the others still run).
        """
        settings = runtime.start(verbose=verbose)
        config = pipeline.RunConfig(
            symbols=tuple(s.upper() for s in symbols),
            duration=duration,
            bar_size=bar_size,
            live=live,
            save=not no_save,
            sim=sim or settings.force_fake_ib,
            use_rth=rth_only,
            port=port,
        )
        config.validate()
        ask = input if runtime.is_terminal() else None
        if runtime.is_terminal():
            with contextlib.ExitStack() as stack:
                tasks: dict[str, TaskID] = {}
                bars: list[Progress] = []

                def show(stage: str, text: str) -> None:
                    # The bar starts with the first stage, after any live confirmation prompt.
                    if not bars:
                        bars.append(
                            stack.enter_context(
                                Progress(
                                    SpinnerColumn(),
                                    TextColumn("{task.description}"),
                                    TimeElapsedColumn(),
                                    console=runtime.stderr,
                                    transient=True,
                                )
                            )
                        )
                    bar = bars[0]
                    for name, task in tasks.items():
                        if name != stage:
                            bar.update(task, completed=1, total=1)
                    if stage not in tasks:
                        tasks[stage] = bar.add_task(f"{stage}: {text}", total=None)
                    else:
                        bar.update(tasks[stage], description=f"{stage}: {text}")

                summary = asyncio.run(pipeline.run(settings, config, show, ask=ask))
        else:
            summary = asyncio.run(pipeline.run(settings, config))
        if as_json:
            typer.echo(json.dumps(summary.to_json()))
        else:
            _render(summary, str(settings.logs_path))
        if summary.failed:
            raise typer.Exit(1)
