"""Money: `Decimal` amounts with their currency, never floats.

Toman (`IRT`) is not in ISO 4217 but is what Iranian merchants and customers think in; Vafa treats
it as a first-class currency with zero minor units (1 Toman = 10 Rial).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

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


def normalize_currency(code: str) -> str:
    """Upper-case and validate a currency code (ISO 4217 or IRT)."""
    value = (code or "").strip().upper()
    if value in {"TOMAN", "تومان"}:
        return "IRT"
    if value in {"RIAL", "ریال"}:
        return "IRR"
    if value not in KNOWN_CURRENCIES:
        raise MoneyError(f"unknown currency {code!r} (use an ISO 4217 code or IRT for Toman)")
    return value


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round an amount to the currency's minor unit (half up, as shops and tax offices do)."""
    exponent = CURRENCY_EXPONENTS.get(currency, 2)
    return amount.quantize(Decimal(1).scaleb(-exponent), rounding=ROUND_HALF_UP)


def parse_amount(text: str | int | Decimal, *, allow_negative: bool = False) -> Decimal:
    """Read an amount as a shop exports it.

    Accepts Persian/Arabic digits, thousands separators (`,`, `٬`, `،`, thin and normal spaces, `'`),
    the Arabic decimal separator `٫`, and a trailing or leading currency word. A lone `.` or `,`
    followed by exactly three digits is ambiguous; we read `,` as a thousands separator and `.` as
    the decimal point, which is what every export we have seen does.
    """
    if isinstance(text, Decimal):
        value = text
    elif isinstance(text, int):
        value = Decimal(text)
    else:
        cleaned = normalize_digits(str(text)).strip()
        for word in ("تومان", "ریال", "IRT", "IRR", "Toman", "Rial"):
            cleaned = cleaned.replace(word, "")
        cleaned = cleaned.replace("٫", ".")
        for sep in (",", "٬", "،", "'", "\u00a0", "\u202f", "\u2009", " "):
            cleaned = cleaned.replace(sep, "")
        if not cleaned:
            raise MoneyError("empty amount")
        try:
            value = Decimal(cleaned)
        except InvalidOperation:
            raise MoneyError(f"not a number: {text!r}") from None
    if not value.is_finite():
        raise MoneyError(f"not a finite amount: {text!r}")
    if value < 0 and not allow_negative:
        raise MoneyError(f"negative amount: {text!r}")
    return value
