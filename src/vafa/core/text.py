"""Real-world Persian and Arabic text: digits, letter variants, phone numbers.

Shops export what their staff typed: Persian digits (۰–۹), Arabic-Indic digits (٠–٩), Arabic
yeh/kaf (ي ك) where Persian uses ی ک, stray zero-width characters. These helpers turn that into
one canonical form before anything is stored or compared.
"""

from __future__ import annotations

import re
import unicodedata

import phonenumbers

_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
_PERSIAN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
_ARABIC_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
# Arabic letter variants that Persian writes differently. Applied only to Persian text: in Arabic
# names ي and ك are the correct letters.
_ARABIC_TO_PERSIAN_LETTERS = str.maketrans({"ي": "ی", "ك": "ک", "ى": "ی", "ە": "ه"})
_INVISIBLES = re.compile("[\u200b\u200e\u200f\u202a-\u202e\ufeff]")
_SPACES = re.compile(r"\s+")


def normalize_digits(text: str) -> str:
    """Turn Persian and Arabic-Indic digits into ASCII digits; leave everything else alone."""
    return text.translate(_DIGITS)


def localize_digits(text: str, language: str) -> str:
    """Show ASCII digits as the language writes them: Persian (fa), Arabic-Indic (ar), else ASCII."""
    if language == "fa":
        return text.translate(_PERSIAN_DIGITS)
    if language == "ar":
        return text.translate(_ARABIC_DIGITS)
    return text


_NUMBER_MARKS = str.maketrans({"%": "٪", ",": "٬", ".": "٫"})


def localize_number(text: str, language: str) -> str:
    """Show a formatted number (`1,234.5`, `95%`) as the language writes it: Persian or
    Arabic-Indic digits with the Arabic percent sign and separators (٪ ٬ ٫) in fa and ar.
    Only for text that is a number; words would get their dots replaced too."""
    if language not in ("fa", "ar"):
        return text
    return localize_digits(text.translate(_NUMBER_MARKS), language)


def normalize_name(text: str, *, language: str | None = "fa") -> str:
    """Canonical form of a person's or product's name.

    NFC, no bidi marks or zero-width spaces (ZWNJ, which Persian needs inside words, is kept),
    single spaces, and for Persian (the default: most shops we serve write Persian) Arabic yeh/kaf
    replaced by their Persian forms so that «علي» and «علی» are the same customer.
    """
    value = unicodedata.normalize("NFC", text)
    value = _INVISIBLES.sub("", value)
    value = _SPACES.sub(" ", value).strip()
    if language != "ar":
        value = value.translate(_ARABIC_TO_PERSIAN_LETTERS)
    return value


class PhoneError(ValueError):
    """A phone number that cannot be turned into E.164."""


def normalize_phone(text: str, *, default_region: str = "IR") -> str:
    """Return the phone number in E.164 (`+98912…`), reading Persian/Arabic digits and local forms.

    `۰۹۱۲۳۴۵۶۷۸۹`, `09123456789`, `9123456789`, `0098 912 345 6789` and `+98 912 345 6789` all
    give `+989123456789`.
    """
    # Spreadsheet exports (Shopify's among them) prefix numbers with ' to keep the leading +/0.
    raw = normalize_digits(text).strip().lstrip("'").strip()
    if not raw:
        raise PhoneError("empty phone number")
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise PhoneError(f"cannot read phone number {text!r}: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise PhoneError(f"not a valid phone number: {text!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
