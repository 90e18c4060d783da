"""Blocking facade over the async IB layer, for scripts and notebooks that are not async.

Runs its own event loop on a background thread so calls work from plain code (and from a
notebook that already has a loop). Everything goes through the same `IBConnection`,
`ContractCache` and paced `HistoricalClient` as the async API.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import pyarrow as pa
from ib_async import Contract

from ibdesk.config import Settings
from ibdesk.ib.connection import ConnectionConfig, IBConnection
from ibdesk.ib.contracts import ContractCache, UnknownContractError
from ibdesk.ib.requests import BarsRequest, HistoricalClient

T = TypeVar("T")


class BlockingIB:
    """`with BlockingIB(settings, port=4002) as ib: ib.fetch_bars(ib.qualify(stock("AAPL")))`."""

    def __init__(
        self, settings: Settings, *, port: int | None = None, timeout_s: float = 120.0
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="ibdesk-ib", daemon=True
        )
        self._thread.start()
        self._timeout_s = timeout_s
        config = ConnectionConfig.from_settings(settings, port=port, readonly=True)
        self.connection: IBConnection = self._call(self._make(config))
        self._cache = ContractCache()
        self._client = HistoricalClient(self.connection.ib)

    async def _make(self, config: ConnectionConfig) -> IBConnection:
        return IBConnection(config)

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self._timeout_s)

    def connect(self) -> BlockingIB:
        self._call(self.connection.connect())
        return self

    def qualify(self, contract: Contract) -> Contract:
        """The qualified contract; raises `UnknownContractError` naming the symbol."""
        [result] = self._call(self._cache.qualify(self.connection.ib, contract))
        if isinstance(result, UnknownContractError):
            raise result
        return result

    def fetch_bars(
        self,
        contract: Contract,
        duration: str = "1 D",
        bar_size: str = "1 min",
        *,
        use_rth: bool = True,
    ) -> pa.Table:
        """Bars in the bars schema (paced and chunked like the async API)."""
        request = BarsRequest(contract, duration, bar_size, "TRADES", use_rth)
        return self._call(self._client.fetch_bars(request))

    def close(self) -> None:
        try:
            self._call(self.connection.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()

    def __enter__(self) -> BlockingIB:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()
