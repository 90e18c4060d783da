"""Settings: defaults, .env, ~ expansion, one-line errors naming the variable, masking."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from ibdesk.config import (
    MASK,
    ConfigError,
    Settings,
    TimeWindow,
    env_var_names,
    load_settings,
    render_env_example,
)

SPEC_VARIABLES = {
    "ML_BASE_PATH": "~/Machine Learning",
    "ML_BACKUP_PATH": "~/T7 Backup/Machine Learning",
    "LOGS_PATH": "logs",
    "TEMP_PATH": "temp",
    "CONFIG_PATH": "config",
    "DATA_PATH_OVERRIDE": "./data",
    "FILES_PATH": "./Files",
    "CACHE_PATH": "./cache",
    "IB_HOST": "127.0.0.1",
    "IB_LIVE_PORT": "7496",
    "IB_PAPER_PORT": "7497",
    "IB_GATEWAY_LIVE_PORT": "4001",
    "IB_GATEWAY_PAPER_PORT": "4002",
    "IB_CLIENT_ID": "1",
    "IB_PAPER_TRADING": "1",
    "IB_USERNAME": "",
    "IB_PASSWORD": "",
    "IB_GATEWAY_HEADLESS": "1",
    "FORCE_FAKE_IB": "0",
    "DEFAULT_DATA_FORMAT": "parquet",
    "BACKUP_FORMAT": "csv",
    "EXCEL_ENGINE": "openpyxl",
    "MAX_WORKERS": "4",
    "CHUNK_SIZE": "1000",
    "CACHE_SIZE_MB": "512",
    "CONNECTION_TIMEOUT": "30",
    "RETRY_ATTEMPTS": "3",
    "DATABENTO_ENABLE_BACKFILL": "0",
    "DATABENTO_API_KEY": "",
    "DATABENTO_DATASET": "XNAS.ITCH",
    "DATABENTO_SCHEMA": "mbp-10",
    "DATABENTO_TZ": "America/New_York",
    "DATABENTO_GATEWAY": "",
    "L2_BACKFILL_WINDOW_ET": "09:00-11:00",
    "L2_ENFORCE_TRADING_WINDOW": "1",
    "L2_TRADING_WINDOW_ET": "09:00-11:00",
    "L2_BACKFILL_CONCURRENCY": "",
    "L2_MAX_WORKERS": "",
    "L2_TASK_BACKOFF_BASE_MS": "250",
    "L2_TASK_BACKOFF_MAX_MS": "2000",
    "SYMBOL_MAPPING_FILE": "config/symbol_mapping.json",
    "WARRIOR_TRADES_FILE": "",
    "LOG_LEVEL": "INFO",
    "IBDESK_CONFIRM_LIVE": "",
}


def test_every_spec_variable_is_a_setting() -> None:
    assert set(SPEC_VARIABLES) <= set(env_var_names())


def test_env_example_lists_every_variable_with_its_default() -> None:
    text = render_env_example()
    lines = dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert set(lines) == set(env_var_names())
    for name, default in SPEC_VARIABLES.items():
        assert lines[name] == default, name


def test_committed_env_example_matches_the_settings() -> None:
    committed = Path(__file__).resolve().parents[1] / ".env.example"
    assert committed.read_text(encoding="utf-8") == render_env_example()


def test_defaults_match_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ML_BASE_PATH")
    settings = load_settings()
    assert settings.ib_client_id == 1
    assert settings.ib_paper_trading is True
    assert settings.ml_base_path == Path("~/Machine Learning").expanduser()
    assert settings.l2_backfill_window_et == TimeWindow(time(9), time(11))
    assert settings.backfill_workers == 4
    assert settings.trades_file == settings.ml_base_path / "warrior_trades.xlsx"


def test_environment_overrides_dotenv(
    isolated_workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (isolated_workdir / ".env").write_text("IB_CLIENT_ID=7\nLOG_LEVEL=debug\n", encoding="utf-8")
    assert load_settings().ib_client_id == 7
    assert load_settings().log_level == "DEBUG"
    monkeypatch.setenv("IB_CLIENT_ID", "9")
    assert load_settings().ib_client_id == 9


def test_paths_expand_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_PATH_OVERRIDE", "~/ibdesk-data")
    assert load_settings().data_root == Path.home() / "ibdesk-data"


def test_legacy_concurrency_used_when_max_workers_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("L2_BACKFILL_CONCURRENCY", "2")
    assert load_settings().backfill_workers == 2
    monkeypatch.setenv("L2_MAX_WORKERS", "6")
    assert load_settings().backfill_workers == 6


def test_generic_max_workers_caps_backfill_when_its_own_settings_are_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAX_WORKERS", "3")
    assert load_settings().backfill_workers == 3
    monkeypatch.setenv("L2_BACKFILL_CONCURRENCY", "2")
    assert load_settings().backfill_workers == 2


def test_excel_engine_other_than_openpyxl_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCEL_ENGINE", "xlrd")
    with pytest.raises(ConfigError, match="EXCEL_ENGINE"):
        load_settings()


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("IB_CLIENT_ID", "abc", "an integer"),
        ("L2_BACKFILL_WINDOW_ET", "9-25", "HH:MM-HH:MM"),
        ("L2_TRADING_WINDOW_ET", "11:00-09:00", "start before end"),
        ("IB_PAPER_TRADING", "maybe", "1/0"),
        ("IB_GATEWAY_PAPER_PORT", "70000", "<= 65535"),
        ("LOG_LEVEL", "loud", "one of"),
    ],
)
def test_invalid_value_names_variable_and_accepted_form(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = info.value.message
    assert variable in message
    assert expected in message
    assert "\n" not in message
    assert info.value.exit_code == 2


def test_secret_never_in_masked_view_or_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IB_PASSWORD", "hunter2-secret")
    monkeypatch.setenv("DATABENTO_API_KEY", "db-key-123456")
    settings = load_settings()
    shown = settings.masked()
    assert shown["IB_PASSWORD"] == MASK
    assert shown["DATABENTO_API_KEY"] == MASK
    assert "hunter2-secret" not in repr(settings)
    assert settings.secret("ib_password") == "hunter2-secret"


def test_settings_is_the_only_source_of_defaults() -> None:
    assert Settings.model_fields["ib_client_id"].default == 1


def test_readme_documents_every_variable() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    missing = [name for name in env_var_names() if name not in readme]
    assert missing == []
