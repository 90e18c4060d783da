"""A loopback Databento historical API for tests and benchmarks.

Speaks the three endpoints ibdesk uses (`timeseries.get_range`, `metadata.get_cost`,
`metadata.get_dataset_range`) the way the real SDK expects: HTTP Basic auth with the key,
zstd-compressed DBN bodies built with databento-dbn. Faults are programmable (status with
headers such as Retry-After, empty result, truncated body, latency) and every request is
logged so tests can assert exactly which calls were made.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import databento_dbn as dbn
import numpy as np
import zstandard

MBP10_DTYPE = np.dtype(dbn.MBP10Msg._dtypes)
UNDEF_PRICE = (1 << 63) - 1
F_LAST = 128
API_KEY = "db-test-key-0123456789"


def empty_records(count: int) -> np.ndarray:
    """`count` MBP-10 records with header fields set and every level empty."""
    records = np.zeros(count, dtype=MBP10_DTYPE)
    records["length"] = MBP10_DTYPE.itemsize // 4
    records["rtype"] = 10
    records["publisher_id"] = 2
    records["action"] = b"A"
    records["side"] = b"N"
    for k in range(10):
        records[f"bid_px_{k:02d}"] = UNDEF_PRICE
        records[f"ask_px_{k:02d}"] = UNDEF_PRICE
    return records


def _sticky(
    rng: np.random.Generator, count: int, low: int, high: int, change_p: float
) -> np.ndarray:
    """Random values that change only at some events, as a level's size does in a real book."""
    fresh = rng.integers(low, high, count)
    changes = rng.random(count) < change_p
    changes[0] = True
    last_change = np.maximum.accumulate(np.where(changes, np.arange(count), 0))
    return fresh[last_change]


def synthetic_book(
    start_ns: int, count: int, step_ns: int, mid_usd: float = 10.0, seed: int = 1
) -> np.ndarray:
    """A plausible 10-level book, one event every `step_ns`, with trades and non-final records.

    Like a real book, each event changes little: the mid moves at about 5% of events and
    each level's size and order count at about 10% (so the data compresses like real DBN).
    """
    rng = np.random.default_rng(seed)
    records = empty_records(count)
    ts = start_ns + step_ns * np.arange(count, dtype=np.int64)
    records["ts_recv"] = ts.astype(np.uint64)
    records["ts_event"] = (ts - 1000).astype(np.uint64)
    records["sequence"] = np.arange(count, dtype=np.uint32)
    moves = rng.integers(-1, 2, count) * (rng.random(count) < 0.05)
    mid_ticks = np.round(mid_usd * 100) + np.cumsum(moves)
    for k in range(10):
        records[f"bid_px_{k:02d}"] = ((mid_ticks - 1 - k) * 10_000_000).astype(np.int64)
        records[f"ask_px_{k:02d}"] = ((mid_ticks + 1 + k) * 10_000_000).astype(np.int64)
        records[f"bid_sz_{k:02d}"] = _sticky(rng, count, 1, 50, 0.1) * 100
        records[f"ask_sz_{k:02d}"] = _sticky(rng, count, 1, 50, 0.1) * 100
        records[f"bid_ct_{k:02d}"] = _sticky(rng, count, 1, 9, 0.1)
        records[f"ask_ct_{k:02d}"] = _sticky(rng, count, 1, 9, 0.1)
    actions = rng.choice(np.array([b"A", b"C", b"M", b"T"]), count, p=[0.45, 0.35, 0.1, 0.1])
    records["action"] = actions
    records["side"] = rng.choice(np.array([b"A", b"B"]), count)
    records["price"] = records["bid_px_00"]
    records["size"] = rng.integers(1, 10, count) * 100
    final = rng.random(count) < 0.8
    records["flags"] = np.where(final, F_LAST, 0).astype(np.uint8)
    return records


def to_ns(text: str) -> int:
    """An ISO-8601 time (or integer ns) from the form, as UTC nanoseconds."""
    if text.lstrip("-").isdigit():
        return int(text)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


@dataclass
class Fault:
    """What to do instead of answering normally, `times` times (for matching requests)."""

    endpoint: str
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    detail: str = "injected fault"
    empty: bool = False
    empty_body: bool = False
    truncated: bool = False
    latency_s: float = 0.0
    times: int = 1
    symbol: str | None = None


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    endpoint: str
    form: dict[str, str]
    auth_user: str | None
    at_s: float


@dataclass(frozen=True)
class _SymbolMapping:
    raw_symbol: str
    intervals: list[Any]


@dataclass(frozen=True)
class _Interval:
    start_date: dt.date
    end_date: dt.date
    symbol: str


class DatabentoTestServer:
    """The loopback server; `url` is what DATABENTO_GATEWAY is set to."""

    def __init__(self, api_key: str = API_KEY, dataset: str = "XNAS.ITCH") -> None:
        self.api_key = api_key
        self.dataset = dataset
        self.books: dict[str, np.ndarray] = {}
        self.costs: dict[str, float] = {}
        self.dataset_range = {
            "start": "2018-05-01T00:00:00.000000000Z",
            "end": "2099-01-01T00:00:00.000000000Z",
        }
        self.latency_s = 0.0
        self.body_cache: dict[tuple[str, int, int, bool], bytes] | None = None
        self.faults: list[Fault] = []
        self.requests: list[LoggedRequest] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=lambda: self._httpd.serve_forever(poll_interval=0.05),
            name="db-test-server",
            daemon=True,
        )

    # --- control ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> DatabentoTestServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def add_book(self, symbol: str, records: np.ndarray) -> None:
        """Records for `symbol` (sorted by ts_recv here); get_range filters them by time."""
        order = np.argsort(records["ts_recv"], kind="stable")
        with self._lock:
            existing = self.books.get(symbol)
            merged = (
                records[order] if existing is None else np.concatenate([existing, records[order]])
            )
            self.books[symbol] = merged[np.argsort(merged["ts_recv"], kind="stable")]

    def fail(self, endpoint: str, **kwargs: Any) -> Fault:
        fault = Fault(endpoint, **kwargs)
        with self._lock:
            self.faults.append(fault)
        return fault

    def calls(self, endpoint: str | None = None) -> list[LoggedRequest]:
        with self._lock:
            return [r for r in self.requests if endpoint is None or r.endpoint == endpoint]

    # --- behaviour -------------------------------------------------------------------------
    def _take_fault(self, endpoint: str, symbol: str | None) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if (
                    fault.endpoint == endpoint
                    and fault.times > 0
                    and fault.symbol in (None, symbol)
                ):
                    fault.times -= 1
                    return fault
        return None

    def _log(self, method: str, endpoint: str, form: dict[str, str], user: str | None) -> None:
        with self._lock:
            self.requests.append(LoggedRequest(method, endpoint, form, user, time.monotonic()))

    def dbn_body(self, symbol: str, start_ns: int, end_ns: int, *, empty: bool = False) -> bytes:
        """The zstd DBN answer; memoised when `body_cache` is a dict (benchmarks: the real
        vendor's encoding work is not on the client's CPU)."""
        key = (symbol, start_ns, end_ns, empty)
        if self.body_cache is not None and key in self.body_cache:
            return self.body_cache[key]
        body = self._encode(symbol, start_ns, end_ns, empty=empty)
        if self.body_cache is not None:
            self.body_cache[key] = body
        return body

    def _encode(self, symbol: str, start_ns: int, end_ns: int, *, empty: bool) -> bytes:
        records = self.books.get(symbol)
        if records is None or empty:
            chosen = np.zeros(0, dtype=MBP10_DTYPE)
        else:
            ts = records["ts_recv"].astype(np.int64)
            lo, hi = np.searchsorted(ts, [start_ns, end_ns], side="left")
            chosen = records[lo:hi].copy()
        instrument_id = 1000 + sorted(self.books).index(symbol) if symbol in self.books else 999
        chosen["instrument_id"] = instrument_id
        day = datetime.fromtimestamp(start_ns / 1e9, tz=UTC).date()
        fields: dict[str, Any] = {
            "dataset": self.dataset,
            "start": start_ns,
            "end": end_ns,
            "stype_in": dbn.SType.RAW_SYMBOL,
            "stype_out": dbn.SType.INSTRUMENT_ID,
            "schema": dbn.Schema.MBP_10,
            "symbols": [symbol],
            "mappings": [
                _SymbolMapping(
                    symbol, [_Interval(day, day + dt.timedelta(days=1), str(instrument_id))]
                )
            ],
        }
        metadata = dbn.Metadata(**fields)
        return zstandard.ZstdCompressor(level=1).compress(bytes(metadata) + chosen.tobytes())

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _user(self) -> str | None:
                header = self.headers.get("Authorization", "")
                if not header.startswith("Basic "):
                    return None
                decoded = base64.b64decode(header[6:]).decode()
                return decoded.partition(":")[0]

            def _send(
                self,
                status: int,
                body: bytes,
                headers: dict[str, str] | None = None,
                content_type: str = "application/json",
                declared_length: int | None = None,
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header(
                    "Content-Length",
                    str(declared_length if declared_length is not None else len(body)),
                )
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                if declared_length is not None:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                if declared_length is not None:
                    self.close_connection = True

            def _json(
                self, status: int, payload: Any, headers: dict[str, str] | None = None
            ) -> None:
                self._send(status, json.dumps(payload).encode(), headers)

            def _handle(self, method: str) -> None:
                parts = urlsplit(self.path)
                endpoint = parts.path.rsplit("/", 1)[-1]
                form: dict[str, str] = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if method == "POST":
                    length = int(self.headers.get("Content-Length", "0"))
                    raw = self.rfile.read(length).decode()
                    form.update({k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()})
                user = self._user()
                server._log(method, endpoint, form, user)
                symbol = form.get("symbols")
                fault = server._take_fault(endpoint, symbol)
                delay = server.latency_s + (fault.latency_s if fault else 0.0)
                if delay > 0:
                    time.sleep(delay)
                if user != server.api_key:
                    self._json(401, {"detail": "Authentication failed: invalid API key."})
                    return
                if fault is not None and fault.status is not None:
                    self._json(fault.status, {"detail": fault.detail}, fault.headers)
                    return
                if endpoint == "metadata.get_dataset_range":
                    self._json(200, server.dataset_range)
                elif endpoint == "metadata.get_cost":
                    self._json(200, server.costs.get(symbol or "", 0.0))
                elif endpoint == "timeseries.get_range":
                    start_ns, end_ns = to_ns(form["start"]), to_ns(form["end"])
                    if start_ns >= end_ns:
                        self._json(422, {"detail": "start must be before end"})
                        return
                    body = server.dbn_body(
                        symbol or "", start_ns, end_ns, empty=bool(fault and fault.empty)
                    )
                    if fault is not None and fault.empty_body:
                        self._send(200, b"", content_type="application/octet-stream")
                        return
                    if fault is not None and fault.truncated:
                        self._send(
                            200,
                            body[: len(body) // 2],
                            content_type="application/octet-stream",
                            declared_length=len(body),
                        )
                        return
                    self._send(200, body, content_type="application/octet-stream")
                else:
                    self._json(404, {"detail": f"unknown endpoint {endpoint}"})

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        return Handler


def seed_day(
    server: DatabentoTestServer, symbol: str, day: dt.date, step_s: float = 2.0, seed: int = 1
) -> None:
    """A book for `symbol` from 08:30 to 11:30 ET (UTC-5/-4 handled by zoneinfo) on `day`."""
    from zoneinfo import ZoneInfo

    start = datetime.combine(day, dt.time(8, 30), tzinfo=ZoneInfo("America/New_York"))
    start_ns = to_ns(start.astimezone(UTC).isoformat())
    count = int(3 * 3600 / step_s)
    server.add_book(symbol, synthetic_book(start_ns, count, int(step_s * 1e9), seed=seed))


@contextmanager
def running_server() -> Iterator[DatabentoTestServer]:
    server = DatabentoTestServer().start()
    try:
        yield server
    finally:
        server.stop()


def backfill_env(server: DatabentoTestServer) -> dict[str, str]:
    """Env that enables backfill against `server`, with fast retries and no mapping file."""
    return {
        "DATABENTO_ENABLE_BACKFILL": "1",
        "DATABENTO_API_KEY": API_KEY,
        "DATABENTO_GATEWAY": server.url,
        "L2_TASK_BACKOFF_BASE_MS": "1",
        "L2_TASK_BACKOFF_MAX_MS": "4",
        "RETRY_ATTEMPTS": "2",
        "SYMBOL_MAPPING_FILE": "config/none.json",
    }
