"""Logging: the four files, levels, and secrets never reaching any log."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from ibdesk.config import load_settings
from ibdesk.logs import setup_logging


@pytest.fixture(autouse=True)
def _reset_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    before = list(root.handlers)
    yield
    for handler in list(root.handlers):
        if handler not in before:
            root.removeHandler(handler)
            handler.close()


def _flush() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()


def test_log_files_split_by_level_and_logger(isolated_workdir: Path) -> None:
    setup_logging(load_settings(), console=False)
    logging.getLogger("ibdesk.test").info("plain info line")
    logging.getLogger("ibdesk.test").warning("a warning line")
    logging.getLogger("ibdesk.api").debug("api traffic line")
    logging.getLogger("ibdesk.performance").info("timing line")
    _flush()
    logs = isolated_workdir / "logs"
    trading = (logs / "trading.log").read_text(encoding="utf-8")
    error = (logs / "error.log").read_text(encoding="utf-8")
    api = (logs / "api.log").read_text(encoding="utf-8")
    perf = (logs / "performance.log").read_text(encoding="utf-8")
    assert "plain info line" in trading
    assert "a warning line" in trading
    assert "a warning line" in error
    assert "plain info line" not in error
    assert "api traffic line" in api
    assert "plain info line" not in api
    assert "timing line" in perf
    assert "plain info line" not in perf


def test_secrets_are_masked_in_every_log(
    isolated_workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IB_PASSWORD", "pa55-w0rd-zz")
    monkeypatch.setenv("DATABENTO_API_KEY", "db-KEY-0001")
    setup_logging(load_settings(), console=False)
    log = logging.getLogger("ibdesk.api")
    log.warning("login with %s and key %s", "pa55-w0rd-zz", "db-KEY-0001")
    try:
        raise RuntimeError("failed with pa55-w0rd-zz")
    except RuntimeError:
        log.exception("boom")
    _flush()
    for path in (isolated_workdir / "logs").glob("*.log"):
        text = path.read_text(encoding="utf-8")
        assert "pa55-w0rd-zz" not in text, path.name
        assert "db-KEY-0001" not in text, path.name
    assert "***" in (isolated_workdir / "logs" / "api.log").read_text(encoding="utf-8")


def test_console_level_follows_log_level(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    setup_logging(load_settings())
    logging.getLogger("ibdesk.test").info("hidden info")
    logging.getLogger("ibdesk.test").warning("shown warning")
    err = capsys.readouterr().err
    assert "shown warning" in err
    assert "hidden info" not in err


def test_verbose_shows_debug_on_console(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(load_settings(), verbose=True)
    logging.getLogger("ibdesk.test").debug("debug detail")
    assert "debug detail" in capsys.readouterr().err


def test_ib_async_errors_stay_in_api_log_and_off_the_console(
    isolated_workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging(load_settings())
    logging.getLogger("ib_async.client").error("Make sure API port on TWS/IBG is open")
    logging.getLogger("ibdesk.test").error("ibdesk's own error")
    _flush()
    err = capsys.readouterr().err
    assert "Make sure API port" not in err
    assert "ibdesk's own error" in err
    logs = isolated_workdir / "logs"
    assert "Make sure API port" in (logs / "api.log").read_text(encoding="utf-8")
    assert "ibdesk's own error" in (logs / "error.log").read_text(encoding="utf-8")


def test_verbose_shows_ib_async_on_console(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(load_settings(), verbose=True)
    logging.getLogger("ib_async.client").error("API connection failed")
    assert "API connection failed" in capsys.readouterr().err
