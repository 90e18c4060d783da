"""`ibdesk sim` as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any

from ib_async import IB, Stock

from ibdesk.calendar import parse_clock, xnys
from ibdesk.sim.history import (
    BarRequest,
    TapeModel,
    WhatToShow,
    build_bars,
    parse_bar_size,
    parse_duration,
)
from ibdesk.sim.universe import lookup
from tests.clirunner import invoke

CLOCK = "2025-07-30T16:30:00-04:00"


def test_describe_names_the_command() -> None:
    result = invoke(["sim", "--describe"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["name"] == "sim"


def test_bad_clock_is_a_usage_error() -> None:
    result = invoke(["sim", "--clock", "yesterday-ish"])
    assert result.exit_code == 2
    assert "clock" in result.stderr


def test_unknown_symbol_is_a_usage_error() -> None:
    result = invoke(["sim", "--symbols", "AAPL", "NOPE"])
    assert result.exit_code == 2
    assert "NOPE" in result.stderr


def _closes(seed: int) -> list[float]:
    cal = xnys()
    now = parse_clock(CLOCK)
    model = TapeModel(seed, cal, cal.latest_started(now))
    ticker = lookup("TSLA")
    assert ticker is not None
    request = BarRequest(
        now, parse_duration("1 D"), parse_bar_size("1 hour"), WhatToShow.TRADES, True
    )
    return build_bars(cal, request, lambda s: model.tape(ticker, s)).close.tolist()


def test_runs_in_the_foreground_with_env_defaults_and_stops_on_sigterm() -> None:
    env = {**os.environ, "IBDESK_SIM_SEED": "11", "IBDESK_SIM_CLOCK": CLOCK}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ibdesk", "sim", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("ibdesk sim listening on 127.0.0.1:")
        port = int(line.rsplit(":", 1)[1])
        ib = IB()
        ib.connect("127.0.0.1", port, clientId=1, timeout=10)
        contract = Stock("TSLA", "SMART", "USD")
        ib.qualifyContracts(contract)
        bars = ib.reqHistoricalData(contract, "", "1 D", "1 hour", "TRADES", True, 1)
        ib.disconnect()
        assert [b.close for b in bars] == _closes(11) != _closes(7)
        proc.send_signal(signal.SIGTERM)
        out, _err = proc.communicate(timeout=10)
        assert proc.returncode == 0
        assert "ibdesk sim stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_config_from_settings_takes_seed_and_clock_defaults(monkeypatch: Any) -> None:
    from ibdesk.config import load_settings
    from ibdesk.sim.server import SimConfig

    monkeypatch.setenv("IBDESK_SIM_SEED", "99")
    monkeypatch.setenv("IBDESK_SIM_CLOCK", CLOCK)
    config = SimConfig.from_settings(load_settings(), port=0)
    assert (config.seed, config.clock, config.port) == (99, CLOCK, 0)
    assert SimConfig.from_settings(load_settings(), seed=3).seed == 3
