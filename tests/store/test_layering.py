"""The store sits below the IB layer: no module of `ibdesk.store` imports `ibdesk.ib`.

Checked on the source with `ast` (imports inside functions included), so the rule holds
even for code paths no other test executes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ibdesk.store

STORE_FILES = sorted(Path(ibdesk.store.__file__).parent.glob("*.py"))


def ib_imports(source: str) -> list[str]:
    """Every import of `ibdesk.ib` (or a module under it) in `source`."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "ibdesk":
                names = [f"ibdesk.{alias.name}" for alias in node.names]
            else:
                names = [node.module]
        else:
            continue
        found.extend(n for n in names if n == "ibdesk.ib" or n.startswith("ibdesk.ib."))
    return found


def test_the_checker_finds_every_spelling_of_an_ib_import() -> None:
    source = (
        "import ibdesk.ib.pacing\n"
        "from ibdesk.ib.durations import parse_bar_size\n"
        "from ibdesk import ib\n"
        "def f():\n    from ibdesk.ib import requests\n"
        "from ibdesk import ibx\nimport ibdesk.store\n"
    )
    assert ib_imports(source) == [
        "ibdesk.ib.pacing",
        "ibdesk.ib.durations",
        "ibdesk.ib",
        "ibdesk.ib",
    ]


def test_the_store_package_has_modules_to_check() -> None:
    assert {"bars.py", "layout.py", "parquet.py"} <= {p.name for p in STORE_FILES}


@pytest.mark.parametrize("path", STORE_FILES, ids=lambda p: p.name)
def test_a_store_module_does_not_import_the_ib_layer(path: Path) -> None:
    assert ib_imports(path.read_text()) == []
