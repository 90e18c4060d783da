"""Runs backfill tasks: discovery, per-task fetch/convert/write, concurrency, records.

A service: wires the pure core (tasks, window, convert) to the edges (trade log, calendar,
Databento, Parquet store). Statuses, manifest order and the summary are the same whether
tasks run on local threads or on a Dask distributed cluster.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from ibdesk.backfill.calendar import ExchangeCalendar
from ibdesk.backfill.convert import (
    MBP10_LEVELS,
    mbp10_to_snapshots,
    mbp10_to_trades,
    snapshot_metadata,
)
from ibdesk.backfill.databento import (
    DatabentoVendor,
    VendorError,
    VendorUnavailableError,
    resolve_dataset,
    unavailable_reason,
)
from ibdesk.backfill.manifest import OrderedManifest, write_json_atomic
from ibdesk.backfill.tasks import (
    BackfillTask,
    TaskDiscovery,
    TaskFilter,
    apply_filter,
    tasks_from_rows,
)
from ibdesk.backfill.tradelog import read_trade_cells
from ibdesk.backfill.window import RequestWindow, effective_window, request_window
from ibdesk.config import Settings, TimeWindow
from ibdesk.errors import UserInputError
from ibdesk.store.layout import (
    backfill_manifest_path,
    backfill_summary_path,
    databento_snapshots_path,
    databento_trades_path,
)
from ibdesk.store.parquet import TMP_SUFFIX, write_table_atomic

log = logging.getLogger("ibdesk.backfill")
perf_log = logging.getLogger("ibdesk.performance")

VendorFactory = Callable[[Settings], DatabentoVendor]


class TaskStatus(StrEnum):
    WRITE = "WRITE"
    SKIP = "SKIP"
    EMPTY = "EMPTY"
    ERROR = "ERROR"
    UNAVAIL = "UNAVAIL"

    @property
    def api_name(self) -> str:
        """The programmatic API's spelling: written, skipped, empty, error, unavail."""
        return _API_NAMES[self]


_API_NAMES = {
    TaskStatus.WRITE: "written",
    TaskStatus.SKIP: "skipped",
    TaskStatus.EMPTY: "empty",
    TaskStatus.ERROR: "error",
    TaskStatus.UNAVAIL: "unavail",
}


@dataclass(frozen=True, slots=True)
class BackfillOptions:
    force: bool = False
    interval_ms: int = 100
    max_workers: int | None = None
    estimate_cost: bool = False
    scheduler: str | None = None


@dataclass(frozen=True, slots=True)
class TaskResult:
    task: BackfillTask
    status: TaskStatus
    rows: int = 0
    trades: int = 0
    path: str | None = None
    error: str | None = None
    duration_s: float = 0.0
    attempts: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "symbol": self.task.symbol,
            "trading_day": self.task.trading_day.isoformat(),
            "status": self.status.value,
            "rows": self.rows,
            "trades": self.trades,
            "path": self.path,
            "error": self.error,
            "duration_s": round(self.duration_s, 3),
            "attempts": self.attempts,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }


@dataclass(frozen=True, slots=True)
class RunSummary:
    results: list[TaskResult]
    concurrency: int
    duration_s: float
    estimated_cost_usd: float | None = None

    @property
    def counts(self) -> dict[str, int]:
        counts = {status.value: 0 for status in TaskStatus}
        for result in self.results:
            counts[result.status.value] += 1
        return counts

    @property
    def zero_row_tasks(self) -> list[dict[str, str]]:
        return [r.task.to_json() for r in self.results if r.status is TaskStatus.EMPTY]

    @property
    def failed(self) -> bool:
        """Any task ended ERROR or UNAVAIL (what --strict turns into exit 1)."""
        return any(r.status in (TaskStatus.ERROR, TaskStatus.UNAVAIL) for r in self.results)

    def summary_line(self) -> str:
        """The one stdout line scripts parse; UNAVAIL counts under ERROR here."""
        c = self.counts
        errors = c["ERROR"] + c["UNAVAIL"]
        return (
            f"SUMMARY WRITE={c['WRITE']} SKIP={c['SKIP']} EMPTY={c['EMPTY']} ERROR={errors} "
            f"total={len(self.results)} concurrency={self.concurrency} "
            f"duration={self.duration_s:.3f}s"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "counts": self.counts,
            "total": len(self.results),
            "concurrency": self.concurrency,
            "zero_row_tasks": self.zero_row_tasks,
            "errors": [
                {**r.task.to_json(), "status": r.status.value, "error": r.error}
                for r in self.results
                if r.status in (TaskStatus.ERROR, TaskStatus.UNAVAIL)
            ],
            "duration": round(self.duration_s, 3),
            "estimated_cost_usd": self.estimated_cost_usd,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }


@dataclass(frozen=True, slots=True)
class TaskPlan:
    """Per-run constants a worker needs (picklable, no calendars or clients inside)."""

    level2_root: Path
    dataset: str
    schema: str
    tz_name: str
    interval_ms: int
    force: bool
    symbol_map: dict[str, str]
    windows: dict[date, TimeWindow | None]
    available_end: datetime | None = None
    unavailable: str | None = None
    exchange: str | None = None
    levels: int = MBP10_LEVELS
    extra_metadata: dict[str, str] = field(default_factory=dict)

    def vendor_symbol(self, symbol: str) -> str:
        return self.symbol_map.get(symbol, symbol)

    def request_for(self, task: BackfillTask) -> RequestWindow | None:
        window = self.windows.get(task.trading_day)
        if window is None:
            return None
        request = request_window(task.trading_day, window, self.tz_name)
        if self.available_end is not None:
            return request.clamp_end(self.available_end)
        return request


# --- discovery -------------------------------------------------------------------------


def discover_tasks(
    trades_file: Path, flt: TaskFilter, calendar: ExchangeCalendar | None = None
) -> list[BackfillTask]:
    """Tasks from the trade log, filtered; bad rows and dropped days are logged with reasons."""
    cal = calendar or ExchangeCalendar()
    found: TaskDiscovery = tasks_from_rows(read_trade_cells(trades_file), cal.is_session)
    for bad in found.bad_rows:
        log.warning("trade log %s row %d skipped: %s", trades_file, bad.row, bad.reason)
    for dropped in found.dropped:
        log.info(
            "dropped %s %s: %s",
            dropped.task.symbol,
            dropped.task.trading_day.isoformat(),
            dropped.reason.value,
        )
    tasks = apply_filter(found.tasks, flt)
    log.info(
        "trade log %s: %d task(s) after filters (%d before)",
        trades_file,
        len(tasks),
        len(found.tasks),
    )
    return tasks


def load_symbol_map(path: Path) -> dict[str, str]:
    """Local -> vendor symbols from SYMBOL_MAPPING_FILE; identity (one warning) when missing."""
    if not path.exists():
        log.warning("symbol mapping %s not found: using local symbols as vendor symbols", path)
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserInputError(f"symbol mapping {path} cannot be read: {exc}") from None
    if isinstance(raw, dict) and isinstance(raw.get("databento"), dict):
        raw = raw["databento"]
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise UserInputError(
            f"symbol mapping {path}: expected a JSON object of SYMBOL -> VENDOR_SYMBOL"
        )
    return {str(k).upper(): v for k, v in raw.items()}


# --- one task ----------------------------------------------------------------------------


def output_exists(plan: TaskPlan, task: BackfillTask) -> bool:
    return databento_snapshots_path(plan.level2_root, task.symbol, task.trading_day).exists()


def process_task(plan: TaskPlan, task: BackfillTask, vendor: DatabentoVendor | None) -> TaskResult:
    """Fetch, convert and write one (symbol, day); every outcome is a status, never a raise."""
    started = time.monotonic()
    label = f"{task.symbol} {task.trading_day.isoformat()}"
    snap_path = databento_snapshots_path(plan.level2_root, task.symbol, task.trading_day)

    def done(status: TaskStatus, **kw: Any) -> TaskResult:
        result = TaskResult(task, status, duration_s=time.monotonic() - started, **kw)
        if status is TaskStatus.ERROR:
            log.error("ERROR %s: %s", label, result.error)
        elif status is TaskStatus.EMPTY:
            log.info("ZERO_ROWS %s: %s", label, result.error or "no rows")
        log.info(
            "END %s status=%s rows=%d duration=%.3fs",
            label,
            status.value,
            result.rows,
            result.duration_s,
        )
        return result

    log.info("START %s", label)
    if snap_path.exists() and not plan.force:
        return done(TaskStatus.SKIP, rows=_row_count(snap_path), path=str(snap_path))
    if plan.unavailable is not None or vendor is None:
        return done(TaskStatus.UNAVAIL, error=plan.unavailable or "Databento vendor not available")
    request = plan.request_for(task)
    if request is None:
        return done(
            TaskStatus.EMPTY,
            error="no window left after clamping (trading window, close, dataset range)",
        )
    try:
        fetched = vendor.fetch(
            plan.vendor_symbol(task.symbol), request.request_start, request.window_end
        )
    except VendorError as exc:
        return done(TaskStatus.ERROR, error=exc.message, attempts=exc.attempts)
    metadata = {
        **snapshot_metadata(plan.dataset, plan.schema, plan.interval_ms, plan.levels),
        **plan.extra_metadata,
    }
    snapshots = mbp10_to_snapshots(
        fetched.records,
        task.symbol,
        request.window_start_ns,
        request.window_end_ns,
        plan.interval_ms,
        metadata,
        plan.levels,
    )
    if snapshots.num_rows == 0:
        reason = (
            "vendor returned no records"
            if len(fetched.records) == 0
            else "no consistent book in the window"
        )
        return done(TaskStatus.EMPTY, error=reason, attempts=fetched.attempts)
    trades = mbp10_to_trades(
        fetched.records,
        task.symbol,
        request.window_start_ns,
        request.window_end_ns,
        plan.exchange,
        {"source": "databento", "dataset": plan.dataset, "schema": plan.schema},
    )
    try:
        # Trades first: the snapshots file is what marks the task done (SKIP on re-run).
        write_table_atomic(
            trades, databento_trades_path(plan.level2_root, task.symbol, task.trading_day)
        )
        write_table_atomic(snapshots, snap_path)
    except OSError as exc:
        return done(
            TaskStatus.ERROR,
            error=f"cannot write {snap_path}: {exc.strerror or exc}",
            attempts=fetched.attempts,
        )
    return done(
        TaskStatus.WRITE,
        rows=snapshots.num_rows,
        trades=trades.num_rows,
        path=str(snap_path),
        attempts=fetched.attempts,
    )


def _row_count(path: Path) -> int:
    try:
        return pq.read_metadata(path).num_rows
    except (OSError, ValueError):
        return 0


def remove_stale_temp_files(plan: TaskPlan, tasks: Sequence[BackfillTask]) -> None:
    """A killed run can leave `*.tmp` next to an output; they are never valid data."""
    for task in tasks:
        for final in (
            databento_snapshots_path(plan.level2_root, task.symbol, task.trading_day),
            databento_trades_path(plan.level2_root, task.symbol, task.trading_day),
        ):
            tmp = final.with_name(final.name + TMP_SUFFIX)
            if tmp.exists():
                log.info("removing leftover %s from an interrupted run", tmp)
                tmp.unlink(missing_ok=True)


# --- the run ------------------------------------------------------------------------------


def build_plan(
    settings: Settings,
    tasks: Sequence[BackfillTask],
    options: BackfillOptions,
    calendar: ExchangeCalendar | None = None,
) -> TaskPlan:
    cal = calendar or ExchangeCalendar()
    trading = settings.l2_trading_window_et if settings.l2_enforce_trading_window else None
    windows = {
        day: effective_window(settings.l2_backfill_window_et, trading, cal.close_et(day))
        for day in dict.fromkeys(t.trading_day for t in tasks)
    }
    dataset, _ = resolve_dataset(settings.databento_dataset)
    return TaskPlan(
        level2_root=settings.level2_root,
        dataset=dataset,
        schema=settings.databento_schema,
        tz_name=settings.databento_tz,
        interval_ms=options.interval_ms,
        force=options.force,
        symbol_map=load_symbol_map(settings.symbol_mapping_file) if tasks else {},
        windows=windows,
        unavailable=unavailable_reason(settings),
        exchange=dataset.split(".")[0] if "." in dataset else None,
    )


def open_vendor(
    settings: Settings, plan: TaskPlan, factory: VendorFactory | None
) -> tuple[TaskPlan, DatabentoVendor | None]:
    """The vendor, or the plan marked unavailable (with the warning saying how to enable)."""
    if plan.unavailable is not None:
        log.warning("UNAVAIL: %s", plan.unavailable)
        return plan, None
    try:
        vendor = (factory or DatabentoVendor.from_settings)(settings)
    except VendorUnavailableError as exc:
        log.warning("UNAVAIL: %s", exc)
        return replace(plan, unavailable=str(exc)), None
    return plan, vendor


def clamp_to_dataset(plan: TaskPlan, vendor: DatabentoVendor) -> TaskPlan:
    """Ask the dataset's available range once per run (never per task)."""
    try:
        _start, end = vendor.dataset_range()
    except VendorError as exc:
        log.warning("could not read the dataset range (%s): requests are not clamped", exc.message)
        return plan
    return replace(plan, available_end=end) if end is not None else plan


def estimate_cost(plan: TaskPlan, vendor: DatabentoVendor, tasks: Sequence[BackfillTask]) -> float:
    """Sum of `metadata.get_cost` over the tasks' requests, in USD."""
    total = 0.0
    for task in tasks:
        request = plan.request_for(task)
        if request is None:
            continue
        total += vendor.cost_usd(
            plan.vendor_symbol(task.symbol), request.request_start, request.window_end
        )
    return total


def run_backfill(
    settings: Settings,
    tasks: Sequence[BackfillTask],
    options: BackfillOptions,
    *,
    vendor_factory: VendorFactory | None = None,
    on_estimate: Callable[[float, int], None] | None = None,
    on_result: Callable[[TaskResult], None] | None = None,
) -> RunSummary:
    """Process every task, append the manifest in input order, overwrite the summary JSON."""
    started = time.monotonic()
    tasks = list(tasks)
    plan = build_plan(settings, tasks, options)
    workers = options.max_workers or settings.backfill_workers
    vendor: DatabentoVendor | None = None
    pending = [t for t in tasks if options.force or not output_exists(plan, t)]
    if tasks:
        plan, vendor = open_vendor(settings, plan, vendor_factory)
    remove_stale_temp_files(plan, tasks)
    cost: float | None = None
    if vendor is not None and pending:
        plan = clamp_to_dataset(plan, vendor)
        if options.estimate_cost:
            try:
                cost = estimate_cost(plan, vendor, pending)
            except VendorError as exc:
                log.warning("cost estimate failed: %s", exc.message)
            else:
                if on_estimate is not None:
                    on_estimate(cost, len(pending))
    manifest = OrderedManifest(backfill_manifest_path(settings.data_root), on_result)
    if options.scheduler:
        results, workers = _run_on_dask(
            options.scheduler, settings, plan, tasks, manifest, vendor is not None
        )
    else:
        results = _run_on_threads(plan, tasks, vendor, workers, manifest)
    summary = RunSummary(results, workers, time.monotonic() - started, cost)
    write_json_atomic(summary.to_json(), backfill_summary_path(settings.data_root))
    perf_log.info("backfill %s", summary.summary_line())
    return summary


def _run_on_threads(
    plan: TaskPlan,
    tasks: Sequence[BackfillTask],
    vendor: DatabentoVendor | None,
    workers: int,
    manifest: OrderedManifest,
) -> list[TaskResult]:
    results: list[TaskResult | None] = [None] * len(tasks)
    if not tasks:
        return []
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="backfill")
    try:
        futures: dict[Future[TaskResult], int] = {
            pool.submit(process_task, plan, task, vendor): i for i, task in enumerate(tasks)
        }
        remaining = set(futures)
        while remaining:
            finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
            for future in finished:
                index = futures[future]
                result = future.result()
                results[index] = result
                manifest.put(index, result)
    except BaseException:
        # Ctrl-C / SIGTERM: tasks not started are dropped, running ones finish their
        # atomic writes; a re-run picks up the rest.
        log.warning("interrupted: cancelling the tasks not started yet")
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return [r for r in results if r is not None]


def _dask_task(
    settings: Settings, plan: TaskPlan, task: BackfillTask, with_vendor: bool
) -> TaskResult:
    """Runs on a Dask worker: the vendor client is rebuilt there from the settings."""
    vendor = DatabentoVendor.from_settings(settings) if with_vendor else None
    return process_task(plan, task, vendor)


def _run_on_dask(
    address: str,
    settings: Settings,
    plan: TaskPlan,
    tasks: Sequence[BackfillTask],
    manifest: OrderedManifest,
    with_vendor: bool,
) -> tuple[list[TaskResult], int]:
    from distributed import Client, as_completed

    try:
        client = Client(address, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise UserInputError(
            f"--scheduler {address}: cannot reach the Dask scheduler ({exc})"
        ) from None
    with client:
        nthreads: dict[str, int] = client.nthreads()  # type: ignore[assignment]
        workers = sum(nthreads.values()) or 1
        results: list[TaskResult | None] = [None] * len(tasks)
        futures = [
            client.submit(
                _dask_task,
                settings,
                plan,
                task,
                with_vendor,
                pure=False,
                key=f"backfill-{i}-{task.symbol}",
            )
            for i, task in enumerate(tasks)
        ]
        index_of = {future.key: i for i, future in enumerate(futures)}
        for future in as_completed(futures, loop=client.loop):
            index = index_of[future.key]
            result: TaskResult = future.result()
            results[index] = result
            manifest.put(index, result)
    return [r for r in results if r is not None], workers


def estimate_only(
    settings: Settings, tasks: Sequence[BackfillTask], options: BackfillOptions
) -> float | None:
    """`--dry-run --estimate-cost`: the summed cost of the tasks, calling nothing else but
    `get_dataset_range`/`get_cost`; None when the vendor is unavailable or the estimate failed."""
    tasks = list(tasks)
    if not tasks:
        return 0.0
    plan = build_plan(settings, tasks, options)
    plan, vendor = open_vendor(settings, plan, None)
    if vendor is None:
        return None
    pending = [t for t in tasks if options.force or not output_exists(plan, t)]
    plan = clamp_to_dataset(plan, vendor)
    try:
        return estimate_cost(plan, vendor, pending)
    except VendorError as exc:
        log.warning("cost estimate failed: %s", exc.message)
        return None
