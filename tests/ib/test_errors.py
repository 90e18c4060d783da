"""IB error taxonomy: every code the IB layer acts on maps to the right kind and action."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ibdesk.ib.errors import (
    NO_REQUEST_ID,
    IbError,
    IbErrorKind,
    IbRecovery,
    classify,
    code_info,
)

INFO, WARNING, REQUEST, CONN = (
    IbErrorKind.INFO,
    IbErrorKind.WARNING,
    IbErrorKind.REQUEST_ERROR,
    IbErrorKind.CONNECTIVITY,
)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (100, REQUEST),
        (162, REQUEST),
        (200, REQUEST),
        (309, REQUEST),
        (316, CONN),
        (317, CONN),
        (326, CONN),
        (502, CONN),
        (504, CONN),
        (1100, CONN),
        (1101, CONN),
        (1102, CONN),
        (2103, CONN),
        (2104, INFO),
        (2105, CONN),
        (2106, INFO),
        (2107, INFO),
        (2108, INFO),
        (2110, CONN),
        (2157, CONN),
        (2158, INFO),
    ],
)
def test_classify_known_codes(code: int, kind: IbErrorKind) -> None:
    assert classify(code) is kind


@pytest.mark.parametrize(
    ("code", "recovery"),
    [
        (326, IbRecovery.NEXT_CLIENT_ID),
        (1101, IbRecovery.RESUBSCRIBE),
        (1102, IbRecovery.NONE),
        (316, IbRecovery.RESUBSCRIBE),
        (317, IbRecovery.RESET_BOOK),
        (504, IbRecovery.RECONNECT),
        (200, IbRecovery.GIVE_UP),
        (100, IbRecovery.RETRY_LATER),
    ],
)
def test_recovery_of_codes_the_ib_layer_acts_on(code: int, recovery: IbRecovery) -> None:
    assert IbError.of(code, "text").recovery is recovery


@pytest.mark.parametrize(
    ("code", "kind"),
    [(2150, WARNING), (1300, CONN), (1350, CONN), (550, CONN), (420, REQUEST), (10999, REQUEST)],
)
def test_unlisted_codes_fall_back_by_range(code: int, kind: IbErrorKind) -> None:
    assert classify(code) is kind


def test_ib_error_keeps_code_text_and_request_id() -> None:
    text = "No security definition has been found for the request"
    error = IbError.of(200, text, req_id=7)
    assert (error.code, error.message, error.req_id, error.kind) == (200, text, 7, REQUEST)
    assert str(error) == f"IB error 200 (request 7): {text}"


def test_global_error_has_no_request_id() -> None:
    error = IbError.of(1100, "Connectivity between IB and Trader Workstation has been lost.")
    assert error.req_id == NO_REQUEST_ID
    assert error.is_global
    assert str(error).startswith("IB error 1100: ")


def test_162_pacing_text_is_a_pacing_violation_to_retry() -> None:
    error = IbError.of(
        162, "Historical Market Data Service error message:Historical data request pacing violation"
    )
    assert error.is_pacing_violation
    assert error.recovery is IbRecovery.RETRY_LATER


def test_162_without_pacing_text_is_not_retried() -> None:
    error = IbError.of(
        162, "Historical Market Data Service error message:HMDS query returned no data"
    )
    assert not error.is_pacing_violation
    assert error.recovery is IbRecovery.GIVE_UP


def test_ib_error_is_frozen() -> None:
    error = IbError.of(2104, "Market data farm connection is OK:usfarm")
    with pytest.raises(AttributeError):
        error.code = 1  # type: ignore[misc]


@given(st.integers(min_value=-10, max_value=100_000))
def test_every_code_has_a_kind_and_recovery(code: int) -> None:
    info = code_info(code)
    assert info.kind in set(IbErrorKind)
    assert info.recovery in set(IbRecovery)
    assert classify(code) is info.kind
