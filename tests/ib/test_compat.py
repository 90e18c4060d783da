"""Every ib_async internal `ibdesk.ib.compat` relies on exists and behaves as it assumes.

Checked on real ib_async objects (and, where the internal is filled by a request, against
the sim), so an ib_async that moved or changed one of them fails here by name. The other
tests in this file keep the rest of ibdesk off ib_async's private attributes and check the
version guard.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import itertools
import logging
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ib_async
import pytest
from ib_async import IB, Stock, Ticker
from ib_async.client import Client
from ib_async.decoder import Decoder
from ib_async.wrapper import Wrapper

from ibdesk.errors import UnsupportedDependencyError
from ibdesk.ib import compat

ROOT = Path(__file__).resolve().parents[2]
_client_ids = itertools.count(900)


def _frame(*fields: str) -> bytes:
    body = "".join(f"{f}\0" for f in fields).encode()
    return struct.pack(">I", len(body)) + body


def _ready_client() -> Client:
    """A real client in the state after a handshake (server version, API ready)."""
    client = IB().client
    client._serverVersion = 178
    client.decoder.serverVersion = 178
    client._apiReady = True
    return client


@pytest.fixture
def ib(sim: Any) -> Iterator[IB]:
    client = IB()
    client.connect(sim.host, sim.port, clientId=next(_client_ids), timeout=10)
    try:
        yield client
    finally:
        client.disconnect()


def _wait(ib: IB, done: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "condition not reached in time"
        ib.waitOnUpdate(timeout=0.5)


def _aapl(ib: IB) -> Stock:
    contract = Stock("AAPL", "SMART", "USD")
    ib.qualifyContracts(contract)
    assert contract.conId
    return contract


# ---- the version guard --------------------------------------------------------------------
def test_the_installed_ib_async_is_the_supported_one() -> None:
    assert compat.installed_ib_async_version() == compat.SUPPORTED_IB_ASYNC_VERSION == "2.1.0"
    compat.check_ib_async_version(compat.installed_ib_async_version())


def test_another_ib_async_version_is_refused_naming_both_versions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ib_async, "__version__", "2.2.0")
    with pytest.raises(UnsupportedDependencyError) as raised:
        compat.check_ib_async_version(compat.installed_ib_async_version())
    message = raised.value.message
    assert "ib_async 2.2.0 is installed" in message
    assert "supports only ib_async 2.1.0" in message
    assert "\n" not in str(raised.value)
    assert raised.value.exit_code == 1


_PRETEND_2_2 = "import ib_async; ib_async.__version__ = '2.2.0'; "


def test_importing_compat_under_another_version_fails_at_import() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PRETEND_2_2 + "import ibdesk.ib.connection"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "UnsupportedDependencyError: ib_async 2.2.0 is installed" in done.stderr


def test_the_cli_reports_another_version_in_one_line_and_exits_1() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PRETEND_2_2 + "from ibdesk.cli.main import main; main()"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "ibdesk: error: ib_async 2.2.0 is installed but ibdesk supports only ib_async 2.1.0 "
        "(it relies on that version's internals): pip install 'ib-async==2.1.0'"
    ]


# ---- the socket reader and its buffer ------------------------------------------------------
def test_own_socket_reader_is_the_client_method_subscribed_to_the_socket() -> None:
    client = _ready_client()
    seen: list[list[str]] = []
    client.decoder.interpret = lambda fields: seen.append(list(fields))  # type: ignore[method-assign]
    reader = compat.own_socket_reader(client)
    assert list(inspect.signature(reader).parameters) == ["data"]
    assert reader == client._onSocketHasData
    client.conn.hasData.emit(_frame("12", "1", "7", "0"))  # what the socket does on a read
    assert seen == [["12", "1", "7", "0"]]


def test_replace_socket_reader_routes_socket_data_to_the_new_reader_only() -> None:
    client = _ready_client()
    seen_by_decoder: list[list[str]] = []
    client.decoder.interpret = lambda fields: seen_by_decoder.append(list(fields))  # type: ignore[method-assign]
    reads: list[bytes] = []
    compat.replace_socket_reader(client, reads.append)
    client.conn.hasData.emit(_frame("12", "1", "7", "0"))
    assert reads == [_frame("12", "1", "7", "0")]
    assert seen_by_decoder == []  # ib_async's own reader no longer sees the data


def test_the_readers_buffer_is_the_unparsed_tail() -> None:
    client = _ready_client()
    seen: list[list[str]] = []
    client.decoder.interpret = lambda fields: seen.append(list(fields))  # type: ignore[method-assign]
    frame = _frame("12", "1", "7", "0")
    reader = compat.own_socket_reader(client)
    reader(frame + frame[:6])
    assert compat.unparsed_bytes(client) == frame[:6]
    compat.set_unparsed_bytes(client, frame[:3])
    reader(frame[3:])  # ib_async continues from the buffer we set
    assert seen == [["12", "1", "7", "0"], ["12", "1", "7", "0"]]
    assert compat.unparsed_bytes(client) == b""


def test_counts_add_to_the_connection_stats() -> None:
    client = _ready_client()
    before = client.connectionStats()
    compat.count_bytes_received(client, 10)
    compat.count_messages_received(client, 3)
    after = client.connectionStats()
    assert after.numBytesRecv == before.numBytesRecv + 10
    assert after.numMsgRecv == before.numMsgRecv + 3


def test_a_reset_clears_the_buffer_and_the_ready_flag_the_fast_reader_watches() -> None:
    client = _ready_client()
    compat.set_unparsed_bytes(client, b"\0\0")
    client.reset()
    assert compat.unparsed_bytes(client) == b""
    assert not client.isReady()


def test_client_logger_is_ib_async_client_logger() -> None:
    logger = compat.client_logger(IB().client)
    assert isinstance(logger, logging.Logger)
    assert logger.name == "ib_async.client"


def test_read_hooks_run_around_each_read_and_can_be_replaced() -> None:
    client = _ready_client()
    arrived, processed = compat.tcp_data_hooks(client)
    assert callable(arrived)
    assert callable(processed)
    order: list[str] = []
    client.decoder.interpret = lambda fields: order.append("decode")  # type: ignore[method-assign]
    compat.set_tcp_data_hooks(
        client, lambda: order.append("arrived"), lambda: order.append("processed")
    )
    compat.own_socket_reader(client)(_frame("12", "1", "7", "0") * 2)
    assert order == ["arrived", "decode", "decode", "processed"]


# ---- the decoder's handler table -----------------------------------------------------------
def test_decoder_handlers_hold_the_depth_and_tick_by_tick_handlers() -> None:
    handlers = compat.decoder_handlers(IB().client.decoder)
    assert isinstance(handlers, dict)
    for msg in (12, 13, 99):
        assert callable(handlers[msg])
    assert list(inspect.signature(Decoder.interpret).parameters) == ["self", "fields"]


def test_a_swapped_handler_receives_its_message_from_the_socket_reader() -> None:
    client = _ready_client()
    got: list[list[str]] = []
    compat.decoder_handlers(client.decoder)[12] = got.append
    compat.own_socket_reader(client)(_frame("12", "1", "7", "0", "0", "1", "10.5", "100"))
    assert got == [["12", "1", "7", "0", "0", "1", "10.5", "100"]]


def test_swapped_handlers_get_the_request_ids_the_wrapper_files(ib: IB) -> None:
    contract = _aapl(ib)
    handlers = compat.decoder_handlers(ib.client.decoder)
    depth_ids: list[int] = []
    trade_ids: list[int] = []
    for msg in (12, 13):
        handlers[msg] = lambda fields: depth_ids.append(int(fields[2]))
    handlers[99] = lambda fields: trade_ids.append(int(fields[1]))
    depth = ib.reqMktDepth(contract, 5)
    trades = ib.reqTickByTickData(contract, "AllLast")
    depth_id = compat.ticker_request_id(ib.wrapper, depth, compat.DEPTH_REQUEST_KEY)
    trades_id = compat.ticker_request_id(ib.wrapper, trades, "AllLast")
    assert isinstance(depth_id, int)
    assert isinstance(trades_id, int)
    _wait(ib, lambda: bool(depth_ids) and bool(trade_ids))
    assert set(depth_ids) == {depth_id}
    assert set(trade_ids) == {trades_id}
    assert depth.domBids == depth.domAsks == []  # the swapped handlers took the messages


# ---- the wrapper's request registries ------------------------------------------------------
def test_ticker_request_id_finds_market_data_and_misses_unknown_tickers(ib: IB) -> None:
    ticker = ib.reqMktData(_aapl(ib))
    req_id = compat.ticker_request_id(ib.wrapper, ticker, compat.MARKET_DATA_REQUEST_KEY)
    assert req_id is not None
    assert ib.wrapper.reqId2Ticker[req_id] is ticker
    assert compat.ticker_request_id(ib.wrapper, ticker, compat.DEPTH_REQUEST_KEY) is None
    assert compat.ticker_request_id(ib.wrapper, Ticker(), compat.MARKET_DATA_REQUEST_KEY) is None


def test_a_timed_out_historical_request_stays_pending_until_forgotten(ib: IB) -> None:
    contract = _aapl(ib)
    req_id = compat.next_request_id(ib.client)
    bars = ib.run(
        ib.reqHistoricalDataAsync(contract, "", "1 D", "1 min", "TRADES", True, timeout=1e-6)
    )
    assert bars is not None
    assert list(bars) == []
    assert compat.is_request_pending(ib.wrapper, req_id)
    assert req_id in ib.wrapper._results
    compat.forget_request(ib.wrapper, req_id)
    assert not compat.is_request_pending(ib.wrapper, req_id)
    assert req_id not in ib.wrapper._results
    assert compat.next_request_id(ib.client) == req_id + 1


def test_an_answered_request_is_no_longer_pending(ib: IB) -> None:
    req_id = compat.next_request_id(ib.client)
    bars = ib.reqHistoricalData(_aapl(ib), "", "1 D", "1 min", "TRADES", True, timeout=10)
    assert len(bars) > 0
    assert not compat.is_request_pending(ib.wrapper, req_id)


def test_wrapper_registries_are_dicts_on_a_real_wrapper() -> None:
    wrapper = IB().wrapper
    assert isinstance(wrapper, Wrapper)
    assert isinstance(wrapper._futures, dict)
    assert isinstance(wrapper._results, dict)
    assert isinstance(wrapper.ticker2ReqId, dict)


# ---- request ids and the throttle ----------------------------------------------------------
def test_next_request_id_is_what_get_req_id_returns_next() -> None:
    client = _ready_client()
    client.updateReqId(41)
    assert compat.next_request_id(client) == 41
    assert client.getReqId() == 41
    assert compat.next_request_id(client) == 42


def test_throttle_holds_back_what_exceeds_max_requests() -> None:
    async def send_three() -> tuple[int, int]:
        client = _ready_client()
        client.MaxRequests = 2
        for _ in range(3):
            client.sendMsg("49\0")
        return len(compat.throttle_sent_times(client)), compat.throttle_queued(client)

    assert asyncio.run(send_three()) == (2, 1)
    assert Client.MaxRequests == 45
    assert Client.RequestsInterval == 1


# ---- the rest of ibdesk stays off ib_async's internals -------------------------------------
def _ib_async_private_names() -> set[str]:
    """Private attribute names of real ib_async objects (instances and their classes)."""
    ib = IB()
    objects: list[Any] = [ib, ib.client, ib.wrapper, ib.client.decoder, ib.client.conn]
    names: set[str] = set()
    for obj in objects:
        names |= {n for n in dir(obj) if n.startswith("_") and not n.startswith("__")}
        names |= {n for n in vars(obj) if n.startswith("_") and not n.startswith("__")}
    return names


# Public names for ib_async internals that compat owns too.
INTERNAL_PUBLIC_NAMES = {"ticker2ReqId", "reqId2Ticker", "hasData"}


def _violations(path: Path, private: set[str], root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        name: str | None = None
        if isinstance(node, ast.Attribute):
            owner = node.value
            is_self = isinstance(owner, ast.Name) and owner.id in ("self", "cls")
            decoder_table = node.attr == "handlers" and "decoder" in ast.unparse(owner)
            internal = node.attr in private and not is_self
            if internal or decoder_table or node.attr in INTERNAL_PUBLIC_NAMES:
                name = node.attr
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in private | INTERNAL_PUBLIC_NAMES
        ):
            name = str(node.args[1].value)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ib_async"):
            hidden = [a.name for a in node.names if a.name.startswith("_")]
            if hidden or any(part.startswith("_") for part in (node.module or "").split(".")):
                name = f"import {node.module}: {hidden}"
        if name is not None:
            found.append(f"{path.relative_to(root)}:{getattr(node, 'lineno', '?')}: {name}")
    return found


def test_only_compat_touches_ib_async_internals() -> None:
    private = _ib_async_private_names()
    assert {"_data", "_futures", "_reqIdSeq", "_onSocketHasData"} <= private
    compat_path = ROOT / "src" / "ibdesk" / "ib" / "compat.py"
    files = sorted((ROOT / "src").rglob("*.py")) + sorted((ROOT / "bench").rglob("*.py"))
    found = [v for f in files if f != compat_path for v in _violations(f, private)]
    assert found == []


def test_the_scan_catches_a_private_access(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from ib_async.util import _private\n"
        "def f(ib):\n"
        "    getattr(ib.client, '_data')\n"
        "    ib.client.decoder.handlers[12] = print\n"
        "    return ib.client._reqIdSeq, ib.wrapper.ticker2ReqId, self._data\n"
    )
    found = _violations(sample, _ib_async_private_names(), tmp_path)
    lines_names = sorted((int(v.split(":")[1]), v.split(": ", 1)[1]) for v in found)
    assert lines_names == [
        (1, "import ib_async.util: ['_private']"),
        (3, "_data"),
        (4, "handlers"),
        (5, "_reqIdSeq"),
        (5, "ticker2ReqId"),
    ]
