"""TWS API wire format: framing, the version handshake, message ids and field encoding.

Pure: no sockets. Every message is a 4-byte big-endian length and `\\0`-terminated UTF-8
fields. The server speaks version 178, negotiated as min(client max, 178).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from enum import IntEnum

SERVER_VERSION = 178
API_PREFIX = b"API\x00"
_LENGTH = struct.Struct(">I")
_VERSION_RE = re.compile(r"^v(\d+)(?:\.\.(\d+))?(?:\s+(.*))?$")
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class In(IntEnum):
    """Message ids a client sends (the ones the sim understands)."""

    REQ_MKT_DATA = 1
    CANCEL_MKT_DATA = 2
    PLACE_ORDER = 3
    CANCEL_ORDER = 4
    REQ_OPEN_ORDERS = 5
    REQ_ACCT_DATA = 6
    REQ_EXECUTIONS = 7
    REQ_IDS = 8
    REQ_CONTRACT_DATA = 9
    REQ_MKT_DEPTH = 10
    CANCEL_MKT_DEPTH = 11
    REQ_AUTO_OPEN_ORDERS = 15
    REQ_ALL_OPEN_ORDERS = 16
    REQ_MANAGED_ACCTS = 17
    REQ_HISTORICAL_DATA = 20
    REQ_SCANNER_SUBSCRIPTION = 22
    CANCEL_SCANNER_SUBSCRIPTION = 23
    REQ_SCANNER_PARAMETERS = 24
    CANCEL_HISTORICAL_DATA = 25
    REQ_CURRENT_TIME = 49
    REQ_GLOBAL_CANCEL = 58
    REQ_MARKET_DATA_TYPE = 59
    REQ_POSITIONS = 61
    REQ_ACCOUNT_SUMMARY = 62
    CANCEL_ACCOUNT_SUMMARY = 63
    CANCEL_POSITIONS = 64
    START_API = 71
    REQ_ACCOUNT_UPDATES_MULTI = 76
    CANCEL_ACCOUNT_UPDATES_MULTI = 77
    REQ_HEAD_TIMESTAMP = 87
    REQ_TICK_BY_TICK = 97
    CANCEL_TICK_BY_TICK = 98
    REQ_COMPLETED_ORDERS = 99


class Out(IntEnum):
    """Message ids the sim sends."""

    TICK_PRICE = 1
    TICK_SIZE = 2
    ORDER_STATUS = 3
    ERROR = 4
    OPEN_ORDER = 5
    ACCT_VALUE = 6
    PORTFOLIO_VALUE = 7
    ACCT_UPDATE_TIME = 8
    NEXT_VALID_ID = 9
    CONTRACT_DATA = 10
    EXECUTION_DATA = 11
    MARKET_DEPTH = 12
    MARKET_DEPTH_L2 = 13
    MANAGED_ACCTS = 15
    HISTORICAL_DATA = 17
    SCANNER_PARAMETERS = 19
    SCANNER_DATA = 20
    TICK_STRING = 46
    CURRENT_TIME = 49
    CONTRACT_DATA_END = 52
    OPEN_ORDER_END = 53
    ACCT_DOWNLOAD_END = 54
    EXECUTION_DATA_END = 55
    TICK_SNAPSHOT_END = 57
    MARKET_DATA_TYPE = 58
    COMMISSION_REPORT = 59
    POSITION_DATA = 61
    POSITION_END = 62
    ACCOUNT_SUMMARY = 63
    ACCOUNT_SUMMARY_END = 64
    ACCOUNT_UPDATE_MULTI = 73
    ACCOUNT_UPDATE_MULTI_END = 74
    TICK_REQ_PARAMS = 81
    HEAD_TIMESTAMP = 88
    HISTORICAL_DATA_UPDATE = 90
    TICK_BY_TICK = 99
    COMPLETED_ORDERS_END = 102


class HandshakeError(ValueError):
    """The client's version offer cannot be served; the connection is closed."""


@dataclass(frozen=True, slots=True)
class VersionOffer:
    """What a client offered in its handshake: `v{min}..{max} [options]`."""

    min_version: int
    max_version: int
    options: str


def parse_version_offer(text: str) -> VersionOffer:
    """Parse `v157..178` / `v100..226 +PACEAPI` / `v178`; reject malformed offers."""
    match = _VERSION_RE.match(text.strip())
    if match is None:
        raise HandshakeError(f"malformed version offer {text!r}")
    low = int(match.group(1))
    high = int(match.group(2)) if match.group(2) else low
    if low > high:
        raise HandshakeError(f"empty version range {text!r}")
    return VersionOffer(low, high, match.group(3) or "")


def negotiate(offer: VersionOffer, server_version: int = SERVER_VERSION) -> int:
    """min(client max, server version); a client whose minimum is above ours is refused."""
    if offer.min_version > server_version:
        raise HandshakeError(
            f"client requires version >= {offer.min_version}, server speaks {server_version}"
        )
    return min(offer.max_version, server_version)


def field(value: object) -> str:
    """One field as IB writes it: bools as 1/0, None as empty, floats without noise."""
    if value is None:
        return ""
    if value is True:
        return "1"
    if value is False:
        return "0"
    if isinstance(value, float):
        return format_price(value)
    return str(value)


def format_price(value: float) -> str:
    """A float as the shortest text that round-trips (`12.34`, `100.0`, `-1`)."""
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value)}.0" if value >= 0 else str(int(value))
    return repr(round(value, 8))


def encode(*fields: object) -> bytes:
    """One framed message from its fields."""
    body = "".join(field(f) + "\0" for f in fields).encode()
    return _LENGTH.pack(len(body)) + body


def frame(body: bytes) -> bytes:
    """Frame an already joined body (`f1\\0f2\\0`)."""
    return _LENGTH.pack(len(body)) + body


class FrameReader:
    """Splits a byte stream into messages (lists of str fields); handles partial reads."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed_raw(self, data: bytes) -> None:
        """Buffer bytes without parsing (before the unframed `API\\0` prefix is consumed)."""
        self._buffer += data

    def feed(self, data: bytes) -> list[list[str]]:
        self._buffer += data
        messages: list[list[str]] = []
        buffer = self._buffer
        offset = 0
        while len(buffer) - offset >= 4:
            (size,) = _LENGTH.unpack_from(buffer, offset)
            if size > MAX_MESSAGE_BYTES:
                raise HandshakeError(f"message of {size} bytes exceeds the limit")
            end = offset + 4 + size
            if len(buffer) < end:
                break
            text = bytes(buffer[offset + 4 : end]).decode(errors="replace")
            fields = text.split("\0")
            if fields and fields[-1] == "":
                fields.pop()
            messages.append(fields)
            offset = end
        if offset:
            del buffer[:offset]
        return messages

    def take_prefix(self, prefix: bytes) -> bool | None:
        """Consume `prefix` if present: True consumed, False wrong bytes, None need more."""
        if len(self._buffer) < len(prefix):
            return None if prefix.startswith(bytes(self._buffer)) else False
        if bytes(self._buffer[: len(prefix)]) != prefix:
            return False
        del self._buffer[: len(prefix)]
        return True


class FieldReader:
    """Reads a request's fields in order, with typed accessors that tolerate empty values."""

    __slots__ = ("_fields", "_index")

    def __init__(self, fields: list[str], start: int = 1) -> None:
        self._fields = fields
        self._index = start

    def str(self) -> str:
        if self._index >= len(self._fields):
            self._index += 1
            return ""
        value = self._fields[self._index]
        self._index += 1
        return value

    def int(self, default: int = 0) -> int:
        text = self.str()
        try:
            return int(float(text)) if text else default
        except ValueError:
            return default

    def float(self, default: float = 0.0) -> float:
        text = self.str()
        try:
            return float(text) if text else default
        except ValueError:
            return default

    def bool(self) -> bool:
        text = self.str()
        return text not in ("", "0", "false", "False")

    def skip(self, count: int = 1) -> None:
        self._index += count

    @property
    def remaining(self) -> list[str]:
        return self._fields[self._index :]
