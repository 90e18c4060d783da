"""The pacing checker the sim uses (pure)."""

from __future__ import annotations

from ibdesk.ib.pacing import HistoricalRequestKey, PacingLedger, PacingRule, PacingRules


def _key(duration: str = "1800 S", what: str = "TRADES", con_id: int = 1) -> HistoricalRequestKey:
    return HistoricalRequestKey(con_id, "SMART", what, "", duration, "5 secs", True)


def test_identical_request_inside_the_window_is_refused_and_allowed_after() -> None:
    ledger = PacingLedger(PacingRules())
    assert ledger.admit(_key(), 0.0, 1) is None
    violation = ledger.check(_key(), 14.9)
    assert violation is not None
    assert violation.rule is PacingRule.IDENTICAL
    assert ledger.check(_key(), 15.0) is None


def test_sixth_same_contract_request_within_two_seconds_is_refused() -> None:
    ledger = PacingLedger(PacingRules())
    for i in range(5):
        assert ledger.admit(_key(f"{60 + i} S"), i * 0.1, i) is None
    violation = ledger.check(_key("99 S"), 0.6)
    assert violation is not None
    assert violation.rule is PacingRule.SAME_CONTRACT


def test_bid_ask_counts_twice() -> None:
    ledger = PacingLedger(PacingRules(same_contract_max=3))
    assert ledger.admit(_key("60 S", "BID_ASK"), 0.0, 1) is None
    violation = ledger.check(_key("61 S", "BID_ASK"), 0.1)
    assert violation is not None
    assert violation.rule is PacingRule.SAME_CONTRACT


def test_rolling_window_limit() -> None:
    ledger = PacingLedger(PacingRules(rolling_max=3, same_contract_window_s=0.0))
    for i in range(3):
        assert ledger.admit(_key(f"{60 + i} S", con_id=i), float(i * 20), i) is None
    violation = ledger.check(_key("99 S", con_id=9), 100.0)
    assert violation is not None
    assert violation.rule is PacingRule.ROLLING
    assert ledger.check(_key("99 S", con_id=9), 600.0) is None


def test_open_requests_limit_and_close() -> None:
    ledger = PacingLedger(PacingRules(max_open=1))
    assert ledger.admit(_key("60 S"), 0.0, 1) is None
    violation = ledger.check(_key("61 S", con_id=2), 0.0)
    assert violation is not None
    assert violation.rule is PacingRule.MAX_OPEN
    ledger.close(1)
    assert ledger.check(_key("61 S", con_id=2), 0.0) is None
