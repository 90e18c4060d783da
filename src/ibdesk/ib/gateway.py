"""Gateway lifecycle: attach to a running TWS/Gateway, or start one via IBC, Docker or the sim.

Owns launching and stopping, the state file that remembers what ibdesk started (so `stop`
stops only that), and readiness waits. Secrets never reach a command line: IBC reads them
from a 0600 config.ini in a private temp dir (removed on stop); the docker CLI gets them
from its environment (`-e NAME` without a value).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from ibdesk.config import Settings
from ibdesk.errors import GatewayUnavailableError, UserInputError, WorkFailedError
from ibdesk.ib.readiness import Readiness, first_ready, probe

log = logging.getLogger(__name__)

Mode = Literal["attach", "ibc", "docker", "sim"]
MODES: tuple[Mode, ...] = ("attach", "ibc", "docker", "sim")
DOCKER_CONTAINER = "ibdesk-ib-gateway"
# gnzsnz/ib-gateway exposes the API through socat on 4003 (live) and 4004 (paper).
DOCKER_API_PORT = {"live": 4003, "paper": 4004}
_POLL_S = 0.25


@dataclass(frozen=True, slots=True)
class GatewayState:
    """What ibdesk started, persisted so a later `ibdesk gateway stop` can undo it."""

    mode: Mode
    host: str
    port: int
    started_by_ibdesk: bool
    pid: int | None = None
    container: str | None = None
    config_dir: str | None = None
    started_at: float = 0.0


def state_path(settings: Settings) -> Path:
    return settings.cache_path / "gateway" / "state.json"


def load_state(settings: Settings) -> GatewayState | None:
    path = state_path(settings)
    if not path.exists():
        return None
    try:
        return GatewayState(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise UserInputError(f"unreadable gateway state file {path}: {exc}") from None


def _save_state(settings: Settings, state: GatewayState) -> None:
    path = state_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2), encoding="utf-8")
    os.replace(tmp, path)


def trading_mode(settings: Settings, live: bool | None = None) -> Literal["paper", "live"]:
    is_live = (not settings.ib_paper_trading) if live is None else live
    return "live" if is_live else "paper"


def candidate_ports(settings: Settings, live: bool | None = None) -> list[int]:
    """Ports to auto-detect, in order: paper 4002 then 7497; live 4001 then 7496."""
    if trading_mode(settings, live) == "live":
        return [settings.ib_gateway_live_port, settings.ib_live_port]
    return [settings.ib_gateway_paper_port, settings.ib_paper_port]


def unavailable_message(host: str, ports: list[int]) -> str:
    tried = ", ".join(str(p) for p in ports)
    return (
        f"no IB gateway answered the API handshake on {host} port(s) {tried}; "
        "start one with `ibdesk gateway start` (IB_GATEWAY_MODE=attach|ibc|docker|sim) "
        "or use `--sim` for the built-in simulator"
    )


async def wait_ready(
    host: str, port: int, timeout_s: float, process: subprocess.Popen[bytes] | None = None
) -> Readiness:
    """Probe until the handshake is answered or `timeout_s` passes (or the process dies)."""
    deadline = time.monotonic() + timeout_s
    last = Readiness(host, port, False, reason="not probed")
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return Readiness(
                host, port, False, reason=f"process exited with code {process.returncode}"
            )
        last = await probe(host, port, timeout_s=min(2.0, max(0.2, deadline - time.monotonic())))
        if last.ready:
            return last
        await asyncio.sleep(_POLL_S)
    return last


# ---- IBC ---------------------------------------------------------------------------------
def ibc_config_text(settings: Settings, mode: Literal["paper", "live"], port: int) -> str:
    """config.ini for IBC: login, trading mode, daily restart, API port, read-only flag."""
    lines = {
        "IbLoginId": settings.secret("ib_username"),
        "IbPassword": settings.secret("ib_password"),
        "TradingMode": mode,
        "AutoRestartTime": settings.ibc_auto_restart_time,
        "ReadOnlyApi": "yes" if settings.ib_read_only_api else "no",
        "AcceptIncomingConnectionAction": "accept",
        "AcceptNonBrokerageAccountWarning": "yes",
        "ExistingSessionDetectedAction": "primary",
        "OverrideTwsApiPort": str(port),
        "IbAutoClosedown": "no",
    }
    return "".join(f"{key}={value}\n" for key, value in lines.items())


def write_ibc_config(settings: Settings, mode: Literal["paper", "live"], port: int) -> Path:
    """A private (0700) temp dir with a 0600 config.ini; returns the file path."""
    folder = Path(tempfile.mkdtemp(prefix="ibdesk-ibc-"))
    folder.chmod(0o700)
    path = folder / "config.ini"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(ibc_config_text(settings, mode, port))
    return path


def ibc_command(
    settings: Settings, config: Path, mode: Literal["paper", "live"], display: str | None
) -> list[str]:
    """argv for IBC's start script: paths and mode only, never a credential.

    Without a `display` (no X server) and with IB_GATEWAY_HEADLESS, it runs under xvfb-run.
    """
    script = settings.ibc_start_script or settings.ibc_path / "scripts" / "ibcstart.sh"
    command = [
        str(script),
        settings.ib_gateway_version,
        "--gateway",
        f"--tws-path={settings.ib_gateway_path}",
        f"--ibc-path={settings.ibc_path}",
        f"--ibc-ini={config}",
        f"--mode={mode}",
        "--on2fa=exit",
    ]
    if settings.ib_gateway_headless and not display:
        xvfb = shutil.which("xvfb-run")
        if xvfb is None:
            raise WorkFailedError(
                "no display for IB Gateway and xvfb-run is not installed: "
                "apt-get install xvfb, or set DISPLAY"
            )
        command = [xvfb, "-a", *command]
    return command


def docker_command(settings: Settings, mode: Literal["paper", "live"], port: int) -> list[str]:
    """argv for `docker run` of the ib-gateway image; credentials come from the environment."""
    return [
        "docker",
        "run",
        "-d",
        "--rm",
        "--name",
        DOCKER_CONTAINER,
        "-p",
        f"127.0.0.1:{port}:{DOCKER_API_PORT[mode]}",
        "-e",
        "TWS_USERID",
        "-e",
        "TWS_PASSWORD",
        "-e",
        f"TRADING_MODE={mode}",
        "-e",
        f"READ_ONLY_API={'yes' if settings.ib_read_only_api else 'no'}",
        "-e",
        "TIME_ZONE=America/New_York",
        settings.ib_docker_image,
    ]


def sim_command(
    host: str, port: int, seed: int | None = None, clock: str | None = None
) -> list[str]:
    command = [sys.executable, "-m", "ibdesk", "sim", "--host", host, "--port", str(port)]
    if seed is not None:
        command += ["--seed", str(seed)]
    if clock is not None:
        command += ["--clock", clock]
    return command


def free_port(host: str = "127.0.0.1") -> int:
    """An ephemeral port nobody listens on now (never a real gateway port)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass(slots=True)
class SimProcess:
    """A simulator child started for one command (`--sim`); `stop` ends it."""

    host: str
    port: int
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            _terminate(self.process.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


async def start_sim_process(settings: Settings, timeout_s: float = 30.0) -> SimProcess:
    """Start `ibdesk sim` on a free loopback port and wait until it answers the handshake."""
    host = "127.0.0.1"
    port = free_port(host)
    command = sim_command(host, port, settings.ibdesk_sim_seed, settings.ibdesk_sim_clock)
    process = _spawn(command, settings)
    try:
        ready = await wait_ready(host, port, timeout_s, process)
    except BaseException:  # cancelled (a stop request): the child must not outlive us
        _terminate(process.pid)
        raise
    if not ready.ready:
        if process.poll() is None:
            _terminate(process.pid)
        raise WorkFailedError(f"the built-in simulator did not start: {ready.reason}")
    return SimProcess(host, port, process)


def _spawn(
    command: list[str], settings: Settings, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    settings.logs_path.mkdir(parents=True, exist_ok=True)
    out = open(settings.logs_path / "gateway.out", "ab")  # noqa: SIM115 - owned by the child
    env = {**os.environ, **(extra_env or {})}
    try:
        return subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        raise WorkFailedError(f"cannot start {command[0]}: {exc.strerror}") from None
    finally:
        out.close()


async def start(
    settings: Settings,
    *,
    mode: Mode | None = None,
    port: int | None = None,
    live: bool | None = None,
    timeout_s: float = 60.0,
) -> GatewayState:
    """Get a ready gateway: attach when one already answers, otherwise launch one per `mode`."""
    chosen: Mode = mode or settings.ib_gateway_mode
    host = settings.ib_host
    trading = trading_mode(settings, live)
    ports = [port] if port is not None else candidate_ports(settings, live)
    existing = await first_ready(host, ports, timeout_s=min(timeout_s, 3.0))
    if existing is not None:
        log.info("gateway already answering on %s:%s; attaching", host, existing.port)
        state = GatewayState("attach", host, existing.port, False, started_at=time.time())
        _save_state(settings, state)
        return state
    if chosen == "attach":
        raise GatewayUnavailableError(unavailable_message(host, ports))

    target = ports[0]
    config_dir: str | None = None
    extra_env: dict[str, str] = {}
    if chosen == "sim":
        command = sim_command(host, target, settings.ibdesk_sim_seed, settings.ibdesk_sim_clock)
    elif chosen == "ibc":
        if not settings.secret("ib_username") or not settings.secret("ib_password"):
            raise UserInputError("ibc mode needs IB_USERNAME and IB_PASSWORD (in .env)")
        config = write_ibc_config(settings, trading, target)
        config_dir = str(config.parent)
        command = ibc_command(settings, config, trading, os.environ.get("DISPLAY"))
    else:
        if not settings.secret("ib_username") or not settings.secret("ib_password"):
            raise UserInputError("docker mode needs IB_USERNAME and IB_PASSWORD (in .env)")
        command = docker_command(settings, trading, target)
        extra_env = {
            "TWS_USERID": settings.secret("ib_username"),
            "TWS_PASSWORD": settings.secret("ib_password"),
        }
    log.info("starting gateway (%s mode): %s", chosen, " ".join(command))
    process = _spawn(command, settings, extra_env)
    if chosen == "docker":
        code = process.wait(timeout=timeout_s)
        if code != 0:
            raise WorkFailedError(
                f"docker run failed with exit code {code}; see {settings.logs_path / 'gateway.out'}"
            )
    state = GatewayState(
        chosen,
        host,
        target,
        True,
        pid=None if chosen == "docker" else process.pid,
        container=DOCKER_CONTAINER if chosen == "docker" else None,
        config_dir=config_dir,
        started_at=time.time(),
    )
    _save_state(settings, state)
    try:
        ready = await wait_ready(host, target, timeout_s, None if chosen == "docker" else process)
    except BaseException:  # cancelled (a stop request): stop what was just launched
        stop(settings)
        raise
    if not ready.ready:
        stop(settings)
        raise WorkFailedError(
            f"gateway ({chosen} mode) did not become ready on {host}:{target} within "
            f"{timeout_s:g}s ({ready.reason}); see {settings.logs_path / 'gateway.out'}"
        )
    return state


def _terminate(pid: int, grace_s: float = 10.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = 0
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        if done == pid:
            return
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def stop(settings: Settings) -> GatewayState | None:
    """Stop what ibdesk started (nothing else) and forget it; returns what was stopped."""
    state = load_state(settings)
    if state is None:
        return None
    if state.started_by_ibdesk:
        if state.container:
            subprocess.run(["docker", "stop", state.container], check=False, capture_output=True)
        if state.pid:
            _terminate(state.pid)
        if state.config_dir:
            shutil.rmtree(state.config_dir, ignore_errors=True)
    state_path(settings).unlink(missing_ok=True)
    return state
