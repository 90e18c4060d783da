"""`ibdesk data query|scan|export|migrate-excel` as a user runs them."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest
from jsonschema import Draft202012Validator

from ibdesk.store import layout
from ibdesk.store.bars import store_bars
from ibdesk.store.parquet import write_table_atomic
from ibdesk.store.readers import read_data
from tests.clirunner import invoke
from tests.store.factories import bars, trades, utc


def _fill(root: Path) -> None:
    store_bars(root, "1 min", bars("AAPL", utc(2024, 1, 2, 14, 30), 390))
    store_bars(root, "1 min", bars("MSFT", utc(2024, 1, 2, 14, 30), 10))
    write_table_atomic(
        trades("AAPL", utc(2024, 1, 2, 14, 30), 4, source="databento"),
        layout.databento_trades_path(root / "level2", "AAPL", date(2024, 1, 2)),
    )


def _output_schema(command: list[str]) -> Draft202012Validator:
    described = invoke([*command, "--describe"])
    assert described.exit_code == 0, described.stderr
    return Draft202012Validator(json.loads(described.stdout)["output_schema"])


def _excel(path: Path, rows: list[list[object]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def test_query_prints_a_table(data_root: Path) -> None:
    _fill(data_root)

    result = invoke(
        ["data", "query", "SELECT symbol, count(*) AS n FROM bars GROUP BY 1 ORDER BY 1"]
    )

    assert result.exit_code == 0, result.stderr
    assert "AAPL" in result.stdout
    assert "390" in result.stdout
    assert "MSFT" in result.stdout


def test_query_json_is_an_array_of_rows(data_root: Path) -> None:
    _fill(data_root)

    result = invoke(
        [
            "data",
            "query",
            "SELECT ts, symbol, bar_size FROM bars ORDER BY ts, symbol LIMIT 2",
            "--json",
        ]
    )

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"ts": "2024-01-02T14:30:00+00:00", "symbol": "AAPL", "bar_size": "1 min"},
        {"ts": "2024-01-02T14:30:00+00:00", "symbol": "MSFT", "bar_size": "1 min"},
    ]


def test_query_csv_has_a_header_and_every_row(data_root: Path) -> None:
    _fill(data_root)

    result = invoke(["data", "query", "SELECT price, side FROM trades ORDER BY ts", "--csv"])

    assert result.exit_code == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows == [["price", "side"], ["10", "S"], ["11", "B"], ["12", "S"], ["13", "B"]]


def test_query_table_is_capped_and_says_so(data_root: Path) -> None:
    _fill(data_root)

    result = invoke(["data", "query", "SELECT * FROM bars", "--max-rows", "5"])

    assert result.exit_code == 0
    assert "395 more rows not shown" in result.stderr


def test_bad_sql_exits_2_with_one_line(data_root: Path) -> None:
    result = invoke(["data", "query", "SELECT * FROM nowhere"])

    assert result.exit_code == 2
    assert result.stderr.startswith("ibdesk: error: bad SQL: Catalog Error")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_json_and_csv_together_exit_2() -> None:
    result = invoke(["data", "query", "SELECT 1", "--json", "--csv"])

    assert result.exit_code == 2
    assert "--json and --csv" in result.stderr


def test_scan_json_matches_its_described_schema(data_root: Path) -> None:
    _fill(data_root)

    result = invoke(["data", "scan", "--json"])

    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    _output_schema(["data", "scan"]).validate(report)
    assert report["symbols"] == ["AAPL", "MSFT"]
    msft = next(d for d in report["datasets"] if d["symbol"] == "MSFT")
    assert msft["gaps"]["missing_bars"] == 380
    assert msft["gaps"]["intraday"][0]["start"] == "2024-01-02T14:40:00Z"


def test_scan_table_and_problem_exit_1(data_root: Path) -> None:
    _fill(data_root)
    broken = data_root / "bars/AAPL/1_min/2024-01-03.parquet"
    broken.write_bytes(b"junk")

    result = invoke(["data", "scan", "--symbols", "AAPL,MSFT"])

    assert result.exit_code == 1
    assert "AAPL" in result.stdout
    assert "2024-01-03.parquet" in result.stderr


def test_export_writes_csv_under_ml_backup_path(data_root: Path, isolated_workdir: Path) -> None:
    _fill(data_root)

    result = invoke(["data", "export", "--kinds", "bars", "--symbols", "AAPL", "--json"])

    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    _output_schema(["data", "export"]).validate(report)
    target = isolated_workdir / "ml_backup/data/bars/AAPL/1_min/2024-01-02.csv"
    assert report["counts"] == {"written": 1, "skipped": 0, "failed": 0}
    assert len(target.read_text().splitlines()) == 391


def test_export_output_option_and_bad_dates(data_root: Path, tmp_path: Path) -> None:
    _fill(data_root)

    bad = invoke(["data", "export", "--start", "2024-13-01"])
    reversed_range = invoke(["data", "export", "--start", "2024-01-03", "--end", "2024-01-02"])
    good = invoke(["data", "export", "-o", str(tmp_path / "elsewhere")])

    assert bad.exit_code == 2
    assert "bad --start '2024-13-01'" in bad.stderr
    assert reversed_range.exit_code == 2
    assert good.exit_code == 0, good.stderr
    assert (tmp_path / "elsewhere/data/level2/AAPL/2024-01-02_trades_databento.csv").exists()


def test_export_bad_kind_exits_2() -> None:
    result = invoke(["data", "export", "--kinds", "candles"])

    assert result.exit_code == 2
    assert "bad --kinds value 'candles'" in result.stderr


def test_migrate_excel_end_to_end(data_root: Path, tmp_path: Path) -> None:
    rows: list[list[object]] = [
        ["Date", "Open", "High", "Low", "Close", "Volume", "WAP", "Count", "Memo"]
    ]
    rows += [
        [datetime(2024, 1, 2, 9, 30 + i), 10, 11, 9, 10.5, 100, 10.2, 5, "x"] for i in range(3)
    ]
    rows.append(["garbage", 10, 11, 9, 10.5, 100, 10.2, 5, "x"])
    path = _excel(tmp_path / "TSLA_bars.xlsx", rows)

    result = invoke(["data", "migrate-excel", str(path), "--json"])
    again = invoke(["data", "migrate-excel", str(path)])

    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    _output_schema(["data", "migrate-excel"]).validate(report)
    assert (report["rows_converted"], report["rows_skipped"]) == (3, 1)
    sheet = report["files"][0]["sheets"][0]
    assert sheet["unmapped_columns"] == ["Memo"]
    assert sheet["bad_row_examples"] == [{"row": 5, "reason": "bad date/time 'garbage'"}]
    assert again.exit_code == 0
    assert "skipped" in again.stderr
    assert "row 5" in again.stderr
    stored = read_data(data_root / "bars/TSLA/1_min/2024-01-02.parquet")
    assert stored.num_rows == 3


def test_migrate_excel_without_paths_reads_the_files_folder(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = tmp_path / "Files"
    files.mkdir()
    _excel(
        files / "TSLA.xlsx",
        [["Date", "Open", "High", "Low", "Close"], [datetime(2024, 1, 2, 9, 35), 1, 2, 0.5, 1]],
    )
    monkeypatch.setenv("FILES_PATH", str(files))

    result = invoke(["data", "migrate-excel", "--json"])

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["rows_converted"] == 1
    assert read_data(data_root / "bars/TSLA/1_min/2024-01-02.parquet").num_rows == 1


def test_migrate_excel_missing_path_exits_2_and_writes_nothing(
    data_root: Path, tmp_path: Path
) -> None:
    store_bars(data_root, "1 min", bars("TSLA", utc(2024, 1, 2, 14, 30), 3))
    before = {p: p.read_bytes() for p in data_root.rglob("*") if p.is_file()}
    good = _excel(
        tmp_path / "TSLA.xlsx",
        [["Date", "Open", "High", "Low", "Close"], [datetime(2024, 1, 2, 9, 35), 1, 2, 0.5, 1]],
    )

    result = invoke(["data", "migrate-excel", str(good), str(tmp_path / "missing.xlsx")])

    assert result.exit_code == 2
    assert "missing.xlsx" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert {p: p.read_bytes() for p in data_root.rglob("*") if p.is_file()} == before


def test_migrate_excel_bad_bar_size_exits_2(tmp_path: Path) -> None:
    good = _excel(tmp_path / "TSLA.xlsx", [["Date", "Open", "High", "Low", "Close"]])

    result = invoke(["data", "migrate-excel", str(good), "--bar-size", "7 mins"])

    assert result.exit_code == 2
    assert "invalid bar size '7 mins'" in result.stderr


def test_migrate_excel_unconvertible_file_exits_1_naming_it(
    data_root: Path, tmp_path: Path
) -> None:
    good = _excel(
        tmp_path / "TSLA.xlsx",
        [["Date", "Open", "High", "Low", "Close"], [datetime(2024, 1, 2, 9, 35), 1, 2, 0.5, 1]],
    )
    bad = _excel(tmp_path / "NVDA.xlsx", [["When", "Price"], [1, 2]])

    result = invoke(["data", "migrate-excel", str(good), str(bad)])

    assert result.exit_code == 1
    assert "not converted:" in result.stderr
    assert "NVDA.xlsx" in result.stderr
    assert (data_root / "bars/TSLA/1_min/2024-01-02.parquet").exists()


def test_data_group_describe_lists_its_commands() -> None:
    result = invoke(["data", "--describe"])

    assert result.exit_code == 0
    names = {entry["name"] for entry in json.loads(result.stdout)}
    assert {"data query", "data scan", "data export", "data migrate-excel"} <= names


def test_describe_needs_no_required_argument() -> None:
    for command in (["data", "query"], ["data", "migrate-excel"]):
        result = invoke([*command, "--describe"])
        assert result.exit_code == 0, command
        assert json.loads(result.stdout)["name"] == " ".join(command)
