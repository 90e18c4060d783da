"""open_session against the real sim: sim child, attach, IB_GATEWAY_MODE=sim, live
confirmation, SIGTERM -> stop, and cleanup that stops only what the session started."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path
from typing import Any

import pytest

from ibdesk.config import load_settings
from ibdesk.errors import StopRequestedError, UserInputError
from ibdesk.ib import gateway as lifecycle
from ibdesk.ib.readiness import probe
from ibdesk.ib.session import Session, Source, Started, open_session


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _facts(session: Session) -> dict[str, Any]:
    return {
        "connected": session.conn.is_connected,
        "readonly": session.conn.config.readonly,
        "source": session.source,
        "is_live": session.is_live,
        "gateway": session.gateway,
        "port": session.port,
        "sim_port": session.sim_port,
        "started": session.started,
        "host": session.settings.ib_host,
        "ports": {
            session.settings.ib_gateway_paper_port,
            session.settings.ib_paper_port,
            session.settings.ib_gateway_live_port,
            session.settings.ib_live_port,
        },
    }


def test_sim_child_is_started_connected_rebound_and_gone_after_exit() -> None:
    async def main() -> dict[str, Any]:
        async with open_session(load_settings(), sim=True, live=False) as session:
            facts = _facts(session)
            facts["answers_inside"] = _answers(session.port)
            return facts

    facts = asyncio.run(main())
    assert facts["connected"]
    assert facts["readonly"]
    assert facts["source"] is Source.SIM
    assert facts["started"] is Started.SIM_CHILD
    assert facts["gateway"] == f"sim 127.0.0.1:{facts['port']} (started)"
    assert facts["sim_port"] == facts["port"]
    assert facts["port"] not in (4001, 4002, 7496, 7497)
    assert facts["host"] == "127.0.0.1"
    assert facts["ports"] == {facts["port"]}
    assert facts["answers_inside"]
    assert not _answers(facts["port"])  # the child sim is gone


def test_attached_gateway_is_used_and_left_running(sim: Any) -> None:
    async def main() -> dict[str, Any]:
        async with open_session(
            load_settings(), sim=False, live=False, port=sim.port, readonly=False
        ) as session:
            return _facts(session)

    facts = asyncio.run(main())
    assert facts["gateway"] == f"attached 127.0.0.1:{sim.port}"
    assert facts["started"] is Started.NOTHING
    assert facts["readonly"] is False  # trading asks for read-write explicitly
    assert facts["ports"] == {sim.port}
    assert asyncio.run(probe(sim.host, sim.port)).ready  # not touched


def test_gateway_mode_sim_starts_a_gateway_and_stops_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IB_GATEWAY_MODE", "sim")
    settings = load_settings()
    port = _free_port()

    async def main() -> dict[str, Any]:
        async with open_session(settings, sim=False, live=False, port=port) as session:
            facts = _facts(session)
            facts["state"] = lifecycle.load_state(settings)
            return facts

    facts = asyncio.run(main())
    assert facts["started"] is Started.GATEWAY
    assert facts["gateway"] == f"sim 127.0.0.1:{port}"
    assert facts["source"] is Source.SIM
    assert facts["state"] is not None
    assert facts["state"].started_by_ibdesk
    assert lifecycle.load_state(settings) is None  # stopped and forgotten
    assert not _answers(port)


def test_gateway_mode_sim_attaches_to_a_running_one_and_leaves_it(
    sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IB_GATEWAY_MODE", "sim")

    async def main() -> Started:
        async with open_session(load_settings(), sim=False, live=False, port=sim.port) as s:
            return s.started

    assert asyncio.run(main()) is Started.NOTHING
    assert asyncio.run(probe(sim.host, sim.port)).ready


def test_live_without_confirmation_is_refused_before_anything_starts(
    sim: Any, isolated_workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IB_PAPER_TRADING", "0")

    async def main(**kwargs: Any) -> None:
        async with open_session(load_settings(), live=False, **kwargs):
            raise AssertionError("opened without confirmation")

    with pytest.raises(UserInputError, match="IBDESK_CONFIRM_LIVE"):
        asyncio.run(main(sim=True))
    with pytest.raises(UserInputError, match="not confirmed"):
        asyncio.run(main(sim=False, port=sim.port, ask=lambda _prompt: "no"))
    assert not (isolated_workdir / "logs" / "gateway.out").exists()  # no sim child spawned
    assert not sim.sim.connections  # nothing connected to the running gateway


def test_live_confirmed_by_env_or_answer_connects_live(
    sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    async def main(**kwargs: Any) -> bool:
        async with open_session(load_settings(), sim=False, port=sim.port, **kwargs) as s:
            assert s.conn.is_connected
            return s.is_live

    assert asyncio.run(main(live=True, ask=lambda p: asked.append(p) or "yes")) is True
    assert asked
    assert "LIVE" in asked[0]
    monkeypatch.setenv("IBDESK_CONFIRM_LIVE", "yes")
    assert asyncio.run(main(live=True)) is True
    assert asyncio.run(main(live=False)) is False


def test_sigterm_sets_stop_and_the_handler_is_restored(sim: Any) -> None:
    before = signal.getsignal(signal.SIGTERM)

    async def main() -> bool:
        async with open_session(load_settings(), sim=False, live=False, port=sim.port) as s:
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(s.stop.wait(), timeout=10)
            return s.stop.is_set()

    assert asyncio.run(main())
    assert signal.getsignal(signal.SIGTERM) == before


def test_stop_cancels_work_and_the_sim_child_is_still_stopped() -> None:
    ports: list[int] = []

    async def main() -> None:
        async with open_session(load_settings(), sim=True, live=False) as s:
            ports.append(s.port)
            s.stop.set()
            await s.until_stopped(asyncio.sleep(3600))

    with pytest.raises(StopRequestedError) as raised:
        asyncio.run(main())
    assert raised.value.exit_code == 130
    assert not _answers(ports[0])


def test_until_stopped_returns_the_work_result(sim: Any) -> None:
    async def main() -> float:
        async with open_session(load_settings(), sim=False, live=False, port=sim.port) as s:
            moment = await s.until_stopped(s.conn.ib.reqCurrentTimeAsync())
            return moment.timestamp()

    assert asyncio.run(main()) > 0
