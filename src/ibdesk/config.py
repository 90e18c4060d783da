"""Settings: every variable of README's Configuration table, read once from env and `.env`.

Owns parsing, defaults, validation and secret masking. Library code receives a `Settings`
value and never reads `os.environ` itself. An invalid value becomes a `ConfigError` whose
one-line message names the variable and the accepted form (the CLI exits 2 on it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from ibdesk.errors import ConfigError

SECRET_FIELDS: frozenset[str] = frozenset({"ib_username", "ib_password", "databento_api_key"})
MASK = "***"

_WINDOW_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
WINDOW_FORM = "HH:MM-HH:MM in 24-hour ET with start before end, e.g. 09:00-11:00"


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A wall-clock window within one trading day (interpreted in America/New_York)."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> TimeWindow:
        match = _WINDOW_RE.match(text)
        if match is None:
            raise ValueError(WINDOW_FORM)
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if not (0 <= h1 <= 23 and 0 <= h2 <= 23 and 0 <= m1 <= 59 and 0 <= m2 <= 59):
            raise ValueError(WINDOW_FORM)
        window = cls(time(h1, m1), time(h2, m2))
        if window.start >= window.end:
            raise ValueError(WINDOW_FORM)
        return window

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def _to_window(value: Any) -> TimeWindow:
    if isinstance(value, TimeWindow):
        return value
    return TimeWindow.parse(str(value))


def _expand_path(value: Any) -> Path:
    return Path(str(value)).expanduser()


def _path_field(default: str, description: str) -> Any:
    """A path setting whose default is kept as the user would type it (e.g. `./data`)."""
    return Field(default, description=description)


def _expand_optional_path(value: Any) -> Path | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _expand_path(value)


OptionalPath = Annotated[Path | None, BeforeValidator(_expand_optional_path)]
Window = Annotated[TimeWindow, NoDecode, BeforeValidator(_to_window)]
ExpandedPath = Annotated[Path, BeforeValidator(_expand_path)]
GatewayMode = Literal["attach", "ibc", "docker", "sim"]


class Settings(BaseSettings):
    """All configuration, with README's defaults. Field `x_y` is env var `X_Y`."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        case_sensitive=False,
        extra="ignore",
        validate_default=True,
    )

    # Folders
    ml_base_path: ExpandedPath = _path_field(
        "~/Machine Learning", "root for ML outputs and the trade log"
    )
    ml_backup_path: ExpandedPath = _path_field("~/T7 Backup/Machine Learning", "backup mirror")
    logs_path: ExpandedPath = _path_field("logs", "log folder")
    temp_path: ExpandedPath = _path_field("temp", "scratch space")
    config_path: ExpandedPath = _path_field("config", "generated config")
    data_path_override: ExpandedPath = _path_field("./data", "data root")
    files_path: ExpandedPath = _path_field("./Files", "legacy files folder (Excel inputs)")
    cache_path: ExpandedPath = _path_field("./cache", "caches")

    # IB connection
    ib_host: str = Field("127.0.0.1", description="gateway host")
    ib_live_port: int = Field(7496, ge=1, le=65535, description="TWS live port")
    ib_paper_port: int = Field(7497, ge=1, le=65535, description="TWS paper port")
    ib_gateway_live_port: int = Field(4001, ge=1, le=65535, description="IB Gateway live port")
    ib_gateway_paper_port: int = Field(4002, ge=1, le=65535, description="IB Gateway paper port")
    ib_client_id: int = Field(1, ge=0, description="API client id")
    ib_paper_trading: bool = Field(
        True, description="0 selects live, which still needs confirmation"
    )
    ib_username: SecretStr = Field(SecretStr(""), description="headless login user (secret)")
    ib_password: SecretStr = Field(SecretStr(""), description="headless login password (secret)")
    ib_gateway_headless: bool = Field(True, description="launch the gateway headless")
    ib_gateway_mode: GatewayMode = Field("attach", description="attach | ibc | docker | sim")
    ibc_path: ExpandedPath = _path_field("/opt/ibc", "IBC install folder (ibc mode)")
    ibc_start_script: OptionalPath = Field(
        None, description="IBC start script (default $IBC_PATH/scripts/ibcstart.sh)"
    )
    ib_gateway_path: ExpandedPath = _path_field("~/Jts", "IB Gateway install folder (ibc mode)")
    ib_gateway_version: str = Field(
        "1030", description="installed IB Gateway major version (ibc mode)"
    )
    ibc_auto_restart_time: str = Field(
        "11:58 PM", description="IBC AutoRestartTime (daily restart)"
    )
    ib_read_only_api: bool = Field(False, description="1 = gateway API is read-only (no orders)")
    ib_docker_image: str = Field(
        "ghcr.io/gnzsnz/ib-gateway:stable", description="container image (docker mode)"
    )
    force_fake_ib: bool = Field(False, description="1 = use the simulator (explicit)")
    connection_timeout: float = Field(30, gt=0, description="IB connect timeout, seconds")
    retry_attempts: int = Field(3, ge=0, description="retries for IB connects and vendor calls")
    ibdesk_confirm_live: str = Field("", description="'yes' confirms live trading unattended")

    # Simulator
    ibdesk_sim_seed: int = Field(7, description="default --seed of the simulator")
    ibdesk_sim_clock: str = Field(
        "now", description="default --clock of the simulator (now or ISO-8601)"
    )

    # Storage and generic limits
    default_data_format: Literal["parquet"] = Field(
        "parquet", description="storage format (parquet only; kept for compatibility)"
    )
    backup_format: Literal["csv"] = Field(
        "csv", description="format of `data export` backups (csv)"
    )
    excel_engine: Literal["openpyxl"] = Field(
        "openpyxl", description="Excel reader (openpyxl is the one supported)"
    )
    max_workers: int = Field(
        4, ge=1, description="worker cap when a command's own setting is unset (backfill)"
    )
    chunk_size: int = Field(1000, ge=1, description="accepted for compatibility; ignored")
    cache_size_mb: int = Field(512, ge=0, description="accepted for compatibility; ignored")

    # Databento backfill
    databento_enable_backfill: bool = Field(
        False, description="backfill calls the vendor only when 1"
    )
    databento_api_key: SecretStr = Field(SecretStr(""), description="vendor key (secret)")
    databento_dataset: str = Field("XNAS.ITCH", description="dataset (NASDAQ.ITCH is an alias)")
    databento_schema: str = Field("mbp-10", description="L2 schema")
    databento_tz: str = Field("America/New_York", description="window time zone")
    databento_gateway: str | None = Field(None, description="historical API base URL")
    l2_backfill_window_et: Window = Field(
        TimeWindow(time(9), time(11)), description="slice per (symbol, day), ET"
    )
    l2_enforce_trading_window: bool = Field(True, description="clamp to the trading window")
    l2_trading_window_et: Window = Field(
        TimeWindow(time(9), time(11)), description="trading window, ET"
    )
    l2_backfill_concurrency: int | None = Field(
        None, ge=1, description="legacy workers when L2_MAX_WORKERS is unset"
    )
    l2_max_workers: int | None = Field(None, ge=1, description="backfill workers (default 4)")
    l2_task_backoff_base_ms: int = Field(250, ge=0, description="vendor retry backoff base, ms")
    l2_task_backoff_max_ms: int = Field(2000, ge=0, description="vendor retry backoff cap, ms")
    symbol_mapping_file: ExpandedPath = _path_field(
        "config/symbol_mapping.json", "local -> vendor symbols"
    )
    warrior_trades_file: OptionalPath = Field(
        None, description="trade log (default $ML_BASE_PATH/warrior_trades.xlsx)"
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", description="verbosity"
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator(
        "databento_gateway",
        "l2_max_workers",
        "l2_backfill_concurrency",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    # Derived values -------------------------------------------------------------------
    @property
    def data_root(self) -> Path:
        return self.data_path_override

    @property
    def level2_root(self) -> Path:
        return self.data_path_override / "level2"

    @property
    def trades_file(self) -> Path:
        return self.warrior_trades_file or self.ml_base_path / "warrior_trades.xlsx"

    @property
    def backfill_workers(self) -> int:
        """L2_MAX_WORKERS, else the legacy L2_BACKFILL_CONCURRENCY, else MAX_WORKERS (4)."""
        return self.l2_max_workers or self.l2_backfill_concurrency or self.max_workers

    def secret(self, name: str) -> str:
        """The clear value of a secret, for the one place that must send it (login, vendor)."""
        value = getattr(self, name)
        return value.get_secret_value() if isinstance(value, SecretStr) else str(value)

    def secret_values(self) -> list[str]:
        """Non-empty secret values, so log and output filters can mask them."""
        return [v for v in (self.secret(n) for n in SECRET_FIELDS) if v]

    def masked(self) -> dict[str, str]:
        """Every setting as ENV_NAME -> printable value, secrets as *** when set."""
        shown: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in SECRET_FIELDS:
                shown[name.upper()] = MASK if self.secret(name) else ""
            elif isinstance(value, bool):
                shown[name.upper()] = "1" if value else "0"
            else:
                shown[name.upper()] = "" if value is None else str(value)
        return shown


_ACCEPTED_FORMS: dict[str, str] = {
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "bool_parsing": "1/0 (or true/false)",
    "literal_error": "one of {expected}",
    "greater_than_equal": "a number >= {ge}",
    "less_than_equal": "a number <= {le}",
    "greater_than": "a number > {gt}",
}


def _describe_error(error: Any) -> str:
    field = str(error["loc"][0]) if error.get("loc") else "?"
    variable = field.upper()
    ctx = error.get("ctx") or {}
    template = _ACCEPTED_FORMS.get(error["type"])
    if template is not None:
        accepted = template.format(**{k: str(v) for k, v in ctx.items()})
    elif error["type"] == "value_error":
        accepted = str(ctx.get("error", error["msg"]))
    else:
        accepted = str(error["msg"])
    if field in SECRET_FIELDS:
        return f"invalid {variable}: expected {accepted}"
    return f"invalid {variable}={error.get('input')!r}: expected {accepted}"


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment and `.env`; invalid values raise `ConfigError`."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe_error(exc.errors()[0])) from None
    except SettingsError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from None


def env_var_names() -> list[str]:
    return [name.upper() for name in Settings.model_fields]


_ENV_EXAMPLE_HEADER = """\
# ibdesk configuration. Copy to .env (or run `ibdesk setup`) and edit.
# Every variable is optional; the value shown is the default. Secrets stay empty here.
"""


def _example_value(name: str, field_default: Any) -> str:
    if name in SECRET_FIELDS or field_default is None:
        return ""
    if isinstance(field_default, bool):
        return "1" if field_default else "0"
    if isinstance(field_default, SecretStr):
        return ""
    return str(field_default)


def render_env_example() -> str:
    """The text of `.env.example`: every variable, its default and what it is for."""
    lines = [_ENV_EXAMPLE_HEADER]
    for name, info in Settings.model_fields.items():
        lines.append(f"# {info.description}")
        lines.append(f"{name.upper()}={_example_value(name, info.default)}")
    return "\n".join(lines) + "\n"
