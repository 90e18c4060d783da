"""`ibdesk data backup`: an incremental, verifiable mirror of the data root.

Owns the backup manifest (`backup_manifest.json` in the backup root), the pure planning
of what to copy, skip and prune from two listings (`plan_backup`), and the I/O that
carries a plan out (`run_backup`, `verify_backup`). Files land under
`{backup root}/data/`, mirroring the data root's layout. It never writes to the data root
and never deletes from the backup unless asked to prune, and then only files it wrote
itself (entries of its manifest) whose source is gone.

Safe beside a live recorder: part files (`*.part-NNNN.parquet`) and `*.tmp` files are
skipped (a recording is backed up once it is compacted into its final file); a source
that changes while it is copied is re-read once and otherwise skipped with a warning.
Every backup file is written through the project's one atomic writer, so a killed
backup leaves no partial file under a final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from ibdesk.errors import WorkFailedError
from ibdesk.store.export import BACKUP_SUBDIR, write_csv_atomic
from ibdesk.store.parquet import TMP_SUFFIX, atomic_file, write_json_atomic
from ibdesk.store.readers import DataKind, SchemaMismatchError, read_data

MANIFEST_NAME = "backup_manifest.json"
MANIFEST_VERSION = 1
_PART_RE = re.compile(r"\.part-\d{4,}\.parquet$")
_CHUNK_BYTES = 1 << 20
# The manifest is rewritten after this many copies, so a killed backup redoes little.
_MANIFEST_EVERY = 50
# Folders whose Parquet files `--format csv` writes as CSV (bars and signals).
_CSV_KINDS: dict[str, DataKind] = {"bars": DataKind.BARS, "signals": DataKind.SIGNALS}


class BackupFormat(StrEnum):
    PARQUET = "parquet"
    CSV = "csv"


class Action(StrEnum):
    COPY = "copy"  # new, or its size changed
    CHECK = "check"  # same size, other mtime: hash the source to know
    SKIP = "skip"  # same size and mtime as when backed up
    PRUNE = "prune"  # in the backup, gone from the source


class Outcome(StrEnum):
    COPIED = "copied"
    UNCHANGED = "unchanged"
    PRUNED = "pruned"
    WARNED = "warned"  # skipped: kept changing while it was read
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file of the data root: path relative to it (POSIX), size, mtime."""

    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One backup file: where it is (relative to the backup root), its bytes, its source."""

    path: str
    size: int
    sha256: str
    mtime_ns: int
    source_path: str
    source_size: int
    source_sha256: str
    source_mtime_ns: int

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "mtime_ns": self.mtime_ns,
            "source": {
                "path": self.source_path,
                "size": self.source_size,
                "sha256": self.source_sha256,
                "mtime_ns": self.source_mtime_ns,
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ManifestEntry:
        source = data["source"]
        return cls(
            str(data["path"]),
            int(data["size"]),
            str(data["sha256"]),
            int(data["mtime_ns"]),
            str(source["path"]),
            int(source["size"]),
            str(source["sha256"]),
            int(source["mtime_ns"]),
        )


@dataclass(frozen=True, slots=True)
class PlannedStep:
    action: Action
    target: str
    source: SourceFile | None = None


@dataclass(frozen=True, slots=True)
class BackupItem:
    target: str
    outcome: Outcome
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"path": self.target, "outcome": self.outcome.value, "message": self.message}


@dataclass(frozen=True, slots=True)
class BackupReport:
    backup_root: Path
    format: BackupFormat
    items: tuple[BackupItem, ...]

    def count(self, outcome: Outcome) -> int:
        return sum(1 for item in self.items if item.outcome is outcome)

    def having(self, outcome: Outcome) -> list[BackupItem]:
        return [item for item in self.items if item.outcome is outcome]

    def to_json(self) -> dict[str, Any]:
        return {
            "backup_root": str(self.backup_root),
            "format": self.format.value,
            "counts": {o.value: self.count(o) for o in Outcome},
            "files": [
                item.to_json() for item in self.items if item.outcome is not Outcome.UNCHANGED
            ],
        }


class Mismatch(StrEnum):
    MISSING = "missing"  # the backup file is gone
    BACKUP_CHANGED = "backup_changed"  # its bytes differ from what was written
    SOURCE_CHANGED = "source_changed"  # the source differs from what was backed up
    SOURCE_GONE = "source_gone"


@dataclass(frozen=True, slots=True)
class VerifyProblem:
    target: str
    problem: Mismatch

    def to_json(self) -> dict[str, str]:
        return {"path": self.target, "problem": self.problem.value}


@dataclass(frozen=True, slots=True)
class VerifyReport:
    backup_root: Path
    checked: int
    problems: tuple[VerifyProblem, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "backup_root": str(self.backup_root),
            "checked": self.checked,
            "problems": [p.to_json() for p in self.problems],
        }


# --- pure planning ------------------------------------------------------------------


def is_backed_up(relative: str) -> bool:
    """Whether a data-root file is mirrored: not a temp file, not a live recording's part."""
    name = PurePosixPath(relative).name
    return not name.endswith(TMP_SUFFIX) and _PART_RE.search(name) is None


def csv_kind(relative: str) -> DataKind | None:
    """The kind a file is read as when `--format csv` converts it (bars and signals)."""
    parts = PurePosixPath(relative).parts
    if not parts or not relative.endswith(".parquet"):
        return None
    return _CSV_KINDS.get(parts[0])


def target_of(relative: str, fmt: BackupFormat) -> str:
    """Path of a source file's backup, relative to the backup root."""
    target = PurePosixPath(BACKUP_SUBDIR) / relative
    if fmt is BackupFormat.CSV and csv_kind(relative) is not None:
        target = target.with_suffix(".csv")
    return target.as_posix()


def plan_backup(
    sources: Iterable[SourceFile],
    manifest: Mapping[str, ManifestEntry],
    fmt: BackupFormat,
    *,
    since_ns: int | None = None,
    prune: bool = False,
) -> list[PlannedStep]:
    """What to do for each file, from the data root's listing and the backup's manifest.

    Size and mtime equal to the manifest's record of the source: skip without hashing
    anything. Same size, other mtime: the source must be hashed (CHECK). Other size or no
    record: copy. `since_ns` limits copying to sources modified at or after it. Pruning
    removes manifest entries whose source is gone from the full listing, never files the
    manifest does not know.
    """
    steps: list[PlannedStep] = []
    present: set[str] = set()
    for source in sorted(sources, key=lambda s: s.path):
        if not is_backed_up(source.path):
            continue
        present.add(source.path)
        target = target_of(source.path, fmt)
        entry = manifest.get(target)
        if entry is not None and entry.source_path != source.path:
            entry = None
        if entry is not None and (entry.source_size, entry.source_mtime_ns) == (
            source.size,
            source.mtime_ns,
        ):
            steps.append(PlannedStep(Action.SKIP, target, source))
            continue
        if since_ns is not None and source.mtime_ns < since_ns:
            continue
        if entry is not None and entry.source_size == source.size:
            steps.append(PlannedStep(Action.CHECK, target, source))
        else:
            steps.append(PlannedStep(Action.COPY, target, source))
    if prune:
        for target, entry in sorted(manifest.items()):
            if entry.source_path not in present:
                steps.append(PlannedStep(Action.PRUNE, target))
    return steps


# --- I/O ----------------------------------------------------------------------------


def list_sources(root: Path, *, exclude: Path | None = None) -> list[SourceFile]:
    """Every regular file under `root` (relative POSIX paths), except under `exclude`."""
    found: list[SourceFile] = []
    if not root.is_dir():
        return found
    skip = exclude.resolve() if exclude is not None else None
    for folder, dirnames, filenames in os.walk(root):
        here = Path(folder)
        if skip is not None:
            dirnames[:] = [d for d in dirnames if (here / d).resolve() != skip]
        for name in filenames:
            path = here / name
            try:
                st = path.stat()
            except FileNotFoundError:
                continue  # removed while listing (a temp file renamed, a part compacted)
            if not path.is_file():
                continue
            relative = path.relative_to(root).as_posix()
            found.append(SourceFile(relative, st.st_size, st.st_mtime_ns))
    return found


def load_manifest(backup_root: Path) -> dict[str, ManifestEntry]:
    """The backup's manifest (empty when there is none yet)."""
    path = backup_root / MANIFEST_NAME
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = [ManifestEntry.from_json(e) for e in data["files"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise WorkFailedError(f"{path}: not a backup manifest ({exc})") from None
    return {e.path: e for e in entries}


def save_manifest(backup_root: Path, manifest: Mapping[str, ManifestEntry]) -> None:
    payload = {
        "version": MANIFEST_VERSION,
        "files": [manifest[k].to_json() for k in sorted(manifest)],
    }
    write_json_atomic(payload, backup_root / MANIFEST_NAME)


def hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _ChangedWhileReadError(Exception):
    """The source's size or mtime moved while it was read."""


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _copy_hashing(source: Path, handle: BinaryIO) -> str:
    digest = hashlib.sha256()
    with open(source, "rb") as src:
        for chunk in iter(lambda: src.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
            handle.write(chunk)
    return digest.hexdigest()


def _write_one(source: Path, target: Path, csv_as: DataKind | None) -> tuple[str, str, int, int]:
    """Back up one file atomically; (target sha, source sha, source size, source mtime).

    Raises _ChangedWhileReadError, leaving the previous backup in place, when the source
    moved while it was read.
    """
    before = _stamp(source)
    if csv_as is None:
        with atomic_file(target) as handle:
            source_sha = _copy_hashing(source, handle)
            if _stamp(source) != before:
                raise _ChangedWhileReadError
        os.utime(target, ns=(before[1], before[1]))
        target_sha = source_sha
    else:
        source_sha = hash_file(source)
        table = read_data(source, csv_as)
        if _stamp(source) != before:
            raise _ChangedWhileReadError
        write_csv_atomic(table, target)
        target_sha = hash_file(target)
    return target_sha, source_sha, before[0], before[1]


def _back_up(
    root: Path,
    backup_root: Path,
    step: PlannedStep,
    manifest: dict[str, ManifestEntry],
    fmt: BackupFormat,
) -> BackupItem:
    assert step.source is not None
    source = root / step.source.path
    target = backup_root / step.target
    if step.action is Action.CHECK:
        entry = manifest[step.target]
        try:
            if hash_file(source) == entry.source_sha256 and target.exists():
                manifest[step.target] = replace(entry, source_mtime_ns=step.source.mtime_ns)
                return BackupItem(step.target, Outcome.UNCHANGED)
        except FileNotFoundError:
            return BackupItem(step.target, Outcome.WARNED, f"{source}: gone while backing up")
    csv_as = csv_kind(step.source.path) if fmt is BackupFormat.CSV else None
    for attempt in (1, 2):
        try:
            target_sha, source_sha, size, mtime_ns = _write_one(source, target, csv_as)
        except _ChangedWhileReadError:
            if attempt == 2:
                return BackupItem(
                    step.target, Outcome.WARNED, f"{source}: kept changing while read; skipped"
                )
            continue
        except FileNotFoundError:
            return BackupItem(step.target, Outcome.WARNED, f"{source}: gone while backing up")
        except SchemaMismatchError as exc:
            return BackupItem(step.target, Outcome.FAILED, exc.message)
        except OSError as exc:
            return BackupItem(step.target, Outcome.FAILED, f"{target}: {exc.strerror or exc}")
        st = target.stat()
        manifest[step.target] = ManifestEntry(
            step.target,
            st.st_size,
            target_sha,
            st.st_mtime_ns,
            step.source.path,
            size,
            source_sha,
            mtime_ns,
        )
        return BackupItem(step.target, Outcome.COPIED)
    raise AssertionError("unreachable")


def _remove_leftover_temps(folder: Path) -> None:
    """Delete `*.tmp` files a killed backup left; sources named so are never backed up."""
    if folder.is_dir():
        for leftover in folder.rglob("*" + TMP_SUFFIX):
            leftover.unlink(missing_ok=True)


def run_backup(
    root: Path,
    backup_root: Path,
    fmt: BackupFormat,
    *,
    since_ns: int | None = None,
    prune: bool = False,
) -> BackupReport:
    """Mirror `root` into `backup_root/data/` incrementally; the manifest is kept current.

    A file that fails is reported and the others are still backed up. Temp files left by
    a killed earlier run are removed first. One backup at a time per backup root.
    """
    manifest = load_manifest(backup_root)
    _remove_leftover_temps(backup_root / BACKUP_SUBDIR)
    sources = list_sources(root, exclude=backup_root)
    items: list[BackupItem] = []
    copied_since_save = 0
    for step in plan_backup(sources, manifest, fmt, since_ns=since_ns, prune=prune):
        if step.action is Action.SKIP:
            items.append(BackupItem(step.target, Outcome.UNCHANGED))
            continue
        if step.action is Action.PRUNE:
            (backup_root / step.target).unlink(missing_ok=True)
            del manifest[step.target]
            items.append(BackupItem(step.target, Outcome.PRUNED))
            continue
        item = _back_up(root, backup_root, step, manifest, fmt)
        items.append(item)
        if item.outcome is Outcome.COPIED:
            copied_since_save += 1
            if copied_since_save >= _MANIFEST_EVERY:
                save_manifest(backup_root, manifest)
                copied_since_save = 0
    if manifest or (backup_root / MANIFEST_NAME).exists():
        save_manifest(backup_root, manifest)
    return BackupReport(backup_root, fmt, tuple(items))


def verify_backup(root: Path, backup_root: Path) -> VerifyReport:
    """Re-hash both sides of every manifest entry and name what no longer matches.

    A backup file whose bytes changed (or that is missing) is dropped from the manifest,
    so the next backup copies it again; a changed source is recopied by the next backup
    anyway. Nothing else is written.
    """
    manifest = load_manifest(backup_root)
    problems: list[VerifyProblem] = []
    for target, entry in sorted(manifest.items()):
        backup_file = backup_root / target
        if not backup_file.exists():
            problems.append(VerifyProblem(target, Mismatch.MISSING))
        elif hash_file(backup_file) != entry.sha256:
            problems.append(VerifyProblem(target, Mismatch.BACKUP_CHANGED))
        source = root / entry.source_path
        if not source.exists():
            problems.append(VerifyProblem(target, Mismatch.SOURCE_GONE))
        elif hash_file(source) != entry.source_sha256:
            problems.append(VerifyProblem(target, Mismatch.SOURCE_CHANGED))
    broken = {
        p.target for p in problems if p.problem in (Mismatch.MISSING, Mismatch.BACKUP_CHANGED)
    }
    if broken:
        save_manifest(backup_root, {k: v for k, v in manifest.items() if k not in broken})
    return VerifyReport(backup_root, len(manifest), tuple(problems))


def backup_json_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "a backup run (or with --verify, the problems found)",
        "oneOf": [
            {
                "properties": {
                    "backup_root": {"type": "string"},
                    "format": {"type": "string", "enum": [f.value for f in BackupFormat]},
                    "counts": {
                        "type": "object",
                        "properties": {o.value: {"type": "integer"} for o in Outcome},
                        "required": [o.value for o in Outcome],
                    },
                    "files": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "path": {"type": "string"},
                                "outcome": {"type": "string", "enum": [o.value for o in Outcome]},
                                "message": {"type": "string"},
                            },
                            "required": ["path", "outcome", "message"],
                        },
                    },
                },
                "required": ["backup_root", "format", "counts", "files"],
            },
            {
                "properties": {
                    "backup_root": {"type": "string"},
                    "checked": {"type": "integer"},
                    "problems": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "path": {"type": "string"},
                                "problem": {"type": "string", "enum": [m.value for m in Mismatch]},
                            },
                            "required": ["path", "problem"],
                        },
                    },
                },
                "required": ["backup_root", "checked", "problems"],
            },
        ],
    }
