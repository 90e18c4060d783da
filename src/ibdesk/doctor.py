"""Health checks behind `ibdesk doctor` and `ibdesk setup`: config, folders, deps, gateway.

Pure reporting: it creates nothing (setup does) and never shows a secret.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from ibdesk.config import Settings

CORE_DEPENDENCIES = (
    "ib-async",
    "databento",
    "databento-dbn",
    "numpy",
    "pyarrow",
    "polars",
    "duckdb",
    "pandas",
    "pydantic-settings",
    "typer",
    "rich",
    "exchange-calendars",
    "tenacity",
    "matplotlib",
    "plotly",
    "distributed",
    "openpyxl",
)


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Check:
    category: str
    name: str
    status: Status
    detail: str
    fix: str = ""


@dataclass(slots=True)
class DoctorReport:
    checks: list[Check] = field(default_factory=list)
    config: dict[str, str] = field(default_factory=dict)
    dependencies: dict[str, str | None] = field(default_factory=dict)
    gateway_ports: dict[str, bool] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.status is not Status.ERROR for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "python": sys.version.split()[0],
            "checks": [asdict(c) | {"status": c.status.value} for c in self.checks],
            "config": self.config,
            "dependencies": self.dependencies,
            "gateway_ports": self.gateway_ports,
        }


def folders(settings: Settings) -> dict[str, Path]:
    """Folders ibdesk writes to, by the variable that sets them."""
    return {
        "DATA_PATH_OVERRIDE": settings.data_path_override,
        "LOGS_PATH": settings.logs_path,
        "CACHE_PATH": settings.cache_path,
        "TEMP_PATH": settings.temp_path,
        "CONFIG_PATH": settings.config_path,
    }


def check_folder(variable: str, path: Path) -> Check:
    if not path.exists():
        return Check(
            "folders", variable, Status.WARN, f"{path} does not exist", "run `ibdesk setup`"
        )
    if not path.is_dir():
        return Check(
            "folders",
            variable,
            Status.ERROR,
            f"{path} is not a folder",
            f"set {variable} to a folder",
        )
    if not os.access(path, os.W_OK | os.X_OK):
        return Check(
            "folders",
            variable,
            Status.ERROR,
            f"{path} is not writable",
            f"fix permissions of {path}",
        )
    return Check("folders", variable, Status.OK, f"{path} is writable")


def dependency_versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in CORE_DEPENDENCIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def port_answers(host: str, port: int, timeout_s: float = 0.3) -> bool:
    """True when something accepts TCP on host:port (readiness is `ibdesk gateway ready`)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def gateway_ports(settings: Settings) -> dict[str, int]:
    return {
        "IB_GATEWAY_PAPER_PORT": settings.ib_gateway_paper_port,
        "IB_PAPER_PORT": settings.ib_paper_port,
        "IB_GATEWAY_LIVE_PORT": settings.ib_gateway_live_port,
        "IB_LIVE_PORT": settings.ib_live_port,
    }


def run_checks(settings: Settings) -> DoctorReport:
    report = DoctorReport(config=settings.masked())
    for variable, path in folders(settings).items():
        report.checks.append(check_folder(variable, path))

    report.dependencies = dependency_versions()
    for name, found in report.dependencies.items():
        if found is None:
            report.checks.append(
                Check("dependencies", name, Status.ERROR, "not installed", "pip install -e .")
            )
        else:
            report.checks.append(Check("dependencies", name, Status.OK, found))

    answered: list[str] = []
    for variable, port in gateway_ports(settings).items():
        up = port_answers(settings.ib_host, port)
        report.gateway_ports[str(port)] = up
        if up:
            answered.append(f"{variable}={port}")
    if answered:
        report.checks.append(
            Check(
                "gateway",
                "ports",
                Status.OK,
                f"{settings.ib_host}: answering {', '.join(answered)}",
            )
        )
    else:
        ports = ", ".join(str(p) for p in gateway_ports(settings).values())
        report.checks.append(
            Check(
                "gateway",
                "ports",
                Status.WARN,
                f"no gateway answers on {settings.ib_host} ports {ports}",
                "start one with `ibdesk gateway start`, or use `--sim`",
            )
        )

    key_set = bool(settings.secret("databento_api_key"))
    enabled = settings.databento_enable_backfill
    if key_set and enabled:
        report.checks.append(
            Check("vendor", "databento", Status.OK, "API key set, backfill enabled")
        )
    else:
        missing = [
            t
            for t, ok in (("DATABENTO_API_KEY", key_set), ("DATABENTO_ENABLE_BACKFILL=1", enabled))
            if not ok
        ]
        report.checks.append(
            Check(
                "vendor",
                "databento",
                Status.WARN,
                f"backfill unavailable: {' and '.join(missing)} not set",
                "set DATABENTO_API_KEY and DATABENTO_ENABLE_BACKFILL=1 in .env",
            )
        )
    return report


def doctor_output_schema() -> dict[str, Any]:
    check = {
        "type": "object",
        "properties": {
            "category": {"type": "string"},
            "name": {"type": "string"},
            "status": {"type": "string", "enum": [s.value for s in Status]},
            "detail": {"type": "string"},
            "fix": {"type": "string"},
        },
        "required": ["category", "name", "status", "detail", "fix"],
    }
    return {
        "type": "object",
        "description": "`doctor --json` output (a table on the terminal without --json)",
        "properties": {
            "ok": {"type": "boolean"},
            "python": {"type": "string"},
            "checks": {"type": "array", "items": check},
            "config": {"type": "object", "additionalProperties": {"type": "string"}},
            "dependencies": {
                "type": "object",
                "additionalProperties": {"type": ["string", "null"]},
            },
            "gateway_ports": {"type": "object", "additionalProperties": {"type": "boolean"}},
        },
        "required": ["ok", "python", "checks", "config", "dependencies", "gateway_ports"],
    }
