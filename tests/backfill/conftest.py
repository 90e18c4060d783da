"""Fixtures of the backfill tests: the loopback Databento server and env pointing at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.backfill.dbserver import DatabentoTestServer, backfill_env, running_server


@pytest.fixture
def db_server() -> Iterator[DatabentoTestServer]:
    with running_server() as server:
        yield server


@pytest.fixture
def db_env(db_server: DatabentoTestServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment that enables backfill against the loopback server, with fast retries."""
    env = backfill_env(db_server)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env
