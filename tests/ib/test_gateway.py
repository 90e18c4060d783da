"""Gateway lifecycle and readiness: handshake, not an open port; stop only what we started."""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ibdesk.config import load_settings
from ibdesk.errors import WorkFailedError
from ibdesk.ib import gateway as lifecycle
from tests.clirunner import invoke


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def test_ready_fails_on_dead_port() -> None:
    port = _free_port()
    result = invoke(["gateway", "ready", "--port", str(port), "--timeout", "1", "--json"])
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["ready"] is False
    assert str(port) in payload["reason"]


def test_ready_fails_on_listener_that_never_answers_handshake(silent_listener: int) -> None:
    result = invoke(["gateway", "ready", "--port", str(silent_listener), "--timeout", "0.5"])
    assert result.exit_code == 1
    assert "ibdesk gateway start" in result.stderr


def test_candidate_ports_follow_trading_mode() -> None:
    settings = load_settings()
    assert lifecycle.candidate_ports(settings, live=False) == [4002, 7497]
    assert lifecycle.candidate_ports(settings, live=True) == [4001, 7496]


def test_attach_mode_without_gateway_names_ports_and_fix() -> None:
    port = _free_port()
    result = invoke(["gateway", "start", "--mode", "attach", "--port", str(port), "--timeout", "1"])
    assert result.exit_code == 1
    assert str(port) in result.stderr
    assert "--sim" in result.stderr


def test_unknown_mode_is_bad_input() -> None:
    result = invoke(["gateway", "start", "--mode", "cloud"])
    assert result.exit_code == 2
    assert "--mode" in result.stderr


def test_stop_with_nothing_on_record_is_harmless() -> None:
    result = invoke(["gateway", "stop"])
    assert result.exit_code == 0
    assert "nothing to stop" in result.stderr


def test_ibc_config_is_private_and_has_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IB_USERNAME", "trader1")
    monkeypatch.setenv("IB_PASSWORD", "s3cret-pw")
    monkeypatch.setenv("IB_READ_ONLY_API", "1")
    settings = load_settings()
    path = lifecycle.write_ibc_config(settings, "paper", 4002)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        text = path.read_text(encoding="utf-8")
        assert "IbLoginId=trader1\n" in text
        assert "IbPassword=s3cret-pw\n" in text
        assert "TradingMode=paper\n" in text
        assert "ReadOnlyApi=yes\n" in text
        assert "AutoRestartTime=11:58 PM\n" in text
        command = lifecycle.ibc_command(settings, path, "paper", ":99")
        assert command[1:3] == ["1030", "--gateway"]
        assert f"--ibc-ini={path}" in command
        assert not any("s3cret-pw" in arg or "trader1" in arg for arg in command)
    finally:
        path.unlink()
        path.parent.rmdir()


def test_docker_command_never_carries_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IB_USERNAME", "trader1")
    monkeypatch.setenv("IB_PASSWORD", "s3cret-pw")
    command = lifecycle.docker_command(load_settings(), "paper", 4002)
    assert "TWS_PASSWORD" in command
    assert not any("s3cret-pw" in arg or "trader1" in arg for arg in command)
    assert "127.0.0.1:4002:4004" in command


def test_headless_without_display_needs_xvfb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    settings = load_settings()
    with pytest.raises(WorkFailedError, match="xvfb"):
        lifecycle.ibc_command(settings, Path("/tmp/config.ini"), "paper", None)


def _stand_in(path: Path, body: str) -> Path:
    path.write_text(f"#!{sys.executable}\n{body}", encoding="utf-8")
    path.chmod(0o755)
    return path


def test_docker_mode_passes_secrets_by_environment_only(
    isolated_workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = isolated_workdir / "docker-call.json"
    bin_dir = isolated_workdir / "bin"
    bin_dir.mkdir()
    _stand_in(
        bin_dir / "docker",
        "import json, os, sys\n"
        f"json.dump({{'argv': sys.argv, 'user': os.environ.get('TWS_USERID'),"
        f" 'pw': os.environ.get('TWS_PASSWORD')}}, open({str(record)!r}, 'w'))\n"
        "sys.exit(3)\n",
    )
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    env = {"IB_USERNAME": "trader1", "IB_PASSWORD": "s3cret-pw"}
    result = invoke(
        ["gateway", "start", "--mode", "docker", "--port", str(_free_port()), "--timeout", "5"],
        env=env,
    )
    call = json.loads(record.read_text(encoding="utf-8"))
    assert call["user"] == "trader1"
    assert call["pw"] == "s3cret-pw"
    assert not any("s3cret-pw" in arg for arg in call["argv"])
    assert result.exit_code == 1
    assert "docker run failed" in result.stderr
    assert "s3cret-pw" not in result.stdout + result.stderr


def test_ready_succeeds_on_a_live_sim(sim: Any) -> None:
    result = invoke(["gateway", "ready", "--port", str(sim.port), "--json"])
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["ready"] is True
    assert payload["is_sim"] is True
    assert payload["server_version"] == 178


def test_start_attaches_to_a_running_gateway_and_stop_leaves_it(sim: Any) -> None:
    started = invoke(["gateway", "start", "--mode", "sim", "--port", str(sim.port)])
    assert started.exit_code == 0, started.stderr
    state = json.loads(started.stdout)
    assert state["mode"] == "attach"
    assert state["started_by_ibdesk"] is False
    stopped = invoke(["gateway", "stop"])
    assert "only attached" in stopped.stderr
    assert invoke(["gateway", "ready", "--port", str(sim.port)]).exit_code == 0


def test_sim_mode_starts_child_and_stop_ends_it() -> None:
    port = _free_port()
    started = invoke(["gateway", "start", "--mode", "sim", "--port", str(port), "--timeout", "60"])
    assert started.exit_code == 0, started.stderr
    state = json.loads(started.stdout)
    assert state["started_by_ibdesk"] is True
    assert invoke(["gateway", "status"]).exit_code == 0
    assert invoke(["gateway", "stop"]).exit_code == 0
    assert invoke(["gateway", "ready", "--port", str(port), "--timeout", "1"]).exit_code == 1


def test_ibc_mode_with_stand_in_script(isolated_workdir: Path) -> None:
    """A stand-in for IBC's ibcstart.sh records its call, then runs `ibdesk sim` in its place."""
    port = _free_port()
    record = isolated_workdir / "ibc-call.json"
    script = _stand_in(
        isolated_workdir / "ibcstart.sh",
        "import json, os, sys\n"
        "ini = next(a.split('=', 1)[1] for a in sys.argv if a.startswith('--ibc-ini='))\n"
        "mode = oct(os.stat(ini).st_mode & 0o777)\n"
        f"json.dump({{'argv': sys.argv, 'ini': open(ini).read(), 'mode': mode, 'ini_path': ini,"
        f" 'env_pw': os.environ.get('IB_PASSWORD')}}, open({str(record)!r}, 'w'))\n"
        "port = next(l.split('=')[1] for l in open(ini).read().splitlines()"
        " if l.startswith('OverrideTwsApiPort='))\n"
        "os.execv(sys.executable, [sys.executable, '-m', 'ibdesk', 'sim', '--port', port])\n",
    )
    env = {
        "IB_GATEWAY_MODE": "ibc",
        "IBC_START_SCRIPT": str(script),
        "IB_USERNAME": "trader1",
        "IB_PASSWORD": "s3cret-pw",
        "DISPLAY": ":99",
    }
    started = invoke(["gateway", "start", "--port", str(port), "--timeout", "60"], env=env)
    assert started.exit_code == 0, started.stderr
    call = json.loads(record.read_text(encoding="utf-8"))
    assert not any("s3cret-pw" in arg or "trader1" in arg for arg in call["argv"])
    assert "IbPassword=s3cret-pw" in call["ini"]
    assert "TradingMode=paper" in call["ini"]
    assert call["mode"] == "0o600"
    assert "--mode=paper" in call["argv"]
    assert "s3cret-pw" not in started.stdout + started.stderr
    ini = Path(call["ini_path"])
    assert ini.exists()
    assert invoke(["gateway", "ready", "--port", str(port)]).exit_code == 0
    assert invoke(["gateway", "stop"], env=env).exit_code == 0
    assert not ini.exists()
    assert not ini.parent.exists()
    assert invoke(["gateway", "ready", "--port", str(port), "--timeout", "1"]).exit_code == 1
    for log in (isolated_workdir / "logs").glob("*"):
        assert "s3cret-pw" not in log.read_text(encoding="utf-8", errors="replace")
