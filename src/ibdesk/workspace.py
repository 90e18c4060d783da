"""`ibdesk setup`: create the folders and `.env` (from the generated example); install nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ibdesk.config import Settings, render_env_example
from ibdesk.doctor import folders


@dataclass(slots=True)
class SetupResult:
    created_folders: list[Path] = field(default_factory=list)
    env_file: Path | None = None


def prepare(settings: Settings, workdir: Path) -> SetupResult:
    """Create missing folders and `.env`; existing files are never overwritten."""
    result = SetupResult()
    for path in folders(settings).values():
        if not path.exists():
            path.mkdir(parents=True, exist_ok=True)
            result.created_folders.append(path)
    env_file = workdir / ".env"
    if not env_file.exists():
        env_file.write_text(render_env_example(), encoding="utf-8")
        env_file.chmod(0o600)
        result.env_file = env_file
    return result
