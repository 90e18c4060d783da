"""The domain package stays dependency-free: standard library only, plus `ibdesk.errors`.

Read from the source with `ast` (every import statement, including ones inside functions),
so a forbidden import fails here even if nothing happens to execute it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import ibdesk.domain
import ibdesk.errors

DOMAIN_DIR = Path(ibdesk.domain.__file__).parent
DOMAIN_FILES = sorted(DOMAIN_DIR.glob("*.py"))
# The one ibdesk module the domain may use: the error hierarchy, itself stdlib-only.
ALLOWED_IBDESK = ("ibdesk.domain", "ibdesk.errors")


def imported_modules(source: str) -> list[str]:
    """Absolute names of every module `source` imports (`from x import y` gives `x`)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: inside ibdesk.domain
                names.append(f"ibdesk.domain.{module}")
            elif module == "ibdesk":
                names.extend(f"ibdesk.{alias.name}" for alias in node.names)
            else:
                names.append(module)
    return names


def forbidden(names: list[str], allowed_ibdesk: tuple[str, ...]) -> list[str]:
    """The names that are neither standard library nor one of `allowed_ibdesk`."""
    bad: list[str] = []
    for name in names:
        top = name.split(".")[0]
        if top == "ibdesk":
            if not any(name == a or name.startswith(a + ".") for a in allowed_ibdesk):
                bad.append(name)
        elif top not in sys.stdlib_module_names:
            bad.append(name)
    return bad


def test_the_checker_catches_third_party_and_ibdesk_imports() -> None:
    source = "import numpy\nfrom ibdesk.ib import pacing\nfrom ibdesk import store\nimport re\n"
    assert forbidden(imported_modules(source), ALLOWED_IBDESK) == [
        "numpy",
        "ibdesk.ib",
        "ibdesk.store",
    ]


def test_the_domain_package_has_its_modules() -> None:
    assert {p.name for p in DOMAIN_FILES} >= {"__init__.py", "hours.py", "bars.py", "book.py"}


@pytest.mark.parametrize("path", DOMAIN_FILES, ids=lambda p: p.name)
def test_a_domain_module_imports_only_the_standard_library(path: Path) -> None:
    assert forbidden(imported_modules(path.read_text()), ALLOWED_IBDESK) == []


def test_the_error_hierarchy_the_domain_uses_imports_only_the_standard_library() -> None:
    source = Path(ibdesk.errors.__file__).read_text()
    assert forbidden(imported_modules(source), ()) == []
