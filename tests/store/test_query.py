"""DuckDB views over the data root."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from ibdesk.errors import UserInputError, WorkFailedError
from ibdesk.store import layout
from ibdesk.store.bars import store_bars
from ibdesk.store.parquet import compact_parts, part_path, write_table_atomic
from ibdesk.store.query import VIEW_NAMES, run_query
from tests.store.factories import bars, signals, snapshots, trades, utc, write_foreign


def test_bars_view_takes_symbol_and_bar_size_from_the_folders(data_root: Path) -> None:
    store_bars(data_root, "1 min", bars("AAPL", utc(2024, 1, 2, 14, 30), 3))
    store_bars(data_root, "5 mins", bars("AAPL", utc(2024, 1, 2, 14, 30), 2, step_s=300))
    foreign = bars("ZZZ", utc(2024, 1, 2, 14, 30), 4).drop_columns(["symbol"])
    write_foreign(foreign, data_root / "bars/MSFT/1_min/2024-01-02.parquet")

    result = run_query(
        data_root,
        "SELECT symbol, bar_size, count(*) AS n FROM bars GROUP BY ALL ORDER BY ALL",
    )

    assert result.to_pylist() == [
        {"symbol": "AAPL", "bar_size": "1 min", "n": 3},
        {"symbol": "AAPL", "bar_size": "5 mins", "n": 2},
        {"symbol": "MSFT", "bar_size": "1 min", "n": 4},
    ]


def test_bars_view_keeps_the_contract_columns_and_utc_times(data_root: Path) -> None:
    store_bars(data_root, "1 min", bars("AAPL", utc(2024, 1, 2, 14, 30), 2))

    result = run_query(data_root, "SELECT * FROM bars ORDER BY ts")

    assert result.column_names == [
        "ts",
        "symbol",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "wap",
        "bar_count",
        "bar_size",
    ]
    assert result.column("ts").to_pylist() == [utc(2024, 1, 2, 14, 30), utc(2024, 1, 2, 14, 31)]


def test_level2_views_read_parts_once_and_ignore_tmp(data_root: Path) -> None:
    level2 = data_root / "level2"
    final = layout.capture_path(
        level2, "AAPL", utc(2024, 1, 2).date(), "snapshots", utc(2024, 1, 2, 9, 30)
    )
    for n in range(3):
        write_table_atomic(snapshots("AAPL", utc(2024, 1, 2, 14, 30 + n), 5), part_path(final, n))
    kept = [part_path(final, n).read_bytes() for n in range(3)]
    compact_parts(final)
    for n, content in enumerate(kept):  # crash between compaction and deleting the parts
        part_path(final, n).write_bytes(content)
    write_table_atomic(snapshots("AAPL", utc(2024, 1, 2, 15), 2), part_path(final, 3))
    final.with_name(final.name + ".tmp").write_bytes(b"half written")
    backfill = layout.databento_snapshots_path(level2, "AAPL", utc(2024, 1, 3).date())
    write_table_atomic(snapshots("AAPL", utc(2024, 1, 3, 14, 30), 4, levels=3), backfill)

    result = run_query(data_root, "SELECT count(*) AS n, max(bid_px_02) AS p FROM l2_snapshots")

    assert result.to_pylist() == [{"n": 3 * 5 + 2 + 4, "p": pytest.approx(99.97)}]


def test_trades_and_signals_views(data_root: Path) -> None:
    level2 = data_root / "level2"
    day = utc(2024, 1, 2).date()
    write_table_atomic(
        trades("AAPL", utc(2024, 1, 2, 14, 30), 6),
        layout.databento_trades_path(level2, "AAPL", day),
    )
    write_table_atomic(
        signals("AAPL", utc(2024, 1, 2, 14, 30), 2), layout.signals_path(data_root, "AAPL", day)
    )

    sides = run_query(
        data_root, "SELECT side, count(*) AS n FROM trades GROUP BY side ORDER BY side"
    )
    sigs = run_query(data_root, "SELECT count(*) AS n FROM signals")

    assert sides.to_pylist() == [{"side": "B", "n": 3}, {"side": "S", "n": 3}]
    assert sigs.to_pylist() == [{"n": 2}]


def test_every_view_exists_on_an_empty_data_root(data_root: Path) -> None:
    for view in VIEW_NAMES:
        assert run_query(data_root, f"SELECT count(*) AS n FROM {view}").to_pylist() == [{"n": 0}]
    assert "bar_size" in run_query(data_root, "SELECT * FROM bars").column_names


def test_files_table_lists_logical_files(data_root: Path) -> None:
    store_bars(data_root, "1 min", bars("AAPL", utc(2024, 1, 2, 14, 30), 2))

    result = run_query(data_root, "SELECT kind, symbol, day, bar_size FROM files")

    assert result.to_pylist() == [
        {"kind": "bars", "symbol": "AAPL", "day": utc(2024, 1, 2).date(), "bar_size": "1 min"}
    ]


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELEC 1", "bad SQL: Parser Error"),
        ("SELECT * FROM nope", "bad SQL: Catalog Error"),
        ("SELECT nope FROM bars", "bad SQL: Binder Error"),
        ("   ", "empty SQL query"),
    ],
)
def test_bad_sql_is_a_one_line_user_error(data_root: Path, sql: str, message: str) -> None:
    with pytest.raises(UserInputError) as error:
        run_query(data_root, sql)

    assert error.value.message.startswith(message)
    assert "\n" not in error.value.message


def test_queries_do_not_modify_the_data(data_root: Path) -> None:
    store_bars(data_root, "1 min", bars("AAPL", utc(2024, 1, 2, 14, 30), 2))
    before = {p: p.read_bytes() for p in data_root.rglob("*") if p.is_file()}

    run_query(data_root, "SELECT * FROM bars")
    run_query(data_root, "CREATE TABLE t AS SELECT * FROM bars")

    assert {p: p.read_bytes() for p in data_root.rglob("*") if p.is_file()} == before


def test_a_path_with_a_quote_is_escaped(data_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "it's data"
    store_bars(root, "1 min", bars("AAPL", utc(2024, 1, 2, 14, 30), 2))

    assert run_query(root, "SELECT count(*) AS n FROM bars").to_pylist() == [{"n": 2}]


def test_result_is_arrow(data_root: Path) -> None:
    assert isinstance(run_query(data_root, "SELECT 1 AS one"), pa.Table)


def test_an_unreadable_file_fails_the_query_naming_it(data_root: Path) -> None:
    store_bars(data_root, "1 min", bars("AAPL", utc(2024, 1, 2, 14, 30), 2))
    broken = data_root / "bars/AAPL/1_min/2024-01-03.parquet"
    broken.write_bytes(b"junk")

    with pytest.raises(WorkFailedError) as error:
        run_query(data_root, "SELECT count(*) FROM bars")

    assert "2024-01-03.parquet" in error.value.message
    assert error.value.exit_code == 1
