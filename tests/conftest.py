"""Shared fixtures: every test runs in its own working directory with a clean ibdesk env.

Tests never touch ./data, the user's `.env` or their environment variables.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ibdesk.config import Settings, env_var_names, load_settings
from tests.backfill.dbserver import DatabentoTestServer, backfill_env, running_server


@pytest.fixture(autouse=True)
def isolated_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cwd with no ibdesk variables set, so `.env` and env come only from the test."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for name in env_var_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ML_BASE_PATH", str(work / "ml"))
    monkeypatch.setenv("ML_BACKUP_PATH", str(work / "ml_backup"))
    return work


@pytest.fixture
def data_root(isolated_workdir: Path) -> Path:
    """The data root of the test's settings (`./data` under the test's cwd)."""
    return isolated_workdir / "data"


@pytest.fixture
def settings(isolated_workdir: Path) -> Settings:
    return load_settings()


@pytest.fixture
def sim(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A running `ibdesk sim` on an ephemeral loopback port (background thread, own loop).

    Yields a `SimThread`: `.host`, `.port`, faults (`restart`, `connectivity_lost`, ...) and
    ground truth (`book(symbol, rows)`, `tape(symbol)`). The clock is pinned to
    2025-07-30T16:30 ET (after a full session) and the seed is 7 unless a test overrides
    SimConfig fields with `@pytest.mark.parametrize("sim", [{...}], indirect=True)`.
    """
    from ibdesk.sim.server import SimConfig, SimThread

    overrides: dict[str, Any] = getattr(request, "param", None) or {}
    fields: dict[str, Any] = {"port": 0, "clock": "2025-07-30T16:30:00-04:00", "seed": 7}
    fields.update(overrides)
    thread = SimThread(SimConfig(**fields)).start()
    try:
        yield thread
    finally:
        thread.stop()


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
