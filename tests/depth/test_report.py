"""The JSON report: schema, strict JSON, key paths, and the same shape for every source."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ibdesk.depth import synthetic
from ibdesk.depth.loading import SourceChoice
from ibdesk.depth.report import analyze_day, report_schema, to_json, write_report
from ibdesk.depth.results import AnalysisParams
from tests.depth.helpers import DAY, NS, write_day

SPEC = synthetic.SyntheticDay(
    symbol="AAPL", rows=3_000, levels=10, trades=300, one_sided_share=0.02
)


def key_paths(value: Any, prefix: str = "") -> set[str]:
    """Every key path of a JSON value; list items are merged under `[]`."""
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            paths.add(path)
            paths |= key_paths(item, path)
    elif isinstance(value, list):
        for item in value:
            paths |= key_paths(item, f"{prefix}[]")
    return paths


def test_report_validates_against_its_schema_and_is_strict_json(tmp_path: Path) -> None:
    write_day(tmp_path, SPEC, "ibkr", "143000")
    report = analyze_day(tmp_path, "AAPL", DAY).report
    jsonschema.Draft202012Validator.check_schema(report_schema())
    jsonschema.validate(report, report_schema())
    text = to_json(report)
    assert "NaN" not in text
    assert "Infinity" not in text
    assert json.loads(text) == report


def test_key_paths_scripts_rely_on(tmp_path: Path) -> None:
    write_day(tmp_path, SPEC, "ibkr", "143000")
    report = analyze_day(tmp_path, "AAPL", DAY).report
    assert report["rows"] == SPEC.rows
    assert report["trades"] == SPEC.trades
    assert (report["symbol"], report["date"], report["source"]) == ("AAPL", "2024-01-02", "ibkr")
    assert report["interval_ms"] == 50.0
    assert report["levels"] == 10
    assert 0.01 <= report["spread"]["mean"] <= 0.03
    assert isinstance(report["ofi"]["total"], float)
    assert isinstance(report["ofi"]["beta"], float)
    assert report["ofi_multilevel"]["levels"] == 5
    assert isinstance(report["volume_profile"]["vpoc"], float)
    assert isinstance(report["price_impact"]["kyle_lambda"], float)
    assert report["volume_profile"]["total_volume"] > 0
    assert len(report["dynamics"]["minutes"]) == len(report["dynamics"]["spread_mean"]) == 3


def test_undefined_metrics_are_null_not_nan(tmp_path: Path) -> None:
    tiny = synthetic.SyntheticDay(symbol="AAPL", rows=2, levels=1, trades=0, one_sided_share=1.0)
    write_day(tmp_path, tiny, "sim", "150000", with_trades=False)
    report = analyze_day(tmp_path, "AAPL", DAY).report
    assert report["rows"] == 2
    assert report["spread"]["mean"] is None
    assert report["ofi"]["beta"] is None
    assert report["volume_profile"]["vpoc"] is None
    assert report["price_impact"]["effective_spread_bps"] is None
    jsonschema.validate(report, report_schema())
    to_json(report)


def test_same_day_from_sim_databento_and_ibkr_gives_the_same_keys(tmp_path: Path) -> None:
    # IBKR records 20 levels, Databento MBP-10 10, the simulator 10.
    write_day(
        tmp_path, synthetic.SyntheticDay(symbol="AAPL", rows=2_000, levels=20), "ibkr", "143000"
    )
    write_day(
        tmp_path,
        synthetic.SyntheticDay(symbol="AAPL", rows=2_000, levels=10),
        "databento",
        "databento",
    )
    write_day(
        tmp_path, synthetic.SyntheticDay(symbol="AAPL", rows=2_000, levels=10), "sim", "150000"
    )
    reports = {
        choice: analyze_day(tmp_path, "AAPL", DAY, choice).report
        for choice in (SourceChoice.IBKR, SourceChoice.DATABENTO, SourceChoice.SIM)
    }
    shapes = {choice: key_paths(report) for choice, report in reports.items()}
    assert shapes[SourceChoice.IBKR] == shapes[SourceChoice.DATABENTO] == shapes[SourceChoice.SIM]
    assert {r["source"] for r in reports.values()} == {"ibkr", "databento", "sim"}
    assert all(r["sources"] == ["ibkr", "databento", "sim"] for r in reports.values())
    assert all(r["rows"] == 2_000 for r in reports.values())
    # same generated book: the level-0 metrics agree whatever the source
    assert reports[SourceChoice.IBKR]["ofi"]["total"] == reports[SourceChoice.SIM]["ofi"]["total"]
    assert reports[SourceChoice.IBKR]["spread"] == reports[SourceChoice.DATABENTO]["spread"]


def test_window_option_is_reported(tmp_path: Path) -> None:
    write_day(tmp_path, SPEC, "ibkr", "143000")
    report = analyze_day(tmp_path, "AAPL", DAY, params=AnalysisParams(window_ns=5 * NS)).report
    assert report["window_ms"] == 5000.0
    assert report["ofi"]["n_windows"] <= SPEC.rows * 50 / 5000


def test_chunk_size_does_not_change_the_report(tmp_path: Path) -> None:
    write_day(tmp_path, SPEC, "ibkr", "143000")
    small = analyze_day(tmp_path, "AAPL", DAY, chunk_rows=97).report
    large = analyze_day(tmp_path, "AAPL", DAY).report
    for section in ("spread", "ofi", "depth", "ofi_multilevel", "price_impact", "dynamics"):
        assert _close(small[section], large[section]), section


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def test_write_report_is_atomic_and_readable(tmp_path: Path) -> None:
    write_day(tmp_path, SPEC, "ibkr", "143000")
    report = analyze_day(tmp_path, "AAPL", DAY).report
    path = write_report(report, tmp_path / "out" / "report.json")
    assert json.loads(path.read_text()) == report
    assert not list(path.parent.glob("*.tmp"))


@pytest.mark.parametrize(
    "section", ["spread", "depth", "ofi", "microprice", "volume_profile", "price_impact"]
)
def test_every_metric_section_is_in_the_schema(section: str) -> None:
    assert section in report_schema()["required"]
