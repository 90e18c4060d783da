"""Handshake, connect sequence, client ids and current time over real sockets."""

from __future__ import annotations

import socket
import struct
from typing import Any

import pytest
from ib_async import IB

from ibdesk.sim.protocol import FrameReader, encode


def _handshake(port: int, offer: str) -> tuple[socket.socket, list[list[str]]]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    body = offer.encode()
    sock.sendall(b"API\x00" + struct.pack(">I", len(body)) + body)
    reader = FrameReader()
    messages: list[list[str]] = []
    while not messages:
        chunk = sock.recv(4096)
        if not chunk:
            break
        messages += reader.feed(chunk)
    return sock, messages


def test_raw_client_with_wide_version_range_gets_178(sim: Any) -> None:
    sock, messages = _handshake(sim.port, "v100..200")
    with sock:
        assert messages[0][0] == "178"
        assert len(messages[0]) == 2
        sock.sendall(encode(71, 2, 5, ""))
        reader = FrameReader()
        seen: list[list[str]] = []
        while not any(m[0] == "9" for m in seen):
            seen += reader.feed(sock.recv(4096))
        assert ["15", "1", "SIM0001"] in seen


def test_client_requiring_version_above_178_is_refused(sim: Any) -> None:
    sock, messages = _handshake(sim.port, "v179..200")
    with sock:
        assert messages == []
        assert sock.recv(10) == b""


def test_ib_async_connects_and_syncs(ib: IB) -> None:
    assert ib.isConnected()
    assert ib.client.serverVersion() == 178
    assert ib.managedAccounts() == ["SIM0001"]


def test_duplicate_client_id_gets_326_and_is_closed(sim: Any, ib: IB) -> None:
    sock, _ = _handshake(sim.port, "v157..178")
    with sock:
        sock.sendall(encode(71, 2, ib.client.clientId, ""))
        reader = FrameReader()
        seen: list[list[str]] = []
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            seen += reader.feed(chunk)
        assert seen[0][:4] == ["4", "2", "-1", "326"]


def test_several_clients_connect_at_once(sim: Any, ib: IB) -> None:
    other = IB()
    other.connect(sim.host, sim.port, clientId=999, timeout=10)
    try:
        assert other.isConnected()
        assert ib.isConnected()
    finally:
        other.disconnect()


def test_current_time_is_the_pinned_clock(ib: IB) -> None:
    now = ib.reqCurrentTime()
    assert now.isoformat().startswith("2025-07-30T20:30")


@pytest.mark.parametrize("sim", [{"symbols": ("AAPL",)}], indirect=True)
def test_unknown_symbol_gets_error_200(ib: IB, errors: Any) -> None:
    from ib_async import Stock

    assert ib.qualifyContracts(Stock("TSLA", "SMART", "USD")) == [None]
    assert 200 in errors.codes()
