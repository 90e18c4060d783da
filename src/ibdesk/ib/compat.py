"""Every use ibdesk makes of ib_async's internals, in one checked place.

ibdesk relies on a few parts of ib_async that are not its public API: the socket reader
and its buffer (`ibdesk.ib.fastread` replaces the reader), the decoder's handler table
(`ibdesk.ib.rowfeed` takes over the depth and tick-by-tick handlers), the wrapper's
request registries (`ibdesk.ib.connection`, `ibdesk.ib.requests`) and the client's
request-id sequence and throttle queue (`ibdesk.ib.requests`). They are read and written
here and nowhere else; `tests/ib/test_compat.py` checks on a real ib_async that each one
exists and behaves as assumed, and a test keeps every other module off ib_async's
private attributes.

Importing this module checks the installed ib_async against the one version these
assumptions were verified for, so an upgrade fails at once with one line naming both
versions instead of deep inside the recorder. This module must not hold ibdesk logic: a
function here only reads or writes one internal and says which and why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import ib_async
from ib_async import Ticker
from ib_async.client import Client
from ib_async.decoder import Decoder
from ib_async.wrapper import Wrapper

from ibdesk.errors import UnsupportedDependencyError

SUPPORTED_IB_ASYNC_VERSION = "2.1.0"

Hook = Callable[[], None]
Handler = Callable[[list[str]], None]
SocketReader = Callable[[bytes], None]

# Keys of `Wrapper.ticker2ReqId` (a tick-by-tick request is filed under its tick type).
DEPTH_REQUEST_KEY = "mktDepth"
MARKET_DATA_REQUEST_KEY = "mktData"


def installed_ib_async_version() -> str:
    """The installed ib_async's version (`ib_async.__version__`, read from its metadata)."""
    return str(ib_async.__version__)


def check_ib_async_version(installed: str) -> None:
    """Raise UnsupportedDependencyError unless `installed` is the supported ib_async."""
    if installed != SUPPORTED_IB_ASYNC_VERSION:
        raise UnsupportedDependencyError(
            f"ib_async {installed} is installed but ibdesk supports only ib_async "
            f"{SUPPORTED_IB_ASYNC_VERSION} (it relies on that version's internals): "
            f"pip install 'ib-async=={SUPPORTED_IB_ASYNC_VERSION}'"
        )


check_ib_async_version(installed_ib_async_version())


# ---- the client's socket reader (ibdesk.ib.fastread) ------------------------------------------
def own_socket_reader(client: Client) -> SocketReader:
    """ib_async's reader, `Client._onSocketHasData`, bound to `client`.

    The fast reader hands the handshake to it (server version, next id, accounts), so that
    bookkeeping stays ib_async's own.
    """
    return client._onSocketHasData


def replace_socket_reader(client: Client, reader: SocketReader) -> None:
    """Route the socket's data to `reader` instead of `Client._onSocketHasData`.

    `Client.__init__` subscribes `_onSocketHasData` to its `Connection.hasData` event; the
    fast reader (offset-based, linear in the size of a read) takes its place.
    """
    client.conn.hasData -= client._onSocketHasData
    client.conn.hasData += reader


def unparsed_bytes(client: Client) -> bytes:
    """`Client._data`: the received bytes not decoded yet (an incomplete last message)."""
    return client._data


def set_unparsed_bytes(client: Client, data: bytes) -> None:
    """Set `Client._data`, which the reader keeps as the tail for the next read."""
    client._data = data


def count_bytes_received(client: Client, count: int) -> None:
    """Add to `Client._numBytesRecv` (in `IB.client.connectionStats()`), as the reader does."""
    client._numBytesRecv += count


def count_messages_received(client: Client, count: int) -> None:
    """Add to `Client._numMsgRecv` (in `connectionStats()`), as the reader does."""
    client._numMsgRecv += count


def client_logger(client: Client) -> logging.Logger:
    """`Client._logger` ("ib_async.client"), where the reader logs each message at DEBUG."""
    return client._logger


def tcp_data_hooks(client: Client) -> tuple[Hook | None, Hook | None]:
    """`Client._tcpDataArrived` and `_tcpDataProcessed`: called at the start and end of each
    socket read (ib_async's IB uses them to stamp tick times and emit pending tickers)."""
    return client._tcpDataArrived, client._tcpDataProcessed


def set_tcp_data_hooks(client: Client, arrived: Hook, processed: Hook) -> None:
    """Replace both read hooks; the connection stamps row receive times and hands rows out
    at the end of each read, then calls the hooks it replaced."""
    client._tcpDataArrived = arrived
    client._tcpDataProcessed = processed


# ---- the decoder's handler table (ibdesk.ib.rowfeed) -----------------------------------------
def decoder_handlers(decoder: Decoder) -> dict[int, Handler]:
    """`Decoder.handlers`: message id -> handler of the message's fields.

    `Decoder.interpret` looks a message's handler up here on every message, so replacing
    an entry routes that message id (the row feed takes msgs 12, 13 and 99).
    """
    return decoder.handlers


# ---- the wrapper's request registries (ibdesk.ib.connection, ibdesk.ib.requests) -------------
def ticker_request_id(wrapper: Wrapper, ticker: Ticker, key: str) -> int | None:
    """The request id of `ticker`'s subscription filed under `key` in `Wrapper.ticker2ReqId`.

    `key` is DEPTH_REQUEST_KEY, MARKET_DATA_REQUEST_KEY or a tick-by-tick tick type
    ("AllLast"). ib_async has no public lookup; the connection routes rows by this id and
    maps an error's request id to its subscription.
    """
    ids: dict[Any, int] = wrapper.ticker2ReqId.get(key, {})
    return ids.get(ticker)


def is_request_pending(wrapper: Wrapper, req_id: int) -> bool:
    """True while `req_id` has an open future in `Wrapper._futures`.

    On `timeout=` ib_async cancels a historical request and returns empty bars but leaves
    its future here: that is how a timed-out request is told from an empty answer.
    """
    return req_id in wrapper._futures


def forget_request(wrapper: Wrapper, req_id: int) -> None:
    """Drop `req_id` from `Wrapper._futures` and `_results` (ib_async leaves a timed-out
    request there, and would fill a stale result if its answer came later)."""
    wrapper._futures.pop(req_id, None)
    wrapper._results.pop(req_id, None)


# ---- the client's request ids and throttle (ibdesk.ib.requests) ------------------------------
def next_request_id(client: Client) -> int:
    """`Client._reqIdSeq`: the id the next request will take (`getReqId` returns it, then
    increments it), known before the request is sent so its errors can be matched."""
    return int(client._reqIdSeq)


def throttle_sent_times(client: Client) -> Sequence[float]:
    """`Client._timeQ`: loop times of messages sent in the current throttle window
    (ib_async sends at most `MaxRequests` per `RequestsInterval`)."""
    return client._timeQ


def throttle_queued(client: Client) -> int:
    """`len(Client._msgQ)`: messages held back by ib_async's throttle, not sent yet."""
    return len(client._msgQ)
