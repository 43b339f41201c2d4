"""Money: `Decimal` amounts with their currency, never floats.

Toman (`IRT`) is not in ISO 4217 but is what Iranian merchants and customers think in; Vafa treats
it as a first-class currency with zero minor units (1 Toman = 10 Rial).
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

from vafa.core.text import normalize_digits

# Minor units per currency (ISO 4217 exponent). Unlisted ISO codes default to 2.
CURRENCY_EXPONENTS: dict[str, int] = {
    "IRR": 0,
    "IRT": 0,
    "JPY": 0,
    "KRW": 0,
    "IQD": 0,
    "KWD": 3,
    "BHD": 3,
    "OMR": 3,
    "JOD": 3,
    "TND": 3,
    "LYD": 3,
}

# Every ISO 4217 active code a shop is likely to use, plus Toman. Kept explicit so a typo fails.
KNOWN_CURRENCIES = frozenset(
    """
    AED AFN ALL AMD ARS AUD AZN BAM BDT BGN BHD BRL BYN CAD CHF CLP CNY COP CZK DKK DZD EGP EUR GBP
    GEL HKD HUF IDR ILS INR IQD IRR IRT ISK JOD JPY KES KGS KRW KWD KZT LBP LKR LYD MAD MDL MXN MYR
    NGN NOK NZD OMR PEN PHP PKR PLN QAR RON RSD RUB SAR SDG SEK SGD SYP THB TJS TMT TND TRY TWD UAH
    USD UZS VND YER ZAR
    """.split()
)


class MoneyError(ValueError):
    """An amount or currency that cannot be read."""


# Spellings of the two Iranian currencies that shops type instead of a code.
_CURRENCY_WORDS = {"TOMAN": "IRT", "تومان": "IRT", "RIAL": "IRR", "ریال": "IRR"}
_QUANTUM = {exponent: Decimal(1).scaleb(-exponent) for exponent in range(4)}
# Thousands separators seen in exports: comma, Arabic thousands separator, Arabic comma,
# apostrophe (Swiss), and the spaces (normal, no-break, narrow no-break, thin).
_GROUP_SEPARATORS = ",٬،'\u00a0\u202f\u2009 "
_PLAIN = re.compile(r"[+-]?\d+(?:\.\d+)?")
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:[,٬،'\u00a0\u202f\u2009 ]\d{3})+(?:\.\d+)?")
_WORDS = ("تومان", "ریال", "IRT", "IRR", "Toman", "Rial", "toman", "rial")


def normalize_currency(code: str) -> str:
    """Upper-case and validate a currency code (ISO 4217 or IRT)."""
    value = (code or "").strip()
    if value in KNOWN_CURRENCIES:  # the common case, without allocating
        return value
    value = value.upper()
    value = _CURRENCY_WORDS.get(value, value)
    if value not in KNOWN_CURRENCIES:
        raise MoneyError(f"unknown currency {code!r} (use an ISO 4217 code or IRT for Toman)")
    return value


def currency_exponent(currency: str) -> int:
    """Digits after the decimal point in the currency's minor unit (ISO 4217; 2 when unlisted)."""
    return CURRENCY_EXPONENTS.get(currency, 2)


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round an amount to the currency's minor unit (half up, as shops and tax offices do)."""
    return amount.quantize(_QUANTUM[CURRENCY_EXPONENTS.get(currency, 2)], rounding=ROUND_HALF_UP)


def parse_amount(text: str | int | float | Decimal, *, allow_negative: bool = False) -> Decimal:
    """Read an amount as a shop exports it.

    Accepts Persian/Arabic digits, thousands separators (`,`, `٬`, `،`, `'`, normal, thin and
    no-break spaces), the Arabic decimal separator `٫`, and a leading or trailing currency word
    (`تومان`, `ریال`, `IRT`…). The decimal point is `.` (or `٫`). Thousands separators must
    separate groups of exactly three digits: `1,5` or `1.234,56` are refused rather than guessed,
    because reading a decimal comma as a thousands separator silently multiplies money.
    """
    if isinstance(text, Decimal):
        value = text
    elif isinstance(text, int):
        value = Decimal(text)
    elif isinstance(text, float):
        # JSON numbers arrive as floats; repr() is the shortest string that round-trips.
        value = Decimal(repr(text))
    else:
        raw = str(text)
        if raw.isascii() and _PLAIN.fullmatch(raw.strip()):
            value = Decimal(raw)  # the common case: plain ASCII digits, no separators
        else:
            value = _parse_amount_text(raw)
    if not value.is_finite():
        raise MoneyError(f"not a finite amount: {text!r}")
    if value < 0 and not allow_negative:
        raise MoneyError(f"negative amount: {text!r}")
    return value


def _parse_amount_text(text: str) -> Decimal:
    """The slow path of `parse_amount`: digits, words and separators as people type them."""
    cleaned = normalize_digits(text)
    for word in _WORDS:
        cleaned = cleaned.replace(word, "")
    cleaned = cleaned.replace("٫", ".").strip().strip("\u200f\u200e")
    if not cleaned:
        raise MoneyError("empty amount")
    if _PLAIN.fullmatch(cleaned):
        return Decimal(cleaned)
    if _GROUPED.fullmatch(cleaned):
        for sep in _GROUP_SEPARATORS:
            cleaned = cleaned.replace(sep, "")
        return Decimal(cleaned)
    raise MoneyError(
        f"not an amount: {text!r} (digits, '.' for decimals, thousands separators between "
        "groups of three digits)"
    )
