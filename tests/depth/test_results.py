"""Cases of `ibdesk.depth.results`: the one value the results derive themselves."""

from __future__ import annotations

from dataclasses import replace

from ibdesk.depth.analysis import analyze
from tests.depth.helpers import book

DAY = book(
    [
        (0.0, [(10.00, 100.0)], [(10.02, 100.0)]),
        (0.5, [(10.00, 150.0)], [(10.02, 100.0)]),  # +50
    ]
)


def test_ofi_total_is_the_total_of_the_first_level() -> None:
    result = analyze([DAY], None, 1)
    assert result.ofi_total == result.book.ofi_levels[0].total == 50.0


def test_ofi_total_without_ofi_levels_is_zero() -> None:
    result = analyze([DAY], None, 1)
    without_levels = replace(result, book=replace(result.book, ofi_levels=()))
    assert without_levels.ofi_total == 0.0
