"""Scheduled faults for `ibdesk sim --fault`: parsing (pure) and the timer that fires them.

A fault spec is `KIND@AT_S[:DURATION_S]`, seconds after the sim starts, e.g.
`restart@60:10` (a daily restart 60 s in, refusing connections for 10 s),
`connectivity@30:5` (1100, then 1102 five seconds later; `connectivity-lost` ends with 1101),
`farm@20:3` (2103 then 2104), `depth-halt@15` (316), `depth-reset@15` (317),
`silent@10[:SECONDS]` (every feed goes quiet without an error, optionally coming back).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ibdesk.sim.server import SimServer


class FaultKind(StrEnum):
    RESTART = "restart"
    CONNECTIVITY = "connectivity"
    CONNECTIVITY_LOST = "connectivity-lost"
    FARM = "farm"
    DEPTH_HALT = "depth-halt"
    DEPTH_RESET = "depth-reset"
    SILENT = "silent"


_DEFAULT_DURATION_S = {
    FaultKind.RESTART: 10.0,
    FaultKind.CONNECTIVITY: 5.0,
    FaultKind.CONNECTIVITY_LOST: 5.0,
    FaultKind.FARM: 5.0,
    FaultKind.DEPTH_HALT: 0.0,
    FaultKind.DEPTH_RESET: 0.0,
    FaultKind.SILENT: 0.0,
}
FAULT_FORM = "KIND@SECONDS[:DURATION], KIND one of " + ", ".join(k.value for k in FaultKind)


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    at_s: float
    duration_s: float


def parse_fault(text: str) -> Fault:
    """`restart@60:10` -> Fault(RESTART, 60, 10); ValueError names the bad spec."""
    kind_text, _, when = text.strip().partition("@")
    at_text, _, duration_text = when.partition(":")
    try:
        kind = FaultKind(kind_text.strip().lower())
        at_s = float(at_text)
        duration_s = float(duration_text) if duration_text else _DEFAULT_DURATION_S[kind]
    except ValueError:
        raise ValueError(f"invalid fault {text!r}: expected {FAULT_FORM}") from None
    if at_s < 0 or duration_s < 0:
        raise ValueError(f"invalid fault {text!r}: times must be >= 0")
    return Fault(kind, at_s, duration_s)


async def run_schedule(server: SimServer, faults: list[Fault]) -> None:
    """Fire each fault at its time (and its recovery after its duration)."""
    await asyncio.gather(*(_run_one(server, fault) for fault in faults))


async def _run_one(server: SimServer, fault: Fault) -> None:
    await asyncio.sleep(fault.at_s)
    kind = fault.kind
    if kind is FaultKind.RESTART:
        await server.restart(fault.duration_s)
    elif kind in (FaultKind.CONNECTIVITY, FaultKind.CONNECTIVITY_LOST):
        server.connectivity_lost()
        await asyncio.sleep(fault.duration_s)
        server.connectivity_restored(data_kept=kind is FaultKind.CONNECTIVITY)
    elif kind is FaultKind.FARM:
        server.set_farm(ok=False)
        await asyncio.sleep(fault.duration_s)
        server.set_farm(ok=True)
    elif kind is FaultKind.DEPTH_HALT:
        server.depth_fault(316)
    elif kind is FaultKind.DEPTH_RESET:
        server.depth_fault(317)
    else:
        server.silence(None, True)
        if fault.duration_s:
            await asyncio.sleep(fault.duration_s)
            server.silence(None, False)
