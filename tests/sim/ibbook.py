"""A client-side depth book with IB's row semantics, for checking what the sim streams."""

from __future__ import annotations

from itertools import pairwise

INSERT, UPDATE, DELETE = 0, 1, 2
ASK, BID = 0, 1


class RowBook:
    """Rows per side as IB defines them: insert shifts rows down, delete shifts them up."""

    def __init__(self) -> None:
        self.rows: dict[int, list[tuple[float, float]]] = {ASK: [], BID: []}

    def apply(self, position: int, operation: int, side: int, price: float, size: float) -> None:
        rows = self.rows[side]
        if operation == INSERT:
            assert position <= len(rows), f"insert at {position} beyond {len(rows)} rows"
            rows.insert(position, (price, size))
        elif operation == UPDATE:
            assert position < len(rows), f"update at {position} of {len(rows)} rows"
            rows[position] = (price, size)
        else:
            assert position < len(rows), f"delete at {position} of {len(rows)} rows"
            del rows[position]

    def check(self, max_rows: int) -> None:
        """Sorted, within `max_rows`, never crossed or locked."""
        bids = [p for p, _ in self.rows[BID]]
        asks = [p for p, _ in self.rows[ASK]]
        assert len(bids) <= max_rows
        assert len(asks) <= max_rows
        assert all(a > b for a, b in pairwise(bids)), bids
        assert all(a < b for a, b in pairwise(asks)), asks
        if bids and asks:
            assert bids[0] < asks[0], (bids[0], asks[0])
