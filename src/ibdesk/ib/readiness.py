"""Is a gateway ready? A TWS API handshake answered with nextValidId, not an open port.

Uses the real `ib_async` client for the handshake only (no account sync), so it answers
in milliseconds on a live gateway and fails cleanly on a dead port or a TCP listener that
never speaks the protocol.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from ib_async import IB

log = logging.getLogger(__name__)

SIM_ACCOUNT_PREFIX = "SIM"
PROBE_CLIENT_ID = 999_001


@dataclass(frozen=True, slots=True)
class Readiness:
    """Outcome of one handshake probe."""

    host: str
    port: int
    ready: bool
    server_version: int | None = None
    accounts: tuple[str, ...] = field(default_factory=tuple)
    reason: str = ""

    @property
    def is_sim(self) -> bool:
        """An ibdesk sim says what it is: its managed accounts start with SIM."""
        return bool(self.accounts) and all(a.startswith(SIM_ACCOUNT_PREFIX) for a in self.accounts)


async def probe(
    host: str, port: int, *, timeout_s: float = 5.0, client_id: int = PROBE_CLIENT_ID
) -> Readiness:
    """Handshake with host:port and wait for nextValidId and managedAccounts."""
    ib = IB()
    client_log = logging.getLogger("ib_async.client")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)  # a failed probe is an answer, not an error
    try:
        await ib.client.connectAsync(host, port, client_id, timeout=timeout_s)
        accounts = tuple(ib.client.getAccounts())
        return Readiness(
            host, port, True, ib.client.serverVersion(), accounts, "handshake answered"
        )
    except TimeoutError:
        return Readiness(host, port, False, reason=f"no API handshake within {timeout_s:g}s")
    except ConnectionRefusedError:
        return Readiness(host, port, False, reason="connection refused")
    except (OSError, ConnectionError) as exc:
        return Readiness(host, port, False, reason=f"connection failed: {exc}")
    finally:
        ib.client.disconnect()
        client_log.setLevel(level)


def probe_sync(host: str, port: int, *, timeout_s: float = 5.0) -> Readiness:
    """Blocking form of `probe` for the CLI and scripts."""
    return asyncio.run(probe(host, port, timeout_s=timeout_s))


async def first_ready(host: str, ports: list[int], *, timeout_s: float) -> Readiness | None:
    """Probe ports in order and return the first that is ready, else None."""
    for port in ports:
        result = await probe(host, port, timeout_s=timeout_s)
        log.debug("probe %s:%s -> %s", host, port, result.reason)
        if result.ready:
            return result
    return None
