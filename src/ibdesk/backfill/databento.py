"""The Databento edge: the SDK client, retries, and translation of its errors into ours.

Exactly three vendor calls exist: `timeseries.get_range` (one per task), and
`metadata.get_dataset_range` / `metadata.get_cost`. Foreign types (DBNStore, BentoError,
requests errors) stop here: callers get numpy record arrays, floats and `VendorError`.
"""

from __future__ import annotations

import importlib.util
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import numpy as np
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from ibdesk.config import Settings

log = logging.getLogger("ibdesk.backfill.vendor")

DATASET_ALIASES = {"NASDAQ.ITCH": "XNAS.ITCH"}
ENABLE_HINT = (
    "set DATABENTO_ENABLE_BACKFILL=1 and DATABENTO_API_KEY (and install databento) to enable it"
)
MAX_RETRY_AFTER_S = 300.0
NO_RECORDS_DTYPE = np.dtype([("ts_recv", "u8"), ("flags", "u1"), ("action", "S1")])


class VendorErrorKind(StrEnum):
    AUTH = "auth"
    REJECTED = "rejected"
    RATE_LIMITED = "rate_limited"
    SERVER = "server"
    NETWORK = "network"
    TRUNCATED = "truncated"

    @property
    def retryable(self) -> bool:
        return self not in (VendorErrorKind.AUTH, VendorErrorKind.REJECTED)


class VendorError(Exception):
    """A vendor call failed; `message` is one line for the manifest and the log."""

    def __init__(
        self,
        kind: VendorErrorKind,
        message: str,
        *,
        http_status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.http_status = http_status
        self.retry_after_s = retry_after_s
        self.attempts = 0


class VendorUnavailableError(Exception):
    """Backfill is disabled or cannot run here (no SDK, no key); the message says how to enable."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """At most `retries` retries after the first try; backoff in ms with jitter."""

    retries: int = 3
    base_ms: int = 250
    max_ms: int = 2000

    def backoff_s(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Exponential backoff capped at max_ms, with equal jitter (half fixed, half random)."""
        ceiling_ms = min(float(self.max_ms), self.base_ms * 2.0 ** max(retry_number - 1, 0))
        jitter = (rng or random).random()
        return (ceiling_ms / 2 + jitter * ceiling_ms / 2) / 1000.0

    def delay_s(self, retry_number: int, retry_after_s: float | None) -> float:
        """`Retry-After` when the server sent one, else the backoff."""
        if retry_after_s is not None:
            return min(max(retry_after_s, 0.0), MAX_RETRY_AFTER_S)
        return self.backoff_s(retry_number)


@dataclass(frozen=True, slots=True)
class FetchResult:
    records: np.ndarray
    attempts: int


def resolve_dataset(name: str) -> tuple[str, str | None]:
    """The dataset code, and a warning when an alias was used."""
    upper = name.strip().upper()
    if upper in DATASET_ALIASES:
        real = DATASET_ALIASES[upper]
        return real, f"DATABENTO_DATASET={name} is an alias; using {real}"
    return name.strip(), None


def unavailable_reason(settings: Settings) -> str | None:
    """Why the vendor must not be called, or None when backfill may run."""
    if not settings.databento_enable_backfill:
        return f"Databento backfill is disabled: {ENABLE_HINT}"
    if importlib.util.find_spec("databento") is None:
        return f"the databento package is not installed: {ENABLE_HINT}"
    if not settings.secret("databento_api_key").strip():
        return f"DATABENTO_API_KEY is empty: {ENABLE_HINT}"
    return None


def parse_retry_after(headers: Any) -> float | None:
    try:
        raw = headers.get("Retry-After") if headers is not None else None
    except AttributeError:
        return None
    if raw is None:
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(str(raw))
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def translate_error(exc: BaseException) -> VendorError | None:
    """Our `VendorError` for an SDK/HTTP/decoding failure; None for anything else."""
    import requests
    from databento.common.error import BentoClientError, BentoError, BentoServerError
    from databento_dbn import DBNError

    if isinstance(exc, BentoClientError):
        status = exc.http_status
        detail = _detail(exc)
        if status == 429:
            return VendorError(
                VendorErrorKind.RATE_LIMITED,
                f"Databento rate limit (HTTP 429){detail}",
                http_status=status,
                retry_after_s=parse_retry_after(exc.headers),
            )
        if status in (401, 403):
            return VendorError(
                VendorErrorKind.AUTH,
                f"Databento rejected the API key (HTTP {status}){detail}: check DATABENTO_API_KEY",
                http_status=status,
            )
        if status == 408:
            return VendorError(
                VendorErrorKind.NETWORK, f"request timed out (HTTP 408){detail}", http_status=status
            )
        return VendorError(
            VendorErrorKind.REJECTED,
            f"Databento rejected the request (HTTP {status}){detail}",
            http_status=status,
        )
    if isinstance(exc, BentoServerError):
        return VendorError(
            VendorErrorKind.SERVER,
            f"Databento server error (HTTP {exc.http_status}){_detail(exc)}",
            http_status=exc.http_status,
            retry_after_s=parse_retry_after(exc.headers),
        )
    if isinstance(exc, requests.Timeout | requests.ConnectionError):
        return VendorError(
            VendorErrorKind.NETWORK, f"network error: {type(exc).__name__}: {_first_line(exc)}"
        )
    if isinstance(exc, BentoError | DBNError):
        return VendorError(
            VendorErrorKind.TRUNCATED, f"truncated or corrupt response: {_first_line(exc)}"
        )
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _detail(exc: Any) -> str:
    message = getattr(exc, "message", None)
    if not message:
        return ""
    return f": {str(message).splitlines()[0]}"


class DatabentoVendor:
    """`databento.Historical` for one dataset, with our retry policy around each call."""

    def __init__(
        self,
        api_key: str,
        dataset: str,
        schema: str,
        gateway: str | None,
        policy: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import databento

        self.dataset = dataset
        self.schema = schema
        self.policy = policy
        self._sleep = sleep
        self._client = databento.Historical(key=api_key)
        if gateway:
            _point_at(self._client, gateway)

    @classmethod
    def from_settings(
        cls, settings: Settings, sleep: Callable[[float], None] = time.sleep
    ) -> DatabentoVendor:
        """The vendor for these settings; `VendorUnavailableError` when backfill cannot run."""
        reason = unavailable_reason(settings)
        if reason is not None:
            raise VendorUnavailableError(reason)
        dataset, warning = resolve_dataset(settings.databento_dataset)
        if warning:
            log.warning(warning)
        policy = RetryPolicy(
            retries=settings.retry_attempts,
            base_ms=settings.l2_task_backoff_base_ms,
            max_ms=max(settings.l2_task_backoff_max_ms, settings.l2_task_backoff_base_ms),
        )
        return cls(
            settings.secret("databento_api_key"),
            dataset,
            settings.databento_schema,
            settings.databento_gateway,
            policy,
            sleep,
        )

    def _call(self, what: str, fn: Callable[[], Any]) -> tuple[Any, int]:
        attempts = 0

        def attempt() -> Any:
            nonlocal attempts
            attempts += 1
            try:
                return fn()
            except Exception as exc:
                translated = translate_error(exc)
                if translated is None:
                    raise
                raise translated from exc

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome is not None else None
            retry_after = exc.retry_after_s if isinstance(exc, VendorError) else None
            delay = self.policy.delay_s(state.attempt_number, retry_after)
            log.info("%s: %s; retry %d in %.2fs", what, exc, state.attempt_number, delay)
            return delay

        retrying = Retrying(
            stop=stop_after_attempt(self.policy.retries + 1),
            wait=wait,
            retry=retry_if_exception(lambda e: isinstance(e, VendorError) and e.kind.retryable),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            return retrying(attempt), attempts
        except VendorError as exc:
            exc.attempts = attempts
            raise

    def fetch(self, vendor_symbol: str, start: datetime, end: datetime) -> FetchResult:
        """Records of `vendor_symbol` with start <= ts_recv < end (tz-aware UTC times)."""
        _require_aware(start, end)

        def get() -> np.ndarray:
            try:
                store = self._client.timeseries.get_range(
                    dataset=self.dataset,
                    symbols=[vendor_symbol],
                    schema=self.schema,
                    start=start,
                    end=end,
                    stype_in="raw_symbol",
                )
            except ValueError as exc:
                # A 200 with a zero-byte body: the vendor sent nothing at all (not even
                # the DBN header), which the SDK reports as a ValueError.
                if "empty" not in str(exc):
                    raise
                log.info("get_range %s: empty response body", vendor_symbol)
                return np.zeros(0, dtype=NO_RECORDS_DTYPE)
            records = store.to_ndarray()
            return records.reshape(-1) if records.ndim != 1 else records

        records, attempts = self._call(f"get_range {vendor_symbol}", get)
        return FetchResult(records, attempts)

    def cost_usd(self, vendor_symbol: str, start: datetime, end: datetime) -> float:
        _require_aware(start, end)

        def get() -> float:
            return float(
                self._client.metadata.get_cost(
                    dataset=self.dataset,
                    symbols=[vendor_symbol],
                    schema=self.schema,
                    start=start,
                    end=end,
                    stype_in="raw_symbol",
                )
            )

        cost, _ = self._call(f"get_cost {vendor_symbol}", get)
        return float(cost)

    def dataset_range(self) -> tuple[datetime | None, datetime | None]:
        """The dataset's available [start, end) as UTC datetimes (None when not reported)."""
        answer, _ = self._call(
            "get_dataset_range", lambda: self._client.metadata.get_dataset_range(self.dataset)
        )
        if not isinstance(answer, dict):
            return None, None
        start = answer.get("start") or answer.get("start_date")
        end = answer.get("end") or answer.get("end_date")
        return _parse_utc(start), _parse_utc(end)


def _point_at(client: Any, gateway: str) -> None:
    """Set the API base URL ourselves: the SDK forces https://, a loopback test server is http://."""
    base = gateway.rstrip("/")
    from databento.common import API_VERSION

    client.timeseries._base_url = f"{base}/v{API_VERSION}/timeseries"
    client.metadata._base_url = f"{base}/v{API_VERSION}/metadata"
    client.symbology._base_url = f"{base}/v{API_VERSION}/symbology"
    client.batch._base_url = f"{base}/v{API_VERSION}/batch"
    client._gateway = base


def _require_aware(*moments: datetime) -> None:
    for moment in moments:
        if moment.tzinfo is None:
            raise ValueError("vendor times must be tz-aware (naive times would be taken as UTC)")


def _parse_utc(value: object) -> datetime | None:
    if not value:
        return None
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Nanosecond fractions are beyond datetime: keep microseconds.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
