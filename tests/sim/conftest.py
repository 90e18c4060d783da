"""Sim tests: a real ib_async client per test, and no test passes if ib_async's decoder
logged an ERROR (a wrong field count is otherwise silent)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from ib_async import IB

_client_ids = itertools.count(1)


@pytest.fixture(autouse=True)
def no_decoder_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.INFO, logger="ib_async.Decoder")
    yield
    bad = [
        r.getMessage()
        for r in caplog.records
        if r.name == "ib_async.Decoder" and r.levelno >= logging.ERROR
    ]
    assert not bad, f"ib_async.Decoder logged errors: {bad[:3]}"


@pytest.fixture
def ib(sim: Any) -> Iterator[IB]:
    """An ib_async client connected to the test's sim; connect fails if any start-up
    request (positions, orders, account updates, executions) went unanswered."""
    client = IB()
    client.connect(sim.host, sim.port, clientId=next(_client_ids), timeout=10, raiseSyncErrors=True)
    try:
        yield client
    finally:
        client.disconnect()


class ErrorLog:
    """Errors the client received: (reqId, code, message)."""

    def __init__(self, ib: IB) -> None:
        self.items: list[tuple[int, int, str]] = []
        ib.errorEvent += self._on_error

    def _on_error(self, req_id: int, code: int, message: str, *_: object) -> None:
        self.items.append((req_id, code, message))

    def codes(self) -> list[int]:
        return [code for _, code, _ in self.items]


@pytest.fixture
def errors(ib: IB) -> ErrorLog:
    return ErrorLog(ib)
