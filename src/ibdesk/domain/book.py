"""IB's depth-book codes, shared by the book rebuilt from IB (`depth/book.py`) and the sim.

Dependency-free. The int values are IB's wire values (`updateMktDepth` operation and side)
and the values stored in raw depth messages, so hot paths may compare plain ints against
`int(DepthOp.INSERT)` etc.; never renumber them.
"""

from __future__ import annotations

from enum import IntEnum


class DepthOp(IntEnum):
    """IB's depth `operation` field."""

    INSERT = 0
    UPDATE = 1
    DELETE = 2


class BookSide(IntEnum):
    """IB's depth `side` field."""

    ASK = 0
    BID = 1
