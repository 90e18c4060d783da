"""The programmatic API kept from the original tool (README: Python API).

`backfill_l2(symbol, day)` runs one task without touching the manifest;
`find_warrior_tasks(...)` lists the trade log's tasks; `run_warrior_backfill(tasks, ...)`
runs them like `ibdesk backfill` (manifest, summary) and returns the counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

from ibdesk.backfill.orchestrator import (
    BackfillOptions,
    build_plan,
    clamp_to_dataset,
    discover_tasks,
    open_vendor,
    output_exists,
    process_task,
    remove_stale_temp_files,
    run_backfill,
)
from ibdesk.backfill.tasks import BackfillTask, TaskFilter, coerce_task, parse_since
from ibdesk.config import Settings, load_settings


def backfill_l2(
    symbol: str,
    day: date | str,
    *,
    force: bool = False,
    interval_ms: int = 100,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Backfill one (symbol, day) without touching the manifest.

    Returns `{"status": written|skipped|empty|error|unavail, "rows", "path", "error", ...}`.
    """
    cfg = settings or load_settings()
    task = coerce_task((symbol, day))
    options = BackfillOptions(force=force, interval_ms=interval_ms)
    plan = build_plan(cfg, [task], options)
    remove_stale_temp_files(plan, [task])
    plan, vendor = open_vendor(cfg, plan, None)
    if vendor is not None and (force or not output_exists(plan, task)):
        plan = clamp_to_dataset(plan, vendor)
    result = process_task(plan, task, vendor)
    return {**result.to_json(), "status": result.status.api_name}


def find_warrior_tasks(
    since_days: int | str | None = None,
    last: int | None = None,
    *,
    trades_file: Path | str | None = None,
    settings: Settings | None = None,
    today: date | None = None,
) -> list[dict[str, str]]:
    """The trade log's tasks, `[{"symbol", "trading_day": "YYYY-MM-DD"}, ...]`, first-seen order."""
    cfg = settings or load_settings()
    since = parse_since(str(since_days), today or date.today()) if since_days is not None else None
    flt = TaskFilter(since=since, last=last)
    path = Path(trades_file) if trades_file is not None else cfg.trades_file
    return [t.to_json() for t in discover_tasks(path, flt)]


def run_warrior_backfill(
    tasks: Iterable[BackfillTask | dict[str, Any] | tuple[str, Any]],
    force: bool = False,
    strict: bool = False,
    *,
    max_workers: int | None = None,
    interval_ms: int = 100,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Run the tasks like `ibdesk backfill`; returns the summary JSON plus `results`, `exit_code`.

    `exit_code` is what the CLI would exit with: 1 under `strict` when a task ended
    ERROR or UNAVAIL, else 0.
    """
    cfg = settings or load_settings()
    options = BackfillOptions(force=force, interval_ms=interval_ms, max_workers=max_workers)
    summary = run_backfill(cfg, [coerce_task(t) for t in tasks], options)
    payload = summary.to_json()
    payload["results"] = [{**r.to_json(), "status": r.status.api_name} for r in summary.results]
    payload["summary_line"] = summary.summary_line()
    payload["exit_code"] = 1 if strict and summary.failed else 0
    return payload
