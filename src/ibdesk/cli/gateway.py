"""`ibdesk gateway start|ready|stop|status`: headless gateway lifecycle and readiness."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict

import typer

from ibdesk.cli import runtime
from ibdesk.cli.framework import new_app
from ibdesk.describe import output_schema
from ibdesk.errors import UserInputError
from ibdesk.ib import gateway as lifecycle
from ibdesk.ib.readiness import first_ready

_READY_SCHEMA = {
    "type": "object",
    "description": "one JSON line with --json; exit 0 when ready, 1 otherwise",
    "properties": {
        "ready": {"type": "boolean"},
        "host": {"type": "string"},
        "port": {"type": ["integer", "null"]},
        "server_version": {"type": ["integer", "null"]},
        "accounts": {"type": "array", "items": {"type": "string"}},
        "is_sim": {"type": "boolean"},
        "reason": {"type": "string"},
    },
    "required": ["ready", "host", "port", "reason"],
}
_STATE_SCHEMA = {
    "type": "object",
    "description": "the gateway state ibdesk keeps (what it started), printed as JSON",
    "properties": {
        "mode": {"type": "string", "enum": list(lifecycle.MODES)},
        "host": {"type": "string"},
        "port": {"type": "integer"},
        "started_by_ibdesk": {"type": "boolean"},
        "pid": {"type": ["integer", "null"]},
        "container": {"type": ["string", "null"]},
        "config_dir": {"type": ["string", "null"]},
        "started_at": {"type": "number"},
    },
}

_MODE_HELP = "attach (a running TWS/Gateway), ibc, docker or sim; default IB_GATEWAY_MODE."
_PORT_HELP = "API port; default: auto-detect (paper 4002 then 7497, live 4001 then 7496)."


def register(app: typer.Typer) -> None:
    group = new_app("gateway", "Start, check and stop the IB gateway headlessly.")
    app.add_typer(group, name="gateway")

    @group.command("ready")
    @output_schema(_READY_SCHEMA)
    def ready(
        port: int | None = typer.Option(None, "--port", "-p", help=_PORT_HELP),
        host: str | None = typer.Option(None, "--host", help="Gateway host; default IB_HOST."),
        timeout_s: float = typer.Option(
            10.0, "--timeout", help="Seconds to wait for the handshake."
        ),
        live: bool = typer.Option(
            False, "--live", help="Auto-detect the live ports instead of paper."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        """Exit 0 when a gateway answers the TWS API handshake with nextValidId, 1 otherwise.

        An open TCP port is not enough: the handshake must be answered within the timeout.
        """
        settings = runtime.start()
        target = host or settings.ib_host
        ports = [port] if port is not None else lifecycle.candidate_ports(settings, live or None)
        result = asyncio.run(first_ready(target, ports, timeout_s=timeout_s))
        payload = {
            "ready": result is not None,
            "host": target,
            "port": result.port if result else None,
            "server_version": result.server_version if result else None,
            "accounts": list(result.accounts) if result else [],
            "is_sim": result.is_sim if result else False,
            "reason": result.reason if result else lifecycle.unavailable_message(target, ports),
        }
        if as_json:
            typer.echo(json.dumps(payload))
        elif result is not None:
            kind = "ibdesk sim" if result.is_sim else "gateway"
            typer.echo(
                f"ready: {kind} on {target}:{result.port} (server version {result.server_version})"
            )
        else:
            typer.echo(f"not ready: {payload['reason']}", err=True)
        if result is None:
            raise typer.Exit(1)

    @group.command("start")
    @output_schema(_STATE_SCHEMA)
    def start(
        mode: str | None = typer.Option(None, "--mode", help=_MODE_HELP),
        port: int | None = typer.Option(None, "--port", "-p", help=_PORT_HELP),
        live: bool = typer.Option(False, "--live", help="Live trading mode (default paper)."),
        timeout_s: float = typer.Option(120.0, "--timeout", help="Seconds to wait until ready."),
    ) -> None:
        """Attach to a gateway that already answers, else launch one (IBC, Docker or the sim)."""
        settings = runtime.start()
        if mode is not None and mode not in lifecycle.MODES:
            raise UserInputError(f"--mode {mode!r}: expected one of {', '.join(lifecycle.MODES)}")
        state = asyncio.run(
            lifecycle.start(
                settings,
                mode=mode,  # type: ignore[arg-type]
                port=port,
                live=live or None,
                timeout_s=timeout_s,
            )
        )
        typer.echo(json.dumps(asdict(state)))

    @group.command("stop")
    @output_schema(_STATE_SCHEMA)
    def stop() -> None:
        """Stop the gateway ibdesk started (never one it only attached to)."""
        settings = runtime.start()
        state = lifecycle.stop(settings)
        if state is None:
            runtime.stderr.print("nothing to stop: ibdesk has no gateway on record")
        elif not state.started_by_ibdesk:
            runtime.stderr.print(
                f"left {state.host}:{state.port} running: ibdesk only attached to it"
            )
        else:
            runtime.stderr.print(f"stopped the {state.mode} gateway on {state.host}:{state.port}")
        if state is not None:
            typer.echo(json.dumps(asdict(state)))

    @group.command("status")
    @output_schema(_STATE_SCHEMA)
    def status() -> None:
        """Show the gateway ibdesk knows about and whether it answers now."""
        settings = runtime.start()
        state = lifecycle.load_state(settings)
        if state is None:
            runtime.stderr.print("no gateway on record; `ibdesk gateway ready` probes the ports")
            raise typer.Exit(1)
        result = asyncio.run(first_ready(state.host, [state.port], timeout_s=3.0))
        typer.echo(json.dumps({**asdict(state), "ready": result is not None}))
        if result is None:
            raise typer.Exit(1)
