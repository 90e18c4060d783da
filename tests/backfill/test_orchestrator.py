"""The orchestrator and the programmatic API against the loopback server (real SDK)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ibdesk.backfill.api import backfill_l2, find_warrior_tasks, run_warrior_backfill
from ibdesk.backfill.manifest import read_manifest
from ibdesk.backfill.orchestrator import BackfillOptions, TaskStatus, run_backfill
from ibdesk.backfill.tasks import BackfillTask
from ibdesk.config import load_settings
from ibdesk.store.layout import databento_snapshots_path, databento_trades_path
from tests.backfill.dbserver import DatabentoTestServer, seed_day

DAY = date(2024, 3, 8)


def statuses(results: list) -> list[str]:
    return [r.status.value for r in results]


@pytest.fixture
def seeded(db_server: DatabentoTestServer, db_env: dict[str, str]) -> DatabentoTestServer:
    for i, symbol in enumerate(["AAPL", "MSFT", "TSLA", "NVDA", "AMD", "META"]):
        seed_day(db_server, symbol, DAY, seed=i)
    return db_server


def test_writes_snapshots_and_trades_with_one_get_range_per_task(
    seeded: DatabentoTestServer, data_root: Path
) -> None:
    tasks = [BackfillTask("AAPL", DAY), BackfillTask("MSFT", DAY)]
    summary = run_backfill(load_settings(), tasks, BackfillOptions())
    assert statuses(summary.results) == ["WRITE", "WRITE"]
    assert [c.endpoint for c in seeded.calls()].count("metadata.get_dataset_range") == 1
    assert sorted(c.form["symbols"] for c in seeded.calls("timeseries.get_range")) == [
        "AAPL",
        "MSFT",
    ]
    assert seeded.calls("metadata.get_cost") == []
    assert len(seeded.calls()) == 3  # one dataset range + one get_range per task, nothing else
    snaps = pq.read_table(databento_snapshots_path(data_root / "level2", "AAPL", DAY))
    assert snaps.num_rows == 72_000  # 09:00-11:00 ET at 100 ms
    assert pq.read_table(databento_trades_path(data_root / "level2", "AAPL", DAY)).num_rows > 0
    summary_json = json.loads((data_root / "backfill_l2_summary.json").read_text())
    assert summary_json["counts"]["WRITE"] == 2
    assert summary_json["concurrency"] == 4


def test_manifest_follows_input_order_whatever_the_completion_order(
    seeded: DatabentoTestServer, data_root: Path
) -> None:
    symbols = ["AAPL", "MSFT", "TSLA", "NVDA", "AMD", "META"]
    seeded.fail("timeseries.get_range", symbol="AAPL", latency_s=0.6)
    seeded.fail("timeseries.get_range", symbol="MSFT", latency_s=0.3)
    summary = run_backfill(
        load_settings(),
        [BackfillTask(s, DAY) for s in symbols],
        BackfillOptions(max_workers=4, interval_ms=1000),
    )
    manifest = read_manifest(data_root / "backfill_l2_manifest.jsonl")
    assert [m["symbol"] for m in manifest] == symbols
    assert all(m["status"] == "WRITE" and m["trading_day"] == "2024-03-08" for m in manifest)
    assert {"rows", "path", "error", "duration_s"} <= set(manifest[0])
    finished = [c.form["symbols"] for c in seeded.calls("timeseries.get_range")]
    assert set(finished) == set(symbols)
    assert summary.concurrency == 4


def test_empty_result_is_empty_listed_and_writes_no_file(
    seeded: DatabentoTestServer, data_root: Path
) -> None:
    seeded.fail("timeseries.get_range", symbol="MSFT", empty=True)
    summary = run_backfill(
        load_settings(),
        [BackfillTask("AAPL", DAY), BackfillTask("MSFT", DAY)],
        BackfillOptions(interval_ms=1000),
    )
    assert statuses(summary.results) == ["WRITE", "EMPTY"]
    assert summary.zero_row_tasks == [{"symbol": "MSFT", "trading_day": "2024-03-08"}]
    assert not databento_snapshots_path(data_root / "level2", "MSFT", DAY).exists()
    assert not databento_trades_path(data_root / "level2", "MSFT", DAY).exists()


def test_persistent_500_is_error_after_retries_and_the_rest_completes(
    seeded: DatabentoTestServer,
) -> None:
    seeded.fail("timeseries.get_range", symbol="AAPL", status=503, times=99)
    summary = run_backfill(
        load_settings(),
        [BackfillTask("AAPL", DAY), BackfillTask("MSFT", DAY)],
        BackfillOptions(interval_ms=1000),
    )
    assert statuses(summary.results) == ["ERROR", "WRITE"]
    assert "HTTP 503" in (summary.results[0].error or "")
    assert (
        len([c for c in seeded.calls("timeseries.get_range") if c.form["symbols"] == "AAPL"]) == 3
    )
    assert summary.summary_line().startswith(
        "SUMMARY WRITE=1 SKIP=0 EMPTY=0 ERROR=1 total=2 concurrency=4"
    )


def test_401_is_error_with_a_clear_message(
    seeded: DatabentoTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABENTO_API_KEY", "revoked-key")
    summary = run_backfill(load_settings(), [BackfillTask("AAPL", DAY)], BackfillOptions())
    [result] = summary.results
    assert result.status is TaskStatus.ERROR
    assert "rejected the API key (HTTP 401)" in (result.error or "")
    assert "revoked-key" not in (result.error or "")


def test_rerun_skips_and_force_refetches(seeded: DatabentoTestServer) -> None:
    tasks = [BackfillTask("AAPL", DAY)]
    run_backfill(load_settings(), tasks, BackfillOptions(interval_ms=1000))
    again = run_backfill(load_settings(), tasks, BackfillOptions(interval_ms=1000))
    assert statuses(again.results) == ["SKIP"]
    assert again.results[0].rows == 7200
    assert len(seeded.calls("timeseries.get_range")) == 1
    forced = run_backfill(load_settings(), tasks, BackfillOptions(interval_ms=1000, force=True))
    assert statuses(forced.results) == ["WRITE"]
    assert len(seeded.calls("timeseries.get_range")) == 2


def test_disabled_backfill_is_unavail_and_calls_nothing(
    seeded: DatabentoTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABENTO_ENABLE_BACKFILL", "0")
    summary = run_backfill(load_settings(), [BackfillTask("AAPL", DAY)], BackfillOptions())
    assert statuses(summary.results) == ["UNAVAIL"]
    assert "DATABENTO_ENABLE_BACKFILL=1" in (summary.results[0].error or "")
    assert summary.summary_line().startswith("SUMMARY WRITE=0 SKIP=0 EMPTY=0 ERROR=1 total=1")
    assert summary.counts["UNAVAIL"] == 1
    assert seeded.calls() == []


def test_dataset_range_clamps_the_request_end_and_empties_days_beyond_it(
    seeded: DatabentoTestServer,
) -> None:
    seeded.dataset_range = {
        "start": "2018-05-01T00:00:00Z",
        "end": "2024-03-08T14:30:00Z",
    }  # 09:30 ET
    seed_day(seeded, "AAPL", date(2024, 3, 11))
    summary = run_backfill(
        load_settings(),
        [BackfillTask("AAPL", DAY), BackfillTask("AAPL", date(2024, 3, 11))],
        BackfillOptions(interval_ms=1000),
    )
    assert statuses(summary.results) == ["WRITE", "EMPTY"]
    [call] = seeded.calls("timeseries.get_range")
    assert call.form["end"] == "2024-03-08T14:30:00+00:00"
    assert summary.results[0].rows == 1800


def test_symbol_mapping_file_maps_local_to_vendor_symbols(
    seeded: DatabentoTestServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    mapping = tmp_path / "symbol_mapping.json"
    mapping.write_text(json.dumps({"APPLE": "AAPL"}))
    monkeypatch.setenv("SYMBOL_MAPPING_FILE", str(mapping))
    summary = run_backfill(
        load_settings(), [BackfillTask("APPLE", DAY)], BackfillOptions(interval_ms=1000)
    )
    assert statuses(summary.results) == ["WRITE"]
    assert [c.form["symbols"] for c in seeded.calls("timeseries.get_range")] == ["AAPL"]
    assert summary.results[0].path is not None
    assert "/APPLE/" in summary.results[0].path


def test_programmatic_api(
    seeded: DatabentoTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "t.csv"
    log.write_text("Date,Symbol\n2024-03-08 09:40,AAPL\n2024-03-08 10:00,MSFT\n2024-03-09,AMD\n")
    monkeypatch.setenv("WARRIOR_TRADES_FILE", str(log))
    tasks = find_warrior_tasks(since_days="2024-03-01", last=1)
    assert tasks == [
        {"symbol": "AAPL", "trading_day": "2024-03-08"},
        {"symbol": "MSFT", "trading_day": "2024-03-08"},
    ]
    one = backfill_l2("AAPL", "2024-03-08", interval_ms=1000)
    assert one["status"] == "written"
    assert one["rows"] == 7200
    assert backfill_l2("AAPL", DAY)["status"] == "skipped"
    seeded.fail("timeseries.get_range", symbol="MSFT", status=500, times=99)
    out = run_warrior_backfill(tasks, strict=True)
    assert out["counts"]["SKIP"] == 1
    assert out["counts"]["ERROR"] == 1
    assert [r["status"] for r in out["results"]] == ["skipped", "error"]
    assert out["exit_code"] == 1
    assert run_warrior_backfill(tasks[:1])["exit_code"] == 0


def test_requests_follow_dst_in_march_and_november(seeded: DatabentoTestServer) -> None:
    days = [date(2024, 3, 8), date(2024, 3, 11), date(2024, 11, 1), date(2024, 11, 4)]
    for day in days[1:]:
        seed_day(seeded, "AAPL", day)
    run_backfill(
        load_settings(), [BackfillTask("AAPL", d) for d in days], BackfillOptions(interval_ms=1000)
    )
    forms = sorted((c.form["start"], c.form["end"]) for c in seeded.calls("timeseries.get_range"))
    assert forms == [
        ("2024-03-08T13:55:00+00:00", "2024-03-08T16:00:00+00:00"),
        ("2024-03-11T12:55:00+00:00", "2024-03-11T15:00:00+00:00"),
        ("2024-11-01T12:55:00+00:00", "2024-11-01T15:00:00+00:00"),
        ("2024-11-04T13:55:00+00:00", "2024-11-04T16:00:00+00:00"),
    ]


def test_trading_window_and_early_close_clamp_the_request(
    seeded: DatabentoTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("L2_BACKFILL_WINDOW_ET", "08:00-14:00")
    monkeypatch.setenv("L2_TRADING_WINDOW_ET", "09:30-16:00")
    early_close = date(2024, 7, 3)  # the market closes at 13:00 ET
    seed_day(seeded, "AAPL", early_close)
    summary = run_backfill(
        load_settings(), [BackfillTask("AAPL", early_close)], BackfillOptions(interval_ms=1000)
    )
    [call] = seeded.calls("timeseries.get_range")
    assert (call.form["start"], call.form["end"]) == (
        "2024-07-03T13:25:00+00:00",
        "2024-07-03T17:00:00+00:00",
    )
    assert summary.results[0].rows == 12_600  # 09:30-13:00 ET at 1 s


def test_leftover_temp_files_from_a_killed_run_are_removed(
    seeded: DatabentoTestServer, data_root: Path
) -> None:
    final = databento_snapshots_path(data_root / "level2", "AAPL", DAY)
    final.parent.mkdir(parents=True)
    leftover = final.with_name(final.name + ".tmp")
    leftover.write_bytes(b"half a parquet file")
    summary = run_backfill(
        load_settings(), [BackfillTask("AAPL", DAY)], BackfillOptions(interval_ms=1000)
    )
    assert statuses(summary.results) == ["WRITE"]
    assert not leftover.exists()
    assert pq.read_table(final).num_rows == 7200
