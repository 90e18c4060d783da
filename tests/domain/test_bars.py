"""IB durations and bar sizes (`ibdesk.domain.bars`): parsing, step sizes, bar counts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ibdesk.domain.bars import (
    BAR_SIZES,
    BarSize,
    BarUnit,
    Duration,
    DurationUnit,
    expected_bar_count,
    expected_bar_count_for,
    max_duration,
    parse_bar_size,
    parse_duration,
)
from ibdesk.errors import UserInputError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 D", Duration(1, DurationUnit.DAYS)),
        ("5 D", Duration(5, DurationUnit.DAYS)),
        ("1 W", Duration(1, DurationUnit.WEEKS)),
        ("2 M", Duration(2, DurationUnit.MONTHS)),
        ("1 Y", Duration(1, DurationUnit.YEARS)),
        ("3600 S", Duration(3600, DurationUnit.SECONDS)),
        ("  30d ", Duration(30, DurationUnit.DAYS)),
    ],
)
def test_parse_duration_accepts_ib_forms(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected


def test_duration_text_is_ibs_spelling() -> None:
    assert str(parse_duration("30d")) == "30 D"


@pytest.mark.parametrize("text", ["", "D", "0 D", "-1 D", "1 X", "1.5 D", "1 DD", "one day"])
def test_parse_duration_rejects_bad_text_naming_it(text: str) -> None:
    with pytest.raises(UserInputError) as raised:
        parse_duration(text)
    assert repr(text) in raised.value.message
    assert '"3600 S"' in raised.value.message


@pytest.mark.parametrize(
    ("text", "canonical", "seconds"),
    [
        ("1 secs", "1 secs", 1),
        ("1 sec", "1 secs", 1),
        ("5 secs", "5 secs", 5),
        ("1 min", "1 min", 60),
        ("5 mins", "5 mins", 300),
        ("5 min", "5 mins", 300),
        ("1 hour", "1 hour", 3600),
        ("2 hours", "2 hours", 7200),
        ("1 day", "1 day", 86_400),
        ("1_min", "1 min", 60),
        ("1 MIN", "1 min", 60),
    ],
)
def test_parse_bar_size_normalizes_to_ib_spelling(text: str, canonical: str, seconds: int) -> None:
    bar = parse_bar_size(text)
    assert str(bar) == canonical
    assert bar.seconds == seconds


def test_bar_size_folder_name_uses_underscores() -> None:
    assert parse_bar_size("5 mins").folder_name == "5_mins"
    assert parse_bar_size("1 day").folder_name == "1_day"


@pytest.mark.parametrize("text", ["7 mins", "1 m", "0 min", "min", "1 fortnight", "90 secs"])
def test_parse_bar_size_rejects_illegal_sizes_listing_legal_ones(text: str) -> None:
    with pytest.raises(UserInputError) as raised:
        parse_bar_size(text)
    assert repr(text) in raised.value.message
    assert '"1 min"' in raised.value.message
    assert '"1 hour"' in raised.value.message


@given(st.sampled_from(BAR_SIZES))
def test_every_legal_bar_size_round_trips_through_its_text(bar: BarSize) -> None:
    assert parse_bar_size(str(bar)) == bar
    assert parse_bar_size(bar.folder_name) == bar


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from(list(DurationUnit)))
def test_every_duration_round_trips_through_its_text(count: int, unit: DurationUnit) -> None:
    duration = Duration(count, unit)
    assert parse_duration(str(duration)) == duration


@pytest.mark.parametrize(
    ("bar", "longest"),
    [
        ("1 secs", "1800 S"),
        ("5 secs", "3600 S"),
        ("10 secs", "14400 S"),
        ("15 secs", "14400 S"),
        ("30 secs", "28800 S"),
        ("1 min", "1 D"),
        ("2 mins", "2 D"),
        ("5 mins", "1 W"),
        ("20 mins", "1 W"),
        ("30 mins", "1 M"),
        ("1 hour", "1 M"),
        ("1 day", "1 Y"),
    ],
)
def test_max_duration_follows_ibs_step_size_table(bar: str, longest: str) -> None:
    assert str(max_duration(parse_bar_size(bar))) == longest


@pytest.mark.parametrize(
    ("bar", "count"),
    [("1 min", 390), ("5 mins", 78), ("30 mins", 13), ("1 hour", 7), ("2 hours", 4), ("1 day", 1)],
)
def test_expected_bar_count_of_a_regular_session(bar: str, count: int) -> None:
    assert expected_bar_count(parse_bar_size(bar)) == count


def test_expected_bar_count_of_an_extended_session() -> None:
    # 04:00-20:00 New York: 16 hours of 1-minute bars.
    assert expected_bar_count(parse_bar_size("1 min"), 4 * 3600, 20 * 3600) == 960


def test_expected_bar_count_for_durations() -> None:
    one_min = parse_bar_size("1 min")
    assert expected_bar_count_for(parse_duration("1 D"), one_min) == 390
    assert expected_bar_count_for(parse_duration("5 D"), one_min) == 1950
    assert expected_bar_count_for(parse_duration("1 W"), one_min) == 1950
    assert expected_bar_count_for(parse_duration("1800 S"), one_min) == 30
    assert expected_bar_count_for(parse_duration("86400 S"), one_min) == 390


def test_bar_unit_values_are_ib_words() -> None:
    assert BarSize(1, BarUnit.WEEKS).folder_name == "1_week"
