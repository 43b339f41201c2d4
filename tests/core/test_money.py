"""Money as shops write it: Decimal amounts, separators, Persian digits, Toman."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vafa.core.money import (
    MoneyError,
    currency_exponent,
    normalize_currency,
    parse_amount,
    quantize,
)
from vafa.core.text import localize_digits


@pytest.mark.parametrize(("raw", "expected"), [
    ("120000", "120000"),
    ("1,250,000", "1250000"),
    ("۱۲۰٬۰۰۰", "120000"),
    ("١٢٣٫٥", "123.5"),
    ("12 000 تومان", "12000"),
    ("IRT 5,000", "5000"),
    ("1'234.50", "1234.50"),
    ("1\u202f234", "1234"),
    (12.5, "12.5"),
    (0.1, "0.1"),
    (7, "7"),
])
def test_amounts_are_read_as_exact_decimals(raw: str | float, expected: str) -> None:
    assert parse_amount(raw) == Decimal(expected)


@pytest.mark.parametrize("raw", ["1,5", "1.234,56", "12,34", "abc", "", "NaN", "Infinity",
                                 "1e5", "--1"])
def test_ambiguous_or_unreadable_amounts_are_refused(raw: str) -> None:
    with pytest.raises(MoneyError):
        parse_amount(raw)


def test_negative_amounts_need_permission() -> None:
    with pytest.raises(MoneyError):
        parse_amount("-3")
    assert parse_amount("-3", allow_negative=True) == Decimal(-3)


@given(st.integers(min_value=0, max_value=10**15), st.sampled_from(["en", "fa", "ar"]))
def test_any_grouped_whole_amount_reads_back_in_any_digits(value: int, language: str) -> None:
    written = localize_digits(f"{value:,}", language)
    assert parse_amount(written) == value


def test_toman_and_rial_are_first_class_currencies() -> None:
    assert normalize_currency("toman") == "IRT"
    assert normalize_currency("تومان") == "IRT"
    assert normalize_currency(" rial ") == "IRR"
    assert normalize_currency("usd") == "USD"
    assert (currency_exponent("IRT"), currency_exponent("KWD"), currency_exponent("EUR")) == (
        0, 3, 2)


def test_unknown_currencies_are_refused() -> None:
    with pytest.raises(MoneyError, match="unknown currency"):
        normalize_currency("XYZ")


def test_amounts_round_half_up_to_the_currency_minor_unit() -> None:
    assert quantize(Decimal("12.345"), "USD") == Decimal("12.35")
    assert quantize(Decimal("1000.5"), "IRT") == Decimal("1001")
    assert quantize(Decimal("1.0005"), "KWD") == Decimal("1.001")
