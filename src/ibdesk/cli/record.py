"""`ibdesk record-depth`: record the Level 2 book, raw depth messages and trades to Parquet."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer
from rich.live import Live
from rich.table import Table

from ibdesk.cli import runtime
from ibdesk.depth.recorder import RecordConfig, Recorder, RecordSummary, SymbolProgress
from ibdesk.describe import output_schema
from ibdesk.ib.session import open_session

_OUTPUT_SCHEMA = {
    "type": "object",
    "description": (
        "files under OUTPUT/SYMBOL/: {date}_snapshots_{HHMMSS}.parquet, "
        "{date}_messages_{HHMMSS}.parquet, {date}_trades_{HHMMSS}.parquet and "
        "session_stats_{YYYYMMDD_HHMMSS}.json; stdout gets one JSON summary line"
    ),
    "properties": {
        "source": {"type": "string", "enum": ["ibkr", "sim"]},
        "start": {"type": "string", "format": "date-time"},
        "end": {"type": "string", "format": "date-time"},
        "reconnects": {"type": "integer"},
        "files": {"type": "array", "items": {"type": "string"}},
        "stats_files": {"type": "array", "items": {"type": "string"}},
        "failed_symbols": {"type": "object", "additionalProperties": {"type": "string"}},
        "symbols": {"type": "object"},
    },
    "required": ["source", "start", "end", "files", "stats_files", "failed_symbols"],
}


def _progress_table(rows: list[SymbolProgress]) -> Table:
    table = Table(title="record-depth")
    for column in ("symbol", "updates/s", "updates", "snapshots", "last gap"):
        table.add_column(column)
    for row in rows:
        gap = (
            (row.depth_unavailable and f"no depth: {row.depth_unavailable}") or row.last_gap or "-"
        )
        table.add_row(
            row.symbol, f"{row.rate_per_s:,.0f}", f"{row.updates:,}", f"{row.snapshots:,}", gap
        )
    return table


def _summary_json(summary: RecordSummary) -> dict[str, object]:
    return {
        "source": summary.source,
        "start": summary.start.isoformat(),
        "end": summary.end.isoformat(),
        "reconnects": summary.reconnects,
        "files": [str(p) for p in summary.files],
        "stats_files": [str(p) for p in summary.stats_files],
        "failed_symbols": summary.failed_symbols,
        "symbols": summary.per_symbol,
    }


def register(app: typer.Typer) -> None:
    @app.command("record-depth")
    @output_schema(_OUTPUT_SCHEMA)
    def record_depth(
        symbols: list[str] = typer.Option(
            ..., "--symbol", "-s", help="Symbol(s) to record; several allowed (space or comma)."
        ),
        levels: int = typer.Option(10, "--levels", "-l", help="Book levels per side (1-20)."),
        interval_ms: int = typer.Option(100, "--interval", "-i", help="Snapshot interval, ms."),
        output: Path | None = typer.Option(
            None, "--output", "-o", help="Output folder; default the data root's level2."
        ),
        duration_min: float | None = typer.Option(
            None,
            "--duration",
            "-d",
            help="Minutes to record (fractional ok); omit = until stopped.",
        ),
        host: str | None = typer.Option(None, "--host", help="Gateway host; default IB_HOST."),
        port: int | None = typer.Option(None, "--port", help="Gateway port; default auto-detect."),
        client_id: int | None = typer.Option(
            None, "--client-id", help="API client id; default IB_CLIENT_ID."
        ),
        live: bool = typer.Option(
            False, "--live/--paper", help="Live or paper gateway (default paper)."
        ),
        smart_depth: bool = typer.Option(False, "--smart-depth", help="Aggregated SMART depth."),
        sim: bool = typer.Option(False, "--sim", help="Record from the built-in simulator."),
        flush_seconds: float = typer.Option(
            5.0, "--flush-seconds", help="Flush to disk at least this often."
        ),
        verbose: bool = typer.Option(
            False, "--verbose", "-v", help="Debug logging on the console."
        ),
    ) -> None:
        """Record the order book (snapshots on a fixed grid), raw depth messages and trades.

        Survives gateway restarts (reconnects and resubscribes, gaps recorded in the session
        stats) and crashes (part files flushed every --flush-seconds, compacted on stop or by
        the next run). Ctrl-C or SIGTERM flushes and finalises.
        """
        settings = runtime.start(verbose=verbose)
        if host is not None:
            settings = settings.model_copy(update={"ib_host": host})
        config = RecordConfig(
            symbols=tuple(s.upper() for s in symbols),
            output=output or settings.level2_root,
            levels=levels,
            interval_ms=interval_ms,
            duration_s=None if duration_min is None else duration_min * 60.0,
            flush_seconds=flush_seconds,
            smart_depth=smart_depth,
            port=port,
            client_id=client_id,
            live=live or not settings.ib_paper_trading,
        )
        config.validate()

        async def main() -> RecordSummary:
            async with open_session(
                settings,
                sim=sim,
                live=live,
                port=port,
                client_id=client_id,
                readonly=True,
                ask=input if runtime.is_terminal() else None,
                silent_after_s=config.silent_after_s,
            ) as session:
                if runtime.is_terminal():
                    with Live(
                        _progress_table([]), console=runtime.stderr, refresh_per_second=2
                    ) as live_view:
                        recorder = Recorder(
                            session.settings,
                            config,
                            progress=lambda rows: live_view.update(_progress_table(rows)),
                            conn=session.conn,
                        )
                        return await recorder.run(session.stop)
                recorder = Recorder(session.settings, config, conn=session.conn)
                return await recorder.run(session.stop)

        summary = asyncio.run(main())
        typer.echo(json.dumps(_summary_json(summary)))
        if summary.failed_symbols or any(
            s.get("depth_unavailable") for s in summary.per_symbol.values()
        ):
            raise typer.Exit(1)
