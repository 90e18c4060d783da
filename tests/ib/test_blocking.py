"""The blocking facade, from plain synchronous code, against `ibdesk sim`."""

from __future__ import annotations

from typing import Any

import pytest

from ibdesk.config import load_settings
from ibdesk.ib.blocking import BlockingIB
from ibdesk.ib.contracts import UnknownContractError, stock


def test_blocking_facade_qualifies_and_fetches_bars(sim: Any) -> None:
    with BlockingIB(load_settings(), port=sim.port) as ib:
        contract = ib.qualify(stock("MSFT"))
        assert contract.conId > 0
        bars = ib.fetch_bars(contract, "1 D", "5 mins")
        assert bars.num_rows == 78
        with pytest.raises(UnknownContractError, match="NOPE2"):
            ib.qualify(stock("NOPE2"))
