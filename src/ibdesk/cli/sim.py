"""`ibdesk sim`: run the simulated IB Gateway in the foreground."""

from __future__ import annotations

import asyncio
import contextlib

import typer

from ibdesk.calendar import parse_clock
from ibdesk.cli import runtime
from ibdesk.describe import output_schema
from ibdesk.errors import UserInputError
from ibdesk.shutdown import stop_on_signals
from ibdesk.sim.faults import Fault, parse_fault, run_schedule
from ibdesk.sim.server import SimConfig, SimServer
from ibdesk.sim.universe import select


async def _serve(config: SimConfig, faults: list[Fault]) -> None:
    server = SimServer(config)
    stop = asyncio.Event()
    with stop_on_signals(stop):
        await _serve_until(server, faults, stop)
    runtime.stdout.print("ibdesk sim stopped")


async def _serve_until(server: SimServer, faults: list[Fault], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    await server.start()
    runtime.stdout.print(f"ibdesk sim listening on {server.host}:{server.port}")
    schedule = loop.create_task(run_schedule(server, faults)) if faults else None
    try:
        await stop.wait()
    finally:
        if schedule is not None:
            schedule.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await schedule
        await server.stop()


def register(app: typer.Typer) -> None:
    @app.command("sim")
    @output_schema(
        {
            "type": "string",
            "description": "the line `ibdesk sim listening on HOST:PORT` once it accepts "
            "connections, then `ibdesk sim stopped` after SIGINT/SIGTERM",
        }
    )
    def sim(
        host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (loopback)."),
        port: int = typer.Option(4002, "--port", min=0, max=65535, help="TCP port (0 = any)."),
        seed: int | None = typer.Option(None, "--seed", help="Market seed [IBDESK_SIM_SEED]."),
        clock: str | None = typer.Option(
            None, "--clock", help="Simulated start time: now or ISO-8601 [IBDESK_SIM_CLOCK]."
        ),
        speed: float = typer.Option(1.0, "--speed", min=0.0, help="Simulated seconds per second."),
        depth_cap: int = typer.Option(
            3, "--depth-cap", min=0, help="Depth subscriptions allowed (error 309 beyond)."
        ),
        symbols: list[str] | None = typer.Option(
            None, "--symbols", help="Restrict the universe to these symbols (default: all)."
        ),
        rate: float = typer.Option(
            50.0, "--rate", min=0.0, help="Book events per second per subscribed symbol."
        ),
        fault: list[str] | None = typer.Option(
            None, "--fault", help="Scheduled fault KIND@SECONDS[:DURATION], e.g. restart@60:10."
        ),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
    ) -> None:
        """Run a simulated IB Gateway (TWS API v178) until SIGINT/SIGTERM.

        Real TWS API clients connect to it as to IB Gateway. Its accounts start with SIM.
        Live data flows at any simulated hour; history follows the XNYS calendar.
        """
        settings = runtime.start(verbose=verbose)
        clock_text = clock if clock is not None else settings.ibdesk_sim_clock
        try:
            parse_clock(clock_text)
            chosen = select(symbols or None)
            faults = [parse_fault(f) for f in fault or []]
        except ValueError as exc:
            raise UserInputError(str(exc)) from None
        config = SimConfig.from_settings(
            settings,
            host=host,
            port=port,
            clock=clock_text,
            speed=speed,
            depth_cap=depth_cap,
            symbols=tuple(t.symbol for t in chosen) if symbols else (),
            events_per_s=rate,
            **({} if seed is None else {"seed": seed}),
        )
        try:
            asyncio.run(_serve(config, faults))
        except OSError as exc:
            raise UserInputError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
