"""IB's historical-data pacing rules, as data, shared by the client scheduler and the sim.

Pure: no I/O, no clock of its own (callers pass times in seconds). The same `PacingRules`
value drives `ibdesk sim` (which answers a violation with error 162) and the scheduler of
the IB layer (which spaces requests so IB never has to refuse one). Tests scale the rules
down with `PacingRules.scaled()` so they do not wait ten minutes.

Rules (IB "Historical Data Limitations", bars of 30 seconds or less):
- no identical request within 15 s;
- no 6 or more requests for the same contract, exchange and tick type within 2 s;
- no more than 60 requests within any 10-minute period;
- no more than 50 requests open at once;
- a BID_ASK request counts twice.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PacingRules:
    """The limits, in seconds and counts; `weight_bid_ask` is how much a BID_ASK request counts."""

    identical_window_s: float = 15.0
    same_contract_window_s: float = 2.0
    same_contract_max: int = 5  # 6 or more within the window is a violation
    rolling_window_s: float = 600.0
    rolling_max: int = 60
    max_open: int = 50
    weight_bid_ask: int = 2
    small_bar_max_s: float = 30.0  # the rules apply to bars of this size or smaller

    def scaled(self, factor: float) -> PacingRules:
        """The same rules with every time window multiplied by `factor` (counts unchanged)."""
        return PacingRules(
            identical_window_s=self.identical_window_s * factor,
            same_contract_window_s=self.same_contract_window_s * factor,
            same_contract_max=self.same_contract_max,
            rolling_window_s=self.rolling_window_s * factor,
            rolling_max=self.rolling_max,
            max_open=self.max_open,
            weight_bid_ask=self.weight_bid_ask,
            small_bar_max_s=self.small_bar_max_s,
        )


IB_PACING_RULES = PacingRules()


@dataclass(frozen=True, slots=True)
class HistoricalRequestKey:
    """What makes two historical requests "identical" or "for the same contract" to IB."""

    con_id: int
    exchange: str
    what_to_show: str
    end: str
    duration: str
    bar_size: str
    use_rth: bool

    @property
    def contract_key(self) -> tuple[int, str, str]:
        return (self.con_id, self.exchange, self.what_to_show)

    @property
    def weight(self) -> int:
        return 2 if self.what_to_show.upper() == "BID_ASK" else 1
