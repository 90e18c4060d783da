"""The vendor edge through the real databento SDK against the loopback server."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from ibdesk.backfill.databento import (
    DatabentoVendor,
    RetryPolicy,
    VendorError,
    VendorErrorKind,
    VendorUnavailableError,
    resolve_dataset,
    unavailable_reason,
)
from ibdesk.config import load_settings
from tests.backfill.dbserver import API_KEY, DatabentoTestServer, synthetic_book, to_ns

START = datetime(2024, 3, 8, 13, 55, tzinfo=UTC)
END = datetime(2024, 3, 8, 16, 0, tzinfo=UTC)


class SleepLog:
    """Records requested sleeps instead of sleeping (the wait itself is tenacity's job)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def vendor_for(
    server: DatabentoTestServer, sleep: SleepLog, retries: int = 3, key: str = API_KEY
) -> DatabentoVendor:
    policy = RetryPolicy(retries=retries, base_ms=100, max_ms=400)
    return DatabentoVendor(key, "XNAS.ITCH", "mbp-10", server.url, policy, sleep)


@pytest.fixture
def book_server(db_server: DatabentoTestServer) -> DatabentoTestServer:
    db_server.add_book("AAPL", synthetic_book(to_ns("2024-03-08T13:50:00Z"), 2_000, 2_000_000_000))
    return db_server


def test_get_range_over_http_loopback_sends_the_documented_form(
    book_server: DatabentoTestServer,
) -> None:
    result = vendor_for(book_server, SleepLog()).fetch("AAPL", START, END)
    [call] = book_server.calls()
    assert call.endpoint == "timeseries.get_range"
    assert call.auth_user == API_KEY
    assert {
        k: call.form[k]
        for k in ("dataset", "symbols", "schema", "stype_in", "encoding", "compression")
    } == {
        "dataset": "XNAS.ITCH",
        "symbols": "AAPL",
        "schema": "mbp-10",
        "stype_in": "raw_symbol",
        "encoding": "dbn",
        "compression": "zstd",
    }
    assert call.form["start"] == "2024-03-08T13:55:00+00:00"
    assert call.form["end"] == "2024-03-08T16:00:00+00:00"
    ts = result.records["ts_recv"].astype("int64")
    assert len(result.records) > 0
    assert ts.min() >= to_ns("2024-03-08T13:55:00Z")
    assert ts.max() < to_ns("2024-03-08T16:00:00Z")
    assert result.attempts == 1


def test_429_with_retry_after_is_honoured_then_succeeds(book_server: DatabentoTestServer) -> None:
    book_server.fail("timeseries.get_range", status=429, headers={"Retry-After": "1.5"}, times=1)
    sleep = SleepLog()
    result = vendor_for(book_server, sleep).fetch("AAPL", START, END)
    assert len(book_server.calls("timeseries.get_range")) == 2
    assert sleep.delays == [1.5]
    assert result.attempts == 2


def test_persistent_500_fails_after_the_configured_retries_with_backoff(
    book_server: DatabentoTestServer,
) -> None:
    book_server.fail("timeseries.get_range", status=500, times=99)
    sleep = SleepLog()
    with pytest.raises(VendorError) as caught:
        vendor_for(book_server, sleep, retries=3).fetch("AAPL", START, END)
    assert caught.value.kind is VendorErrorKind.SERVER
    assert "HTTP 500" in caught.value.message
    assert caught.value.attempts == 4
    assert len(book_server.calls("timeseries.get_range")) == 4
    assert len(sleep.delays) == 3
    ceilings = [0.1, 0.2, 0.4]
    assert all(c / 2 <= d <= c for d, c in zip(sleep.delays, ceilings, strict=True))


def test_401_is_not_retried_and_says_to_check_the_key(book_server: DatabentoTestServer) -> None:
    sleep = SleepLog()
    with pytest.raises(VendorError) as caught:
        vendor_for(book_server, sleep, key="wrong-key").fetch("AAPL", START, END)
    assert caught.value.kind is VendorErrorKind.AUTH
    assert "HTTP 401" in caught.value.message
    assert "DATABENTO_API_KEY" in caught.value.message
    assert len(book_server.calls()) == 1
    assert sleep.delays == []


def test_other_4xx_are_not_retried(book_server: DatabentoTestServer) -> None:
    book_server.fail("timeseries.get_range", status=422, detail="bad symbol", times=5)
    with pytest.raises(VendorError) as caught:
        vendor_for(book_server, SleepLog()).fetch("AAPL", START, END)
    assert caught.value.kind is VendorErrorKind.REJECTED
    assert "bad symbol" in caught.value.message
    assert len(book_server.calls()) == 1


def test_truncated_body_is_retried(book_server: DatabentoTestServer) -> None:
    book_server.fail("timeseries.get_range", truncated=True, times=1)
    result = vendor_for(book_server, SleepLog()).fetch("AAPL", START, END)
    assert len(result.records) > 0
    assert len(book_server.calls("timeseries.get_range")) == 2


def test_persistently_truncated_body_is_a_truncation_error(
    book_server: DatabentoTestServer,
) -> None:
    book_server.fail("timeseries.get_range", truncated=True, times=99)
    with pytest.raises(VendorError) as caught:
        vendor_for(book_server, SleepLog(), retries=1).fetch("AAPL", START, END)
    assert caught.value.kind is VendorErrorKind.TRUNCATED


def test_connection_refused_is_a_network_error() -> None:
    server = DatabentoTestServer().start()
    url = server.url
    server.stop()
    vendor = DatabentoVendor(API_KEY, "XNAS.ITCH", "mbp-10", url, RetryPolicy(1, 1, 2), SleepLog())
    with pytest.raises(VendorError) as caught:
        vendor.fetch("AAPL", START, END)
    assert caught.value.kind is VendorErrorKind.NETWORK


def test_cost_and_dataset_range(book_server: DatabentoTestServer) -> None:
    book_server.costs["AAPL"] = 1.25
    book_server.dataset_range = {
        "start": "2018-05-01T00:00:00.000000000Z",
        "end": "2024-03-08T15:00:00.123456789Z",
    }
    vendor = vendor_for(book_server, SleepLog())
    assert vendor.cost_usd("AAPL", START, END) == 1.25
    assert vendor.dataset_range()[1] == datetime(2024, 3, 8, 15, 0, 0, 123456, tzinfo=UTC)


def test_naive_times_are_refused(book_server: DatabentoTestServer) -> None:
    with pytest.raises(ValueError, match="tz-aware"):
        vendor_for(book_server, SleepLog()).fetch("AAPL", datetime(2024, 3, 8, 14), END)
    assert book_server.calls() == []


def test_unavailable_unless_enabled_and_keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "DATABENTO_ENABLE_BACKFILL=1" in (unavailable_reason(load_settings()) or "")
    monkeypatch.setenv("DATABENTO_ENABLE_BACKFILL", "1")
    assert "DATABENTO_API_KEY is empty" in (unavailable_reason(load_settings()) or "")
    with pytest.raises(VendorUnavailableError):
        DatabentoVendor.from_settings(load_settings())
    monkeypatch.setenv("DATABENTO_API_KEY", "k")
    assert unavailable_reason(load_settings()) is None


def test_nasdaq_itch_is_an_alias_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert resolve_dataset("NASDAQ.ITCH")[0] == "XNAS.ITCH"
    monkeypatch.setenv("DATABENTO_ENABLE_BACKFILL", "1")
    monkeypatch.setenv("DATABENTO_API_KEY", "k")
    monkeypatch.setenv("DATABENTO_DATASET", "NASDAQ.ITCH")
    with caplog.at_level(logging.WARNING):
        vendor = DatabentoVendor.from_settings(load_settings())
    assert vendor.dataset == "XNAS.ITCH"
    assert "alias" in caplog.text


def test_metadata_only_and_zero_byte_answers_are_no_records(
    book_server: DatabentoTestServer,
) -> None:
    book_server.fail("timeseries.get_range", empty=True)
    book_server.fail("timeseries.get_range", empty_body=True)
    vendor = vendor_for(book_server, SleepLog())
    assert len(vendor.fetch("AAPL", START, END).records) == 0
    assert len(vendor.fetch("AAPL", START, END).records) == 0
    assert len(book_server.calls("timeseries.get_range")) == 2
