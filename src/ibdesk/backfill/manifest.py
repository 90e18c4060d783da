"""The run's records on disk: `backfill_l2_manifest.jsonl` (append, input order) and
`backfill_l2_summary.json` (overwritten).

Results may finish in any order; `OrderedManifest` holds them back until every earlier
task is done, so the manifest is always a prefix of the input order.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ibdesk.store.parquet import atomic_file


class ManifestEntry(Protocol):
    def to_json(self) -> dict[str, Any]: ...


class OrderedManifest:
    """Appends one JSON line per task to `path`, in task index order.

    `on_result` (e.g. a progress bar) sees every result as soon as it completes.
    """

    def __init__(self, path: Path, on_result: Callable[[Any], None] | None = None) -> None:
        self.path = path
        self._on_result = on_result
        self._pending: dict[int, dict[str, Any]] = {}
        self._next = 0
        self._lock = threading.Lock()

    def put(self, index: int, result: ManifestEntry) -> None:
        if self._on_result is not None:
            self._on_result(result)
        line = result.to_json()
        with self._lock:
            self._pending[index] = line
            ready: list[dict[str, Any]] = []
            while self._next in self._pending:
                ready.append(self._pending.pop(self._next))
                self._next += 1
            if ready:
                self._append(ready)

    def _append(self, lines: list[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(line, sort_keys=False) + "\n" for line in lines)
        # Flushed, not fsynced: a lost last line after a power cut only costs a SKIP
        # line on the re-run (the data files themselves are written atomically).
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()


def write_json_atomic(payload: dict[str, Any], path: Path) -> Path:
    """Overwrite `path` with `payload` through the store's one atomic-write mechanism."""
    with atomic_file(path) as handle:
        handle.write((json.dumps(payload, indent=2) + "\n").encode("utf-8"))
    return path


def read_manifest(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
