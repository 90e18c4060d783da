"""The one owner of an IB session: which gateway, the live confirmation, connecting, stopping.

`open_session` is the only way a command (run, record-depth, data update, the desk, trade,
status) gets a connected `IBConnection`. In order, it
1. confirms live trading before anything is started or connected (`ibdesk.safety`);
2. gets a gateway: a private simulator child (`sim=True` or FORCE_FAKE_IB), one started or
   found per `IB_GATEWAY_MODE` (attach | ibc | docker | sim, `ibdesk.ib.gateway.start`), or
   a running one to attach to;
3. connects (read-only unless `readonly=False` is asked for, as trading must) and rebinds
   the settings to the gateway's host and port, so a second connection finds it too;
4. turns SIGINT/SIGTERM into `Session.stop` while open (`ibdesk.shutdown`);
5. on exit, closes the connection and stops only what it started (never an attached gateway).
It does no market work itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from ibdesk.config import Settings
from ibdesk.errors import StopRequestedError
from ibdesk.ib import gateway as lifecycle
from ibdesk.ib.connection import ConnectionConfig, IBConnection
from ibdesk.safety import confirm_live
from ibdesk.shutdown import stop_on_signals

log = logging.getLogger(__name__)
T = TypeVar("T")

STOPPED_MESSAGE = "stopped on SIGINT/SIGTERM; the session was closed and what it started stopped"


class Source(StrEnum):
    """Where the data comes from, as written into files and summaries."""

    SIM = "sim"
    IBKR = "ibkr"


class Started(StrEnum):
    """What this session started (and so stops on exit)."""

    NOTHING = "nothing"  # attached to a gateway that was already running
    SIM_CHILD = "sim_child"  # a private `ibdesk sim` child on a free port
    GATEWAY = "gateway"  # a gateway launched per IB_GATEWAY_MODE (ibc, docker or sim)


@dataclass(frozen=True, slots=True)
class Session:
    """An open session: a connected `conn` and the facts commands report about it."""

    settings: Settings  # rebound to the gateway's host and port
    conn: IBConnection
    source: Source
    is_live: bool
    gateway: str  # e.g. "sim 127.0.0.1:50123 (started)", "attached 127.0.0.1:4002"
    stop: asyncio.Event  # set on SIGINT/SIGTERM
    host: str
    port: int
    started: Started

    @property
    def sim_port(self) -> int | None:
        """The simulator's port when the gateway is an ibdesk sim, else None."""
        return self.port if self.source is Source.SIM else None

    async def until_stopped(self, work: Awaitable[T]) -> T:
        """Await `work`; SIGINT/SIGTERM cancels it and raises StopRequestedError (exit 130)."""
        return await _race_stop(self.stop, work)


async def _race_stop(stop: asyncio.Event, work: Awaitable[T]) -> T:
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        raise StopRequestedError(STOPPED_MESSAGE)
    return task.result()


def rebind(settings: Settings, host: str, port: int) -> Settings:
    """`settings` pointing at one gateway: every port setting becomes `port`."""
    return settings.model_copy(
        update={
            "ib_host": host,
            "ib_gateway_paper_port": port,
            "ib_gateway_live_port": port,
            "ib_paper_port": port,
            "ib_live_port": port,
        }
    )


def _no_terminal(_prompt: str) -> str:
    return ""


@asynccontextmanager
async def open_session(
    settings: Settings,
    *,
    sim: bool,
    live: bool,
    port: int | None = None,
    readonly: bool = True,
    client_id: int | None = None,
    reconnect: bool = True,
    ask: Callable[[str], str] | None = None,
    on_status: Callable[[str], None] | None = None,
    **connection: Any,
) -> AsyncIterator[Session]:
    """Open a session (see the module docstring); close it and stop what it started on exit.

    `live` is the user's --live flag (IB_PAPER_TRADING=0 asks for live too); `ask` prompts
    on a terminal for the confirmation (None: unattended, IBDESK_CONFIRM_LIVE=yes needed).
    Refused live raises UserInputError before anything is started or connected. `port`
    pins the gateway port (default: auto-detect, or the sim child's). `on_status` hears
    short progress texts. Other keywords go to `ConnectionConfig` (e.g. `silent_after_s`).
    """
    is_live = confirm_live(
        settings, live_flag=live, is_terminal=ask is not None, ask=ask or _no_terminal
    )
    status = on_status or (lambda _text: None)
    use_sim = sim or settings.force_fake_ib
    stop = asyncio.Event()
    sim_child: lifecycle.SimProcess | None = None
    started = Started.NOTHING
    gateway = ""
    conn: IBConnection | None = None
    with stop_on_signals(stop):
        try:
            host_settings = settings
            if use_sim:
                status("starting the simulator")
                sim_child = await _race_stop(stop, lifecycle.start_sim_process(settings))
                started = Started.SIM_CHILD
                host_settings = rebind(settings, sim_child.host, sim_child.port)
                port = sim_child.port
                gateway = f"sim {sim_child.host}:{sim_child.port} (started)"
            elif settings.ib_gateway_mode != "attach":
                status(f"finding or starting a gateway ({settings.ib_gateway_mode} mode)")
                state = await _race_stop(stop, lifecycle.start(settings, port=port, live=is_live))
                if state.started_by_ibdesk:
                    started = Started.GATEWAY
                host_settings = rebind(settings, state.host, state.port)
                port = state.port
                gateway = f"{state.mode} {state.host}:{state.port}"
            else:
                status("finding a gateway")
            conn = IBConnection(
                ConnectionConfig.from_settings(
                    host_settings,
                    port=port,
                    client_id=client_id,
                    live=is_live,
                    readonly=readonly,
                    reconnect=reconnect,
                    **connection,
                )
            )
            await _race_stop(stop, conn.connect())
            connected_port = conn.port if conn.port is not None else (port or 0)
            host = conn.config.host
            session = Session(
                settings=rebind(settings, host, connected_port),
                conn=conn,
                source=Source.SIM if conn.is_sim else Source.IBKR,
                is_live=is_live,
                gateway=gateway or f"attached {host}:{connected_port}",
                stop=stop,
                host=host,
                port=connected_port,
                started=started,
            )
            log.debug("session open: %s (%s)", session.gateway, session.source.value)
            yield session
        finally:
            if conn is not None:
                await conn.close()
            if sim_child is not None:
                sim_child.stop()
            if started is Started.GATEWAY:
                lifecycle.stop(settings)
