"""Typed requests over an `IBConnection`: historical bars as Arrow tables, paced and chunked.

Historical requests go through `PacingScheduler` so IB never has to refuse one; long
durations are split into chunks IB allows and stitched without duplicate bars; a 162 that
still arrives (another client on the same account, a clock disagreement) is waited out and
retried.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pyarrow as pa
from ib_async import IB, BarData, Contract

from ibdesk.calendar import xnys
from ibdesk.domain.bars import parse_bar_size, parse_duration
from ibdesk.domain.hours import ET
from ibdesk.errors import WorkFailedError
from ibdesk.ib import compat
from ibdesk.ib.errors import IbError, IbErrorKind
from ibdesk.ib.pacing import (
    IB_PACING_RULES,
    HistoricalChunk,
    HistoricalRequestKey,
    PacingRules,
    PacingScheduler,
    fits_one_request,
    plan_chunks,
    stitch_bars,
)
from ibdesk.store.schemas import bars_schema

log = logging.getLogger(__name__)
perf_log = logging.getLogger("ibdesk.performance")

MAX_PACING_RETRIES = 5
# ib_async queues messages beyond 45/s; a queued request reaches IB later than we think
# and can then break a pacing window. Spacing historical requests at 40/s keeps them
# out of that queue (the rules themselves allow far fewer for small bars).
MIN_SEND_SPACING_S = 1 / 40


class HistoricalDataError(WorkFailedError):
    """IB refused a historical request for a reason other than pacing."""


@dataclass(frozen=True, slots=True)
class BarsRequest:
    contract: Contract
    duration: str = "1 D"
    bar_size: str = "1 min"
    what_to_show: str = "TRADES"
    use_rth: bool = True
    end_utc: datetime | None = None


def bars_to_table(symbol: str, bars: Sequence[BarData]) -> pa.Table:
    """ib_async bars -> bars schema v1 (tz-aware UTC `ts` = bar start)."""
    ts: list[datetime] = []
    for bar in bars:
        moment = bar.date
        if isinstance(moment, datetime):
            ts.append(moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC))
        else:
            # A daily bar is dated by its session: it starts at midnight ET of that date.
            assert isinstance(moment, date)
            ts.append(datetime(moment.year, moment.month, moment.day, tzinfo=ET).astimezone(UTC))
    columns = {
        "ts": pa.array(ts, pa.timestamp("ns", tz="UTC")),
        "symbol": pa.array([symbol] * len(bars), pa.string()),
        "open": pa.array([b.open for b in bars], pa.float64()),
        "high": pa.array([b.high for b in bars], pa.float64()),
        "low": pa.array([b.low for b in bars], pa.float64()),
        "close": pa.array([b.close for b in bars], pa.float64()),
        "volume": pa.array([float(b.volume) for b in bars], pa.float64()),
        "wap": pa.array([float(b.average) for b in bars], pa.float64()),
        "bar_count": pa.array([int(b.barCount) for b in bars], pa.int64()),
    }
    return pa.table(columns, schema=bars_schema())


def default_margin_s(rules: PacingRules) -> float:
    """Padding for every pacing window: 10% of the shortest one (0.2 s with IB's rules).

    The gateway times a request when it reads it, not when we sent it; two requests sent
    exactly one window apart can arrive a little closer together.
    """
    return 0.1 * min(rules.same_contract_window_s, rules.identical_window_s)


def session_windows(
    end_utc: datetime, use_rth: bool, count: int = 400
) -> list[tuple[datetime, datetime]]:
    """The last `count` XNYS sessions started by `end_utc`, as (start, end) of their bars.

    IB counts "N D" in trading sessions; chunks planned on these never land on a closed day
    and never fetch a session twice.
    """
    calendar = xnys()
    last = calendar.latest_started(int(end_utc.timestamp() * 1e9), use_rth)
    windows: list[tuple[datetime, datetime]] = []
    for index in range(max(0, last - count + 1), last + 1):
        start_ns, stop_ns = calendar.session(index).window(use_rth)
        windows.append(
            (
                datetime.fromtimestamp(start_ns / 1e9, UTC),
                datetime.fromtimestamp(stop_ns / 1e9, UTC),
            )
        )
    return windows


class HistoricalClient:
    """Paced historical-bar requests on one ib_async `IB` (one scheduler per connection)."""

    def __init__(
        self,
        ib: IB,
        scheduler: PacingScheduler | None = None,
        *,
        monotonic_s: Callable[[], float] = time.monotonic,
        timeout_s: float = 120.0,
    ) -> None:
        self.ib = ib
        self.scheduler = scheduler or PacingScheduler(margin_s=default_margin_s(IB_PACING_RULES))
        self._monotonic_s = monotonic_s
        self.timeout_s = timeout_s
        self.pacing_violations = 0
        self._last_send_s = -math.inf
        self.requests_sent = 0
        self._errors: dict[int, IbError] = {}
        self._clock_lock = asyncio.Lock()
        ib.errorEvent += self._on_error

    # ib_async's request ids, throttle and open requests, read through `ibdesk.ib.compat`.
    def _next_req_id(self) -> int:
        return compat.next_request_id(self.ib.client)  # reqHistoricalDataAsync takes it first

    def _throttle_delay_s(self) -> float:
        """How long a message sent now would sit in ib_async's throttle queue."""
        client = self.ib.client
        if not client.MaxRequests:
            return 0.0
        now = asyncio.get_running_loop().time()
        recent = [
            t for t in compat.throttle_sent_times(client) if now - t <= client.RequestsInterval
        ]
        if not compat.throttle_queued(client) and len(recent) < client.MaxRequests:
            return 0.0
        return max(0.01, recent[0] + client.RequestsInterval - now) if recent else 0.01

    def _timed_out(self, req_id: int) -> bool:
        return compat.is_request_pending(self.ib.wrapper, req_id)

    def _forget(self, req_id: int) -> None:
        compat.forget_request(self.ib.wrapper, req_id)

    def _on_error(self, req_id: int, code: int, message: str, _contract: object) -> None:
        if req_id >= 0:
            self._errors[req_id] = IbError.of(code, message, req_id)

    async def _paced_request(
        self, key: HistoricalRequestKey, request: BarsRequest, end: str, duration: str
    ) -> pa.Table:
        for attempt in range(MAX_PACING_RETRIES + 1):
            while True:
                now = self._monotonic_s()
                at = max(
                    self.scheduler.next_allowed_s(key, now),
                    self._last_send_s + MIN_SEND_SPACING_S,
                    now + self._throttle_delay_s(),
                )
                if at <= now:
                    break
                await asyncio.sleep(min(at - now, 1.0) if at != float("inf") else 0.05)
            self._last_send_s = self._monotonic_s()
            self.scheduler.record_sent(key, self._last_send_s)
            self.requests_sent += 1
            req_id = self._next_req_id()
            try:
                bars = await self.ib.reqHistoricalDataAsync(
                    request.contract,
                    end,
                    duration,
                    request.bar_size,
                    request.what_to_show,
                    request.use_rth,
                    formatDate=2,
                    timeout=self.timeout_s,
                )
            finally:
                self.scheduler.record_done(key)
            error = self._errors.pop(req_id, None)
            if error is None and self._timed_out(req_id):
                # ib_async gives up quietly (empty bars) when no answer comes: never take
                # that for "no data". The gateway may have dropped the request (error 100).
                self._forget(req_id)
                if attempt < MAX_PACING_RETRIES:
                    log.warning("no answer to %s within %.0fs; retrying", key, self.timeout_s)
                    continue
                raise HistoricalDataError(
                    f"historical data for {request.contract.symbol}: no answer within "
                    f"{self.timeout_s:g}s ({attempt + 1} attempts)"
                )
            if error is None or error.kind is not IbErrorKind.REQUEST_ERROR:
                return bars_to_table(request.contract.symbol, list(bars))
            if error.code == 162 and "no data" in error.message.lower():
                return bars_to_table(request.contract.symbol, [])
            if error.is_pacing_violation and attempt < MAX_PACING_RETRIES:
                self.pacing_violations += 1
                wait_s = self.scheduler.rules.identical_window_s
                log.warning("pacing violation (162) on %s; retrying in %.1fs", key, wait_s)
                await asyncio.sleep(wait_s)
                continue
            raise HistoricalDataError(
                f"historical data for {request.contract.symbol} refused: "
                f"{error.code} {error.message}"
            )
        raise HistoricalDataError(
            f"historical data for {request.contract.symbol}: pacing retries exhausted"
        )

    async def _gateway_now(self) -> datetime:
        """The gateway's clock (a sim may run at another time than this machine).

        One question at a time: ib_async files every reqCurrentTime answer under one key, so
        concurrent askers (symbols fetched together) would leave all but one waiting forever.
        """
        async with self._clock_lock:
            try:
                return (await self.ib.reqCurrentTimeAsync()).astimezone(UTC)
            except (ConnectionError, TimeoutError):
                return datetime.now(UTC)

    async def fetch_bars(self, request: BarsRequest) -> pa.Table:
        """All bars of `request`, chunked as IB allows and stitched without duplicates."""
        started = time.perf_counter()
        duration = parse_duration(request.duration)
        bar_size = parse_bar_size(request.bar_size)
        if fits_one_request(duration, bar_size):
            # One request: IB ends it at its own "now" when no end is given (see below).
            chunks = [HistoricalChunk(request.end_utc or datetime.now(UTC), duration)]
        else:
            end_utc = request.end_utc or await self._gateway_now()
            chunks = plan_chunks(
                duration, bar_size, end_utc, sessions=session_windows(end_utc, request.use_rth)
            )
        tables: list[pa.Table] = []
        for chunk in chunks:
            end = "" if (request.end_utc is None and len(chunks) == 1) else chunk.ib_end
            key = HistoricalRequestKey(
                con_id=request.contract.conId,
                exchange=request.contract.exchange,
                what_to_show=request.what_to_show,
                end=end,
                duration=str(chunk.duration),
                bar_size=str(bar_size),
                use_rth=request.use_rth,
            )
            tables.append(await self._paced_request(key, request, end, str(chunk.duration)))
        table = stitch_bars(tables)
        perf_log.info(
            "bars %s %s %s: %d rows in %d request(s), %.3fs",
            request.contract.symbol,
            request.duration,
            request.bar_size,
            table.num_rows,
            len(chunks),
            time.perf_counter() - started,
        )
        return table
