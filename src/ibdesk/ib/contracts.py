"""Contract factories and qualification with a cache (one contract-details call per contract).

Unknown symbols are reported by name (`UnknownContractError`) so a multi-symbol run can
finish the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ib_async import IB, Contract, Forex, Future, Index, Option, Stock

from ibdesk.errors import WorkFailedError

log = logging.getLogger(__name__)


class UnknownContractError(WorkFailedError):
    """IB has no security definition for the contract (error 200)."""


def stock(
    symbol: str, exchange: str = "SMART", currency: str = "USD", primary: str = ""
) -> Contract:
    return Stock(symbol.upper(), exchange, currency, primaryExchange=primary)


def etf(symbol: str, exchange: str = "SMART", currency: str = "USD") -> Contract:
    """ETFs trade as STK on IB."""
    return Stock(symbol.upper(), exchange, currency)


def index(symbol: str, exchange: str, currency: str = "USD") -> Contract:
    return Index(symbol.upper(), exchange, currency)


def future(symbol: str, expiry: str, exchange: str, currency: str = "USD") -> Contract:
    return Future(symbol.upper(), expiry, exchange, currency=currency)


def option(
    symbol: str,
    expiry: str,
    strike: float,
    right: str,
    exchange: str = "SMART",
    currency: str = "USD",
) -> Contract:
    return Option(symbol.upper(), expiry, strike, right.upper(), exchange, currency=currency)


def forex(pair: str) -> Contract:
    return Forex(pair.upper())


def _cache_key(contract: Contract) -> tuple[str, ...]:
    return (
        contract.secType,
        contract.symbol,
        contract.exchange,
        contract.currency,
        contract.lastTradeDateOrContractMonth,
        str(contract.strike),
        contract.right,
        contract.primaryExchange,
    )


@dataclass(slots=True)
class ContractCache:
    """Qualified contracts by what was asked, so repeated runs ask IB once per contract."""

    entries: dict[tuple[str, ...], Contract] = field(default_factory=dict)

    async def qualify(self, ib: IB, *contracts: Contract) -> list[Contract | UnknownContractError]:
        """Qualified copies in input order; an unknown contract yields its error, not a raise."""
        missing = [c for c in contracts if _cache_key(c) not in self.entries]
        if missing:
            results = await ib.qualifyContractsAsync(*missing)
            for asked, result in zip(missing, results, strict=True):
                if isinstance(result, Contract) and result.conId:
                    self.entries[_cache_key(asked)] = result
        out: list[Contract | UnknownContractError] = []
        for contract in contracts:
            found = self.entries.get(_cache_key(contract))
            if found is None:
                out.append(
                    UnknownContractError(f"unknown symbol {contract.symbol!r} ({contract.secType})")
                )
            else:
                out.append(found)
        return out
