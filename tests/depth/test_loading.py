"""Finding a symbol-day's files, choosing one source, and reading them in chunks."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ibdesk.depth import synthetic
from ibdesk.depth.analysis import snapshot_columns
from ibdesk.depth.loading import (
    SourceChoice,
    days_with_data,
    iter_snapshot_chunks,
    read_trades,
    select_day,
)
from ibdesk.errors import UserInputError
from ibdesk.store.layout import Source
from ibdesk.store.parquet import part_path, write_table_atomic
from tests.depth.helpers import DAY, with_metadata, without_metadata, write_day

SPEC = synthetic.SyntheticDay(symbol="AAPL", rows=300, levels=5, trades=40)


def test_auto_prefers_ibkr_over_databento_over_sim(tmp_path: Path) -> None:
    write_day(tmp_path, SPEC, "sim", "150000")
    write_day(tmp_path, SPEC, "databento", "databento")
    assert select_day(tmp_path, "AAPL", DAY).source is Source.DATABENTO
    write_day(tmp_path, SPEC, "ibkr", "143000")
    chosen = select_day(tmp_path, "AAPL", DAY)
    assert chosen.source is Source.IBKR
    assert chosen.sources == (Source.IBKR, Source.DATABENTO, Source.SIM)
    assert [f.path.name for f in chosen.snapshots] == ["2024-01-02_snapshots_143000.parquet"]
    assert [f.path.name for f in chosen.trades] == ["2024-01-02_trades_143000.parquet"]


def test_sources_are_never_concatenated(tmp_path: Path) -> None:
    write_day(tmp_path, SPEC, "sim", "150000")
    write_day(tmp_path, SPEC, "ibkr", "143000")
    chosen = select_day(tmp_path, "AAPL", DAY)
    rows = sum(chunk.height for chunk in iter_snapshot_chunks(chosen))
    assert rows == SPEC.rows
    trades = read_trades(chosen)
    assert trades is not None
    assert trades.height == SPEC.trades


def test_explicit_source_is_used_even_when_a_better_one_exists(tmp_path: Path) -> None:
    write_day(tmp_path, SPEC, "sim", "150000")
    write_day(tmp_path, SPEC, "ibkr", "143000")
    chosen = select_day(tmp_path, "AAPL", DAY, SourceChoice.SIM)
    assert chosen.source is Source.SIM
    assert [f.path.name for f in chosen.snapshots] == ["2024-01-02_snapshots_150000.parquet"]


def test_missing_requested_source_names_the_sources_found(tmp_path: Path) -> None:
    write_day(tmp_path, SPEC, "sim", "150000")
    with pytest.raises(UserInputError, match=r"no databento snapshots .* sources found: sim"):
        select_day(tmp_path, "AAPL", DAY, SourceChoice.DATABENTO)


def test_no_data_for_the_day_names_the_folder_and_the_days_that_exist(tmp_path: Path) -> None:
    write_day(tmp_path, SPEC, "sim", "150000")
    other = synthetic.SyntheticDay(symbol="AAPL", day=date(2024, 1, 5), rows=10, levels=2)
    write_day(tmp_path, other, "sim", "150000", with_trades=False)
    with pytest.raises(UserInputError) as caught:
        select_day(tmp_path, "AAPL", date(2024, 1, 3))
    message = caught.value.message
    assert str(tmp_path / "AAPL") in message
    assert "2024-01-02, 2024-01-05" in message


def test_missing_symbol_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        UserInputError, match=r"MSFT \(folder does not exist\); days with data: none"
    ):
        select_day(tmp_path, "MSFT", None)


def test_default_day_is_the_latest_with_snapshots(tmp_path: Path) -> None:
    write_day(tmp_path, SPEC, "sim", "150000")
    later = synthetic.SyntheticDay(symbol="AAPL", day=date(2024, 1, 5), rows=10, levels=2)
    write_day(tmp_path, later, "sim", "150000", with_trades=False)
    # a trades-only day does not count as a day with data
    write_table_atomic(
        synthetic.trades_table(SPEC, synthetic.snapshots_table(SPEC)),
        tmp_path / "AAPL" / "2024-01-09_trades_150000.parquet",
    )
    assert days_with_data(tmp_path / "AAPL") == [DAY, date(2024, 1, 5)]
    assert select_day(tmp_path, "AAPL", None).day == date(2024, 1, 5)


def test_source_falls_back_to_the_databento_suffix_without_metadata(tmp_path: Path) -> None:
    table = without_metadata(synthetic.snapshots_table(SPEC))
    folder = tmp_path / "AAPL"
    write_table_atomic(table, folder / "2024-01-02_snapshots_databento.parquet")
    write_table_atomic(table, folder / "2024-01-02_snapshots_093000.parquet")
    chosen = select_day(tmp_path, "AAPL", DAY, SourceChoice.DATABENTO)
    assert chosen.sources == (Source.IBKR, Source.DATABENTO)
    assert chosen.snapshots[0].path.name == "2024-01-02_snapshots_databento.parquet"
    assert chosen.interval_ms is None


def test_metadata_source_wins_over_the_file_name(tmp_path: Path) -> None:
    table = synthetic.snapshots_table(SPEC, "sim")
    write_table_atomic(table, tmp_path / "AAPL" / "2024-01-02_snapshots_093000.parquet")
    assert select_day(tmp_path, "AAPL", DAY).source is Source.SIM


def test_unknown_source_metadata_is_a_user_error_naming_the_file(tmp_path: Path) -> None:
    table = with_metadata(synthetic.snapshots_table(SPEC), source="polygon")
    path = write_table_atomic(table, tmp_path / "AAPL" / "2024-01-02_snapshots_093000.parquet")
    with pytest.raises(UserInputError, match="polygon") as caught:
        select_day(tmp_path, "AAPL", DAY)
    assert str(path) in caught.value.message


def test_part_files_are_read_with_their_final_file(tmp_path: Path) -> None:
    table = synthetic.snapshots_table(SPEC, "ibkr")
    final = tmp_path / "AAPL" / "2024-01-02_snapshots_143000.parquet"
    write_table_atomic(table.slice(0, 100), part_path(final, 1))
    write_table_atomic(table.slice(100, 150), part_path(final, 2))
    write_table_atomic(table.slice(250), part_path(final, 3))
    chosen = select_day(tmp_path, "AAPL", DAY)
    assert len(chosen.snapshots) == 1
    assert chosen.snapshots[0].path == final
    frames = list(iter_snapshot_chunks(chosen, chunk_rows=64))
    whole = pl.concat(frames)
    assert whole.height == SPEC.rows
    assert whole.get_column("bid_px_00").to_list() == table.column("bid_px_00").to_pylist()
    assert max(f.height for f in frames) <= 64


def test_two_sessions_of_one_source_are_both_read_in_order(tmp_path: Path) -> None:
    first = synthetic.snapshots_table(SPEC, "ibkr")
    second = synthetic.snapshots_table(
        synthetic.SyntheticDay(symbol="AAPL", rows=50, levels=5, seed=3), "ibkr"
    )
    folder = tmp_path / "AAPL"
    write_table_atomic(second, folder / "2024-01-02_snapshots_160000.parquet")
    write_table_atomic(first, folder / "2024-01-02_snapshots_143000.parquet")
    chosen = select_day(tmp_path, "AAPL", DAY)
    assert [f.path.stem.rsplit("_", 1)[1] for f in chosen.snapshots] == ["143000", "160000"]
    assert sum(c.height for c in iter_snapshot_chunks(chosen)) == 350


def test_levels_are_the_fewest_any_file_of_the_source_has(tmp_path: Path) -> None:
    write_day(tmp_path, SPEC, "ibkr", "143000")
    shallow = synthetic.SyntheticDay(symbol="AAPL", rows=10, levels=3)
    write_day(tmp_path, shallow, "ibkr", "160000", with_trades=False)
    chosen = select_day(tmp_path, "AAPL", DAY)
    assert chosen.levels == 3
    assert chosen.interval_ms == 50.0


def test_a_file_without_level_columns_is_a_user_error(tmp_path: Path) -> None:
    table = synthetic.snapshots_table(SPEC, "sim").select(["ts", "symbol"])
    write_table_atomic(table, tmp_path / "AAPL" / "2024-01-02_snapshots_150000.parquet")
    with pytest.raises(UserInputError, match="not an L2 snapshot file"):
        select_day(tmp_path, "AAPL", DAY)


def test_trades_of_another_source_are_not_used(tmp_path: Path) -> None:
    write_day(tmp_path, SPEC, "ibkr", "143000", with_trades=False)
    write_day(tmp_path, SPEC, "databento", "databento")
    chosen = select_day(tmp_path, "AAPL", DAY)
    assert chosen.source is Source.IBKR
    assert chosen.trades == ()
    assert read_trades(chosen) is None


def test_small_row_groups_are_merged_and_handed_out_in_chunks(tmp_path: Path) -> None:
    table = synthetic.snapshots_table(SPEC, "ibkr")
    path = tmp_path / "AAPL" / "2024-01-02_snapshots_143000.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(table, path, row_group_size=30)
    chosen = select_day(tmp_path, "AAPL", DAY)
    frames = list(iter_snapshot_chunks(chosen, chunk_rows=64))
    assert max(f.height for f in frames) <= 64
    whole = pl.concat(frames)
    assert whole.get_column("ask_sz_04").to_list() == table.column("ask_sz_04").to_pylist()
    assert whole.columns[0] == "ts"


def test_chunks_hold_only_the_analysed_columns_in_the_analysis_types(tmp_path: Path) -> None:
    spec = synthetic.SyntheticDay(symbol="AAPL", rows=300, levels=8, one_sided_share=0.2)
    _, table = write_day(tmp_path, spec, "ibkr", "143000", with_trades=False)
    chosen = select_day(tmp_path, "AAPL", DAY)
    frames = list(iter_snapshot_chunks(chosen, chunk_rows=128))
    whole = pl.concat(frames)
    assert whole.columns == snapshot_columns(8)
    assert whole.schema["ts"] == pl.Int64
    assert all(whole.schema[name] == pl.Float64 for name in whole.columns[1:])
    assert whole.get_column("ts").to_list() == table.column("ts").cast(pa.int64()).to_pylist()
    # missing levels stay null here: the analysis fills them (0 shares, no price)
    missing = table.column("ask_px_00").is_null().to_pylist()
    assert any(missing)
    for name in ("ask_sz_03", "ask_px_04"):
        assert whole.get_column(name).is_null().to_list() == missing
