"""`ibdesk analyze-depth` end to end: files on disk in, JSON report and figures out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from ibdesk.depth import synthetic
from ibdesk.depth.report import report_schema
from tests.clirunner import invoke
from tests.depth.helpers import write_day

SPEC = synthetic.SyntheticDay(symbol="AAPL", rows=2_500, levels=10, trades=200)


@pytest.fixture
def level2(data_root: Path) -> Path:
    """The default `--data-dir`: the data root's `level2` (./data/level2 in the test's cwd)."""
    return data_root / "level2"


@pytest.mark.parametrize("flag", ["--describe", "--show-describe"])
def test_describe_and_its_alias_print_the_report_schema(flag: str) -> None:
    result = invoke(["analyze-depth", flag])
    assert result.exit_code == 0, result.stderr
    descriptor = json.loads(result.stdout)
    assert descriptor["name"] == "analyze-depth"
    expected = {**report_schema(), "$schema": "https://json-schema.org/draft/2020-12/schema"}
    assert descriptor["output_schema"] == expected
    inputs = descriptor["input_schema"]["properties"]
    assert inputs["symbol"]["x-cli-flags"] == ["--symbol", "-s"]
    assert inputs["data_dir"]["x-cli-flags"] == ["--data-dir", "-d"]
    assert inputs["source"]["enum"] == ["auto", "ibkr", "databento", "sim"]
    assert inputs["window"]["default"] == "1s"
    assert descriptor["input_schema"]["required"] == ["symbol"]


def test_report_on_stdout_from_the_default_data_dir_and_latest_day(level2: Path) -> None:
    write_day(level2, SPEC, "ibkr", "143000")
    result = invoke(["analyze-depth", "-s", "AAPL"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    jsonschema.validate(report, report_schema())
    assert (report["date"], report["rows"], report["trades"]) == ("2024-01-02", 2_500, 200)
    assert "source=ibkr" in result.stderr


def test_output_file_and_plots_next_to_it(level2: Path, tmp_path: Path) -> None:
    write_day(level2, SPEC, "ibkr", "143000")
    out = tmp_path / "reports" / "aapl.json"
    result = invoke(
        ["analyze-depth", "-s", "AAPL", "--date", "2024-01-02", "-o", str(out), "--plot"]
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    report = json.loads(out.read_text())
    assert report["spread"]["mean"] > 0
    for name in ("mid_spread", "depth_heatmap", "ofi_scatter", "volume_profile"):
        png = out.with_name(f"aapl_{name}.png")
        assert png.stat().st_size > 0, png
        assert str(png) in result.stderr
    assert out.with_name("aapl.html").stat().st_size > 0


def test_auto_says_which_source_it_used_and_which_it_found(level2: Path) -> None:
    write_day(level2, SPEC, "sim", "150000")
    write_day(level2, SPEC, "databento", "databento")
    result = invoke(["analyze-depth", "-s", "AAPL"])
    assert result.exit_code == 0, result.stderr
    assert "source=databento (found: databento, sim)" in result.stderr
    report = json.loads(result.stdout)
    assert (report["source"], report["sources"]) == ("databento", ["databento", "sim"])
    assert report["rows"] == SPEC.rows  # not doubled by the sim file


def test_explicit_source_and_window(level2: Path) -> None:
    write_day(level2, SPEC, "sim", "150000")
    write_day(level2, SPEC, "ibkr", "143000")
    result = invoke(["analyze-depth", "-s", "AAPL", "--source", "sim", "--window", "500ms"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["source"] == "sim"
    assert report["window_ms"] == 500.0


def test_data_dir_option_and_lower_case_symbol(tmp_path: Path) -> None:
    elsewhere = tmp_path / "captures"
    write_day(elsewhere, SPEC, "ibkr", "143000")
    result = invoke(["analyze-depth", "-d", str(elsewhere), "-s", "aapl"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["symbol"] == "AAPL"


def test_no_data_exits_2_naming_the_folder_and_the_days_found(level2: Path) -> None:
    write_day(level2, SPEC, "ibkr", "143000")
    result = invoke(["analyze-depth", "-s", "AAPL", "--date", "2024-01-03"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert str(level2 / "AAPL") in result.stderr
    assert "days with data: 2024-01-02" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_symbol_exits_2_naming_the_folder(level2: Path) -> None:
    result = invoke(["analyze-depth", "-s", "MSFT"])
    assert result.exit_code == 2
    assert str(level2 / "MSFT") in result.stderr
    assert "days with data: none" in result.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--date", "2024-13-01"], "--date"),
        (["--window", "fast"], "--window"),
        (["--window", "0s"], "--window"),
        (["--tick", "0"], "--tick"),
        (["--source", "polygon"], "--source"),
    ],
)
def test_bad_options_exit_2_naming_the_option(level2: Path, args: list[str], needle: str) -> None:
    write_day(level2, SPEC, "ibkr", "143000")
    result = invoke(["analyze-depth", "-s", "AAPL", *args])
    assert result.exit_code == 2
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


def test_installed_entry_point_runs_the_command(level2: Path) -> None:
    write_day(level2, SPEC, "sim", "150000")
    done = subprocess.run(
        [sys.executable, "-m", "ibdesk", "analyze-depth", "-s", "AAPL", "--source", "sim"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["source"] == "sim"
