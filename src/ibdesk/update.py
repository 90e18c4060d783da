"""`data update`: bring stored bars up to date by fetching only what is missing.

For each symbol, the missing regular-hours bars between its last stored day (or
`lookback_days` back) and the gateway's current session are found against the exchange
calendar (`ibdesk.store.inventory.missing_bar_ranges`) and fetched gap by gap through the
pacing scheduler, then merged into the day files without duplicates.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa

from ibdesk.config import Settings
from ibdesk.domain.bars import parse_bar_size
from ibdesk.domain.hours import ET
from ibdesk.errors import UserInputError
from ibdesk.ib.connection import IBConnection
from ibdesk.ib.contracts import ContractCache, UnknownContractError, stock
from ibdesk.ib.requests import BarsRequest, HistoricalClient, HistoricalDataError
from ibdesk.store import layout
from ibdesk.store.bars import normalize_bar_size, store_bars
from ibdesk.store.catalog import find_data_files
from ibdesk.store.inventory import Gap, missing_bar_ranges
from ibdesk.store.readers import DataKind

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SymbolUpdate:
    symbol: str
    first_day: str = ""
    last_day: str = ""
    gaps: int = 0
    requests: int = 0
    bars_added: int = 0
    error: str | None = None


@dataclass(slots=True)
class UpdateSummary:
    bar_size: str
    symbols: dict[str, SymbolUpdate] = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        return [s for s, u in self.symbols.items() if u.error]

    def to_json(self) -> dict[str, Any]:
        return {
            "bar_size": self.bar_size,
            "failed": self.failed,
            "symbols": {
                s: {
                    "first_day": u.first_day,
                    "last_day": u.last_day,
                    "gaps": u.gaps,
                    "requests": u.requests,
                    "bars_added": u.bars_added,
                    "error": u.error,
                }
                for s, u in self.symbols.items()
            },
        }


def stored_days(settings: Settings, bar_size: str) -> dict[str, list[date]]:
    """Days with bars of `bar_size` in the store, per symbol (part files included)."""
    folder = layout.bar_size_folder(normalize_bar_size(bar_size))
    days: dict[str, list[date]] = {}
    for found in find_data_files(settings.data_root, [DataKind.BARS]):
        if found.bar_size_folder == folder and found.day is not None:
            days.setdefault(found.symbol, []).append(found.day)
    return days


def gap_request(gap: Gap) -> tuple[datetime, str]:
    """(end, duration) of the one request that covers `gap` (seconds, within one session)."""
    end = datetime.fromtimestamp(gap.end_ns / 1e9, tz=UTC)
    seconds = max(1, math.ceil((gap.end_ns - gap.start_ns) / 1e9))
    return end, f"{seconds} S"


def _within(table: pa.Table, gap: Gap) -> pa.Table:
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    return table.filter(pa.array((ts >= gap.start_ns) & (ts < gap.end_ns)))


def symbols_to_update(
    settings: Settings, symbols: list[str] | None, bar_size: str, lookback_days: int
) -> list[str]:
    """Check the options (before any I/O) and name the symbols to update.

    Without `symbols`: every symbol stored at `bar_size` (none stored: nothing to do).
    """
    parsed = parse_bar_size(bar_size)
    if not parsed.is_intraday:
        raise UserInputError(f"--bar-size {bar_size!r}: data update fills intraday bars only")
    if lookback_days < 1:
        raise UserInputError("--days: expected at least 1")
    return [s.upper() for s in symbols] if symbols else sorted(stored_days(settings, bar_size))


async def update_bars(
    settings: Settings,
    conn: IBConnection,
    *,
    symbols: list[str] | None,
    bar_size: str = "1 min",
    lookback_days: int = 5,
) -> UpdateSummary:
    """Fill the missing bars of `symbols` over `conn` (an open session's connection)."""
    wanted = symbols_to_update(settings, symbols, bar_size, lookback_days)
    stored = stored_days(settings, bar_size)
    summary = UpdateSummary(bar_size=bar_size)
    if not wanted:
        return summary
    source = "sim" if conn.is_sim else "ibkr"
    now = await conn.ib.reqCurrentTimeAsync()
    today = now.astimezone(ET).date()
    client = HistoricalClient(conn.ib)
    qualified = await ContractCache().qualify(conn.ib, *(stock(s) for s in wanted))
    for symbol, contract in zip(wanted, qualified, strict=True):
        result = SymbolUpdate(symbol)
        summary.symbols[symbol] = result
        if isinstance(contract, UnknownContractError):
            result.error = contract.message
            continue
        last = max(stored[symbol]) if stored.get(symbol) else None
        first = last if last is not None else today - timedelta(days=lookback_days)
        result.first_day, result.last_day = first.isoformat(), today.isoformat()
        gaps = [
            g
            for g in missing_bar_ranges(settings.data_root, symbol, bar_size, first, today)
            if g.start_ns < int(now.timestamp() * 1e9)
        ]
        result.gaps = len(gaps)
        for gap in gaps:
            end, duration = gap_request(gap)
            end = min(end, now.astimezone(UTC))
            try:
                table = await client.fetch_bars(
                    BarsRequest(contract, duration, bar_size, "TRADES", True, end)
                )
            except HistoricalDataError as exc:
                result.error = exc.message
                break
            result.requests += 1
            rows = _within(table, gap)
            if rows.num_rows:
                writes = store_bars(settings.data_root, bar_size, rows, {"source": source})
                result.bars_added += sum(w.rows_added for w in writes)
        log.info("%s: %d gap(s), %d bar(s) added", symbol, result.gaps, result.bars_added)
    return summary
