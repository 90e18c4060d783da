"""`data scan`: inventory and bar gaps against the XNYS calendar."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ibdesk.calendar import xnys
from ibdesk.store import layout
from ibdesk.store.bars import store_bars
from ibdesk.store.inventory import (
    NS_PER_S,
    expected_bar_starts,
    find_gaps,
    missing_bar_ranges,
    scan,
)
from ibdesk.store.parquet import part_path, write_table_atomic
from ibdesk.store.readers import DataKind
from tests.store.factories import bars, snapshots, trades, utc

MIN_NS = 60 * NS_PER_S
EST_NS = 5 * 3600 * NS_PER_S


def _ns(moment: object) -> int:
    return int(pa.scalar(moment, pa.timestamp("ns", tz="UTC")).value)


def _full_day(symbol: str, day: tuple[int, int, int], minutes: int = 390) -> pa.Table:
    return bars(symbol, utc(*day, 14, 30), minutes)


def test_a_regular_session_expects_390_one_minute_bars() -> None:
    (session,) = xnys().sessions_between(date(2024, 1, 2), date(2024, 1, 2))

    starts = expected_bar_starts(session, MIN_NS, EST_NS)

    assert len(starts) == 390
    assert starts[0] == _ns(utc(2024, 1, 2, 14, 30))
    assert starts[-1] == _ns(utc(2024, 1, 2, 20, 59))


def test_an_early_close_expects_fewer_bars() -> None:
    (session,) = xnys().sessions_between(date(2024, 11, 29), date(2024, 11, 29))

    assert len(expected_bar_starts(session, MIN_NS, EST_NS)) == 210  # 09:30-13:00


def test_hour_bars_are_clock_aligned_after_the_open() -> None:
    session = xnys().session_on(date(2024, 1, 2))
    assert session is not None
    assert (session.open_ns, session.close_ns) == (
        _ns(utc(2024, 1, 2, 14, 30)),
        _ns(utc(2024, 1, 2, 21)),
    )

    starts = expected_bar_starts(session, 60 * MIN_NS, EST_NS)

    hours_et = [(int(s) - EST_NS) // (60 * MIN_NS) % 24 for s in starts]
    assert hours_et == [9, 10, 11, 12, 13, 14, 15]
    assert starts[0] == session.open_ns


def test_gaps_are_runs_of_missing_starts() -> None:
    expected = np.arange(0, 10, dtype=np.int64) * MIN_NS
    present = np.delete(expected, [2, 3, 4, 9])

    gaps = find_gaps(date(2024, 1, 2), present, expected, close_ns=10 * MIN_NS)

    assert [(g.start_ns // MIN_NS, g.end_ns // MIN_NS, g.missing_bars) for g in gaps] == [
        (2, 5, 3),
        (9, 10, 1),
    ]


@given(st.sets(st.integers(0, 59)))
def test_missing_bars_in_gaps_equal_the_absent_starts(absent: set[int]) -> None:
    expected = np.arange(60, dtype=np.int64) * MIN_NS
    present = np.array([m * MIN_NS for m in range(60) if m not in absent], dtype=np.int64)

    gaps = find_gaps(date(2024, 1, 2), present, expected, close_ns=60 * MIN_NS)

    assert sum(g.missing_bars for g in gaps) == len(absent)
    assert all(g.start_ns < g.end_ns for g in gaps)


def test_scan_counts_rows_bytes_days_and_sources(data_root: Path) -> None:
    store_bars(data_root, "1 min", _full_day("AAPL", (2024, 1, 2)))
    store_bars(data_root, "1 min", _full_day("AAPL", (2024, 1, 3)))
    level2 = data_root / "level2"
    day = date(2024, 1, 2)
    write_table_atomic(
        trades("AAPL", utc(2024, 1, 2, 14, 30), 7, source="databento"),
        layout.databento_trades_path(level2, "AAPL", day),
    )
    final = layout.capture_path(level2, "AAPL", day, "snapshots", utc(2024, 1, 2, 9, 30))
    write_table_atomic(snapshots("AAPL", utc(2024, 1, 2, 14, 30), 5), part_path(final, 0))
    write_table_atomic(snapshots("AAPL", utc(2024, 1, 2, 14, 31), 6), part_path(final, 1))
    (final.parent / (final.name + ".tmp")).write_bytes(b"crash leftover")

    inventory = scan(data_root)

    by_kind = {d.kind: d for d in inventory.datasets}
    assert set(by_kind) == {DataKind.BARS, DataKind.TRADES, DataKind.L2_SNAPSHOTS}
    assert by_kind[DataKind.BARS].rows == 780
    assert by_kind[DataKind.BARS].days == (date(2024, 1, 2), date(2024, 1, 3))
    bar_gaps = by_kind[DataKind.BARS].gaps
    assert bar_gaps is not None
    assert bar_gaps.intraday == ()
    assert by_kind[DataKind.TRADES].sources == ("databento",)
    assert (by_kind[DataKind.L2_SNAPSHOTS].files, by_kind[DataKind.L2_SNAPSHOTS].rows) == (1, 11)
    assert by_kind[DataKind.L2_SNAPSHOTS].sources == ("sim",)
    expected_bytes = sum(p.stat().st_size for p in data_root.rglob("*.parquet"))
    assert inventory.to_json()["totals"] == {"files": 4, "rows": 798, "bytes": expected_bytes}
    assert inventory.problems == ()


def test_scan_finds_missing_sessions_but_not_weekends_or_holidays(data_root: Path) -> None:
    store_bars(data_root, "1 min", _full_day("AAPL", (2024, 1, 12)))  # Friday
    store_bars(data_root, "1 min", _full_day("AAPL", (2024, 1, 17)))  # Wednesday; 15th is MLK day

    (dataset,) = scan(data_root).datasets

    assert dataset.gaps is not None
    assert dataset.gaps.missing_days == (date(2024, 1, 16),)


def test_scan_finds_intraday_gaps_in_regular_hours_only(data_root: Path) -> None:
    day = _full_day("AAPL", (2024, 1, 2))
    keep = [i for i in range(390) if not 30 <= i < 35]  # 10:00-10:05 ET missing
    pre_market = bars("AAPL", utc(2024, 1, 2, 13, 0), 30)  # 08:00-08:30 ET, never expected
    store_bars(data_root, "1 min", pa.concat_tables([pre_market, day.take(keep)]))

    (dataset,) = scan(data_root).datasets

    assert dataset.gaps is not None
    (gap,) = dataset.gaps.intraday
    assert gap.to_json() == {
        "day": "2024-01-02",
        "start": "2024-01-02T15:00:00Z",
        "end": "2024-01-02T15:05:00Z",
        "missing_bars": 5,
    }


def test_daily_bars_report_missing_days_only(data_root: Path) -> None:
    for day in (2, 3, 5):
        store_bars(data_root, "1 day", bars("AAPL", utc(2024, 1, day, 5), 1))

    (dataset,) = scan(data_root).datasets

    assert dataset.gaps is not None
    assert dataset.gaps.missing_days == (date(2024, 1, 4),)
    assert dataset.gaps.intraday == ()


def test_unreadable_file_is_reported_and_the_rest_scanned(data_root: Path) -> None:
    store_bars(data_root, "1 min", _full_day("AAPL", (2024, 1, 2)))
    broken = data_root / "bars/AAPL/1_min/2024-01-03.parquet"
    broken.write_bytes(b"not parquet")

    inventory = scan(data_root)

    assert [p.path for p in inventory.problems] == [broken]
    assert "unreadable Parquet" in inventory.problems[0].message
    assert inventory.datasets[0].rows == 390


def test_scan_filters_symbols(data_root: Path) -> None:
    store_bars(data_root, "1 min", bars("AAPL", utc(2024, 1, 2, 14, 30), 2))
    store_bars(data_root, "1 min", bars("MSFT", utc(2024, 1, 2, 14, 30), 2))

    assert [d.symbol for d in scan(data_root, ["msft"]).datasets] == ["MSFT"]


@pytest.mark.parametrize("with_gaps", [False])
def test_gaps_can_be_skipped(data_root: Path, with_gaps: bool) -> None:
    store_bars(data_root, "1 min", bars("AAPL", utc(2024, 1, 2, 14, 30), 2))

    (dataset,) = scan(data_root, with_gaps=with_gaps).datasets

    assert dataset.gaps is None


def test_missing_ranges_cover_absent_days_and_intraday_holes(data_root: Path) -> None:
    day = _full_day("AAPL", (2024, 1, 2))
    store_bars(data_root, "1 min", day.take([i for i in range(390) if i != 100]))

    gaps = missing_bar_ranges(data_root, "AAPL", "1 min", date(2024, 1, 2), date(2024, 1, 3))

    assert [(g.day, g.missing_bars) for g in gaps] == [
        (date(2024, 1, 2), 1),
        (date(2024, 1, 3), 390),
    ]
    assert gaps[0].start_ns == _ns(utc(2024, 1, 2, 16, 10))
    assert gaps[1].start_ns == _ns(utc(2024, 1, 3, 14, 30))


def test_missing_ranges_of_daily_bars_are_whole_sessions(data_root: Path) -> None:
    store_bars(data_root, "1 day", bars("AAPL", utc(2024, 1, 2, 5), 1))

    gaps = missing_bar_ranges(data_root, "AAPL", "1 day", date(2024, 1, 1), date(2024, 1, 5))

    assert [g.day for g in gaps] == [date(2024, 1, 3), date(2024, 1, 4), date(2024, 1, 5)]
