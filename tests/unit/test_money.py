"""Tests for hatchery.domain.money: integer micro-dollars in, fixed-decimal strings out."""

from __future__ import annotations

import pytest

from hatchery.domain.money import (
    MICROS_PER_DOLLAR,
    format_balance,
    format_cost,
    format_webhook_cost,
    parse_dollars,
)


def test_one_dollar_is_a_million_micros() -> None:
    assert MICROS_PER_DOLLAR == 1_000_000


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("10.00", 10_000_000),
        ("$0.0160", 16_000),
        ("5", 5_000_000),
        ("0.000001", 1),
        ("0", 0),
        ("0.0100", 10_000),
        ("  $1.5  ", 1_500_000),
        ("123.456789", 123_456_789),
    ],
)
def test_parse_dollars(text: str, micros: int) -> None:
    assert parse_dollars(text) == micros
    assert isinstance(parse_dollars(text), int)


@pytest.mark.parametrize("text", ["abc", "", "$", "1.2.3", "$$5", "five", "1,00"])
def test_parse_dollars_rejects_non_numbers(text: str) -> None:
    with pytest.raises(ValueError, match="not an amount of dollars"):
        parse_dollars(text)


@pytest.mark.parametrize("text", ["NaN", "nan", "inf", "-Infinity", "$Infinity", "sNaN"])
def test_parse_dollars_rejects_non_finite_values(text: str) -> None:
    with pytest.raises(ValueError, match="not an amount of dollars"):
        parse_dollars(text)


@pytest.mark.parametrize("text", ["1.0000001", "0.0000005", "$0.01600001"])
def test_parse_dollars_rejects_sub_micro_precision(text: str) -> None:
    with pytest.raises(ValueError, match="more than 6 decimal places"):
        parse_dollars(text)


def test_parse_dollars_error_names_the_input() -> None:
    with pytest.raises(ValueError, match=r"'abc'"):
        parse_dollars("abc")


def test_trailing_zeros_beyond_six_places_are_fine() -> None:
    # The value, not the spelling, decides: 0.0100000000 is exactly 10_000 micros.
    assert parse_dollars("0.0100000000") == 10_000


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        (0, "$0.00"),
        (10_000, "$0.0100"),
        (400_000, "$0.4000"),
        (16_000, "$0.0160"),
        (1_000_000, "$1.0000"),
        (12_345_678_900, "$12345.6789"),
    ],
)
def test_format_cost(micros: int, text: str) -> None:
    assert format_cost(micros) == text


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        # 1/10000 dollar is 100 micros: below that, amounts round half up to 4 places.
        (49, "$0.0000"),
        (50, "$0.0001"),
        (149, "$0.0001"),
        (150, "$0.0002"),
        (16_049, "$0.0160"),
        (16_050, "$0.0161"),
        (999_950, "$1.0000"),
    ],
)
def test_format_cost_rounds_half_up_to_four_places(micros: int, text: str) -> None:
    assert format_cost(micros) == text


def test_format_cost_zero_is_short_but_tiny_nonzero_is_four_places() -> None:
    assert format_cost(0) == "$0.00"
    assert format_cost(1) == "$0.0000"


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        (0, "$0.0000"),
        (9_990_000, "$9.9900"),
        (10_000_000, "$10.0000"),
        (-10_000, "-$0.0100"),
        (-2_500_000, "-$2.5000"),
        (-16_050, "-$0.0161"),
    ],
)
def test_format_balance(micros: int, text: str) -> None:
    assert format_balance(micros) == text


def test_format_balance_rounds_negative_amounts_symmetrically() -> None:
    for micros in (50, 149, 16_050, 1_234_567):
        assert format_balance(-micros) == "-" + format_balance(micros)


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        (10_000, "0.010000"),
        (0, "0.000000"),
        (16_000, "0.016000"),
        (1, "0.000001"),
        (1_234_567, "1.234567"),
        (80_000 * 5 * 2, "0.800000"),
    ],
)
def test_format_webhook_cost(micros: int, text: str) -> None:
    assert format_webhook_cost(micros) == text


@pytest.mark.parametrize("text", ["0.0100", "$0.0160", "0.000001", "12.5", "0"])
def test_webhook_cost_round_trips_through_parse(text: str) -> None:
    micros = parse_dollars(text)
    assert parse_dollars(format_webhook_cost(micros)) == micros


@pytest.mark.parametrize(
    "text", ["1.00000000000000000000000000001", "12345678901234567890123.4567891"]
)
def test_sub_micro_digits_are_refused_however_long_the_amount(text: str) -> None:
    with pytest.raises(ValueError, match="6 decimal places"):
        parse_dollars(text)


def test_a_negative_amount_that_rounds_to_zero_has_no_sign() -> None:
    assert format_balance(-40) == "$0.0000"


@pytest.mark.parametrize("text", ["1e999999", "1e-999999999", "-1E+31"])
def test_an_exponent_beyond_any_amount_is_no_amount(text: str) -> None:
    with pytest.raises(ValueError, match="not an amount of dollars"):
        parse_dollars(text)
