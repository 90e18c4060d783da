"""IB error codes as a small taxonomy, with IB's code and text preserved.

Pure mapping, no I/O: the connection edge turns every ib_async error event into an
`IbError` and decides what to do from its `kind` and `recovery`, never from bare numbers
scattered through the code. Codes not listed fall back by IB's documented ranges.

Kinds:
- INFO: status only ("data farm connection is OK", 2104/2106/2158...).
- WARNING: something to log, no action needed by the caller.
- REQUEST_ERROR: one request failed (unknown symbol 200, pacing 162, depth cap 309...).
- CONNECTIVITY: the link to IB or a data farm broke or came back (502/504/1100/1101/1102,
  2103/2105/2157, 316/317, client id in use 326); subscriptions may need re-establishing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

NO_REQUEST_ID = -1


class IbErrorKind(StrEnum):
    INFO = "info"
    WARNING = "warning"
    REQUEST_ERROR = "request_error"
    CONNECTIVITY = "connectivity"


class IbRecovery(StrEnum):
    """What the IB layer should do about an error (the caller still decides)."""

    NONE = "none"
    RETRY_LATER = "retry_later"  # pacing (100, 162 pacing violation): wait, then retry
    RESUBSCRIBE = "resubscribe"  # subscriptions are dead: request them again
    RESET_BOOK = "reset_book"  # depth was reset (317): empty the book, keep subscribing
    RECONNECT = "reconnect"  # the socket or the gateway link is gone
    NEXT_CLIENT_ID = "next_client_id"  # 326: the client id is taken
    GIVE_UP = "give_up"  # the request cannot succeed as sent


@dataclass(frozen=True, slots=True)
class IbCodeInfo:
    kind: IbErrorKind
    recovery: IbRecovery
    summary: str


_I, _W, _R, _C = (
    IbErrorKind.INFO,
    IbErrorKind.WARNING,
    IbErrorKind.REQUEST_ERROR,
    IbErrorKind.CONNECTIVITY,
)

IB_ERROR_CODES: dict[int, IbCodeInfo] = {
    100: IbCodeInfo(_R, IbRecovery.RETRY_LATER, "max rate of messages per second exceeded"),
    101: IbCodeInfo(_R, IbRecovery.GIVE_UP, "max number of tickers reached"),
    102: IbCodeInfo(_R, IbRecovery.GIVE_UP, "duplicate ticker id"),
    103: IbCodeInfo(_R, IbRecovery.GIVE_UP, "duplicate order id"),
    162: IbCodeInfo(_R, IbRecovery.RETRY_LATER, "historical market data service error"),
    165: IbCodeInfo(_I, IbRecovery.NONE, "historical market data service query message"),
    200: IbCodeInfo(_R, IbRecovery.GIVE_UP, "no security definition found"),
    201: IbCodeInfo(_R, IbRecovery.GIVE_UP, "order rejected"),
    202: IbCodeInfo(_I, IbRecovery.NONE, "order cancelled"),
    300: IbCodeInfo(_R, IbRecovery.GIVE_UP, "cannot find ticker id"),
    309: IbCodeInfo(_R, IbRecovery.GIVE_UP, "max number of market depth requests reached"),
    310: IbCodeInfo(_R, IbRecovery.GIVE_UP, "cannot find the subscribed market depth"),
    316: IbCodeInfo(_C, IbRecovery.RESUBSCRIBE, "market depth data halted, re-subscribe"),
    317: IbCodeInfo(_C, IbRecovery.RESET_BOOK, "market depth data reset, empty the book"),
    321: IbCodeInfo(_R, IbRecovery.GIVE_UP, "error validating request"),
    322: IbCodeInfo(_R, IbRecovery.GIVE_UP, "error processing request"),
    326: IbCodeInfo(_C, IbRecovery.NEXT_CLIENT_ID, "client id already in use"),
    354: IbCodeInfo(_R, IbRecovery.GIVE_UP, "requested market data is not subscribed"),
    366: IbCodeInfo(_R, IbRecovery.GIVE_UP, "no historical data query found for ticker id"),
    502: IbCodeInfo(_C, IbRecovery.RECONNECT, "could not connect to TWS"),
    503: IbCodeInfo(_C, IbRecovery.GIVE_UP, "TWS is out of date and must be upgraded"),
    504: IbCodeInfo(_C, IbRecovery.RECONNECT, "not connected"),
    507: IbCodeInfo(_C, IbRecovery.RECONNECT, "bad message length"),
    1100: IbCodeInfo(_C, IbRecovery.NONE, "connectivity between IB and TWS lost"),
    1101: IbCodeInfo(_C, IbRecovery.RESUBSCRIBE, "connectivity restored, data lost"),
    1102: IbCodeInfo(_C, IbRecovery.NONE, "connectivity restored, data maintained"),
    1300: IbCodeInfo(_C, IbRecovery.RECONNECT, "socket port has been reset"),
    2100: IbCodeInfo(_W, IbRecovery.NONE, "account data subscription overridden"),
    2103: IbCodeInfo(_C, IbRecovery.NONE, "market data farm connection is broken"),
    2104: IbCodeInfo(_I, IbRecovery.NONE, "market data farm connection is OK"),
    2105: IbCodeInfo(_C, IbRecovery.NONE, "historical data farm connection is broken"),
    2106: IbCodeInfo(_I, IbRecovery.NONE, "historical data farm connection is OK"),
    2107: IbCodeInfo(_I, IbRecovery.NONE, "historical data farm inactive, available on demand"),
    2108: IbCodeInfo(_I, IbRecovery.NONE, "market data farm inactive, available on demand"),
    2110: IbCodeInfo(_C, IbRecovery.NONE, "connectivity between TWS and server is broken"),
    2119: IbCodeInfo(_I, IbRecovery.NONE, "market data farm is connecting"),
    2137: IbCodeInfo(_W, IbRecovery.NONE, "order cross-side warning"),
    2157: IbCodeInfo(_C, IbRecovery.NONE, "security definition data farm connection is broken"),
    2158: IbCodeInfo(_I, IbRecovery.NONE, "security definition data farm connection is OK"),
    10089: IbCodeInfo(_R, IbRecovery.GIVE_UP, "market data requires additional subscription"),
    10090: IbCodeInfo(_W, IbRecovery.NONE, "part of requested market data is not subscribed"),
    10167: IbCodeInfo(_W, IbRecovery.NONE, "displaying delayed market data"),
    10168: IbCodeInfo(_R, IbRecovery.GIVE_UP, "delayed market data is not enabled"),
    10182: IbCodeInfo(_C, IbRecovery.RESUBSCRIBE, "failed to request live updates, disconnected"),
    10197: IbCodeInfo(_W, IbRecovery.NONE, "no market data during competing live session"),
}

# Codes whose arrival means a farm or the gateway link broke; the matching "OK" code
# (2104 after 2103, 2106 after 2105, 2158 after 2157, 1101/1102 after 1100) ends the outage.
FARM_BROKEN_CODES = frozenset({2103, 2105, 2157})
FARM_OK_CODES = frozenset({2104, 2106, 2158})


def code_info(code: int) -> IbCodeInfo:
    """The taxonomy entry of `code`; unlisted codes fall back by IB's documented ranges.

    2100-2199 are warnings/notices, 1100-1399 and 500-599 concern the connection, and every
    other code (100-499, 10000+) is taken as a failed request.
    """
    known = IB_ERROR_CODES.get(code)
    if known is not None:
        return known
    if 2100 <= code <= 2199:
        return IbCodeInfo(IbErrorKind.WARNING, IbRecovery.NONE, "IB warning")
    if 1100 <= code <= 1399 or 500 <= code <= 599:
        return IbCodeInfo(IbErrorKind.CONNECTIVITY, IbRecovery.RECONNECT, "IB connectivity")
    return IbCodeInfo(IbErrorKind.REQUEST_ERROR, IbRecovery.GIVE_UP, "IB request error")


def classify(code: int) -> IbErrorKind:
    """The kind of IB error `code` (see the module docstring)."""
    return code_info(code).kind


@dataclass(frozen=True, slots=True)
class IbError:
    """One error event from IB: code and IB's own text kept verbatim, plus our kind.

    `req_id` is the request or ticker id IB named, `NO_REQUEST_ID` (-1) when global.
    """

    code: int
    message: str
    req_id: int = NO_REQUEST_ID
    kind: IbErrorKind = IbErrorKind.REQUEST_ERROR

    @classmethod
    def of(cls, code: int, message: str, req_id: int = NO_REQUEST_ID) -> IbError:
        """Build an `IbError` with its kind classified from `code`."""
        return cls(code=code, message=message, req_id=req_id, kind=classify(code))

    @property
    def recovery(self) -> IbRecovery:
        """What to do about it; a 162 that is not a pacing violation cannot be retried."""
        if self.code == 162 and not self.is_pacing_violation:
            return IbRecovery.GIVE_UP
        return code_info(self.code).recovery

    @property
    def is_pacing_violation(self) -> bool:
        """IB reuses 162 for "no data" and "query cancelled"; only the pacing text is pacing."""
        return self.code == 100 or (self.code == 162 and "pacing violation" in self.message.lower())

    @property
    def is_global(self) -> bool:
        return self.req_id == NO_REQUEST_ID

    def __str__(self) -> str:
        where = "" if self.is_global else f" (request {self.req_id})"
        return f"IB error {self.code}{where}: {self.message}"
