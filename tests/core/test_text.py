"""Persian and Arabic text: digits, letter variants, phone numbers."""

from __future__ import annotations

import pytest

from vafa.core.text import (
    PhoneError,
    localize_digits,
    normalize_digits,
    normalize_name,
    normalize_phone,
)


def test_persian_and_arabic_indic_digits_become_ascii() -> None:
    assert normalize_digits("۰۱۲۳۴۵۶۷۸۹ ٠١٢٣٤٥٦٧٨٩ abc") == "0123456789 0123456789 abc"


def test_digits_are_shown_as_the_language_writes_them() -> None:
    assert localize_digits("2025", "fa") == "۲۰۲۵"
    assert localize_digits("2025", "ar") == "٢٠٢٥"
    assert localize_digits("2025", "en") == "2025"


def test_arabic_yeh_and_kaf_become_persian_for_persian_names() -> None:
    assert normalize_name("  علي   كريمي ") == "علی کریمی"


def test_arabic_names_keep_their_letters() -> None:
    assert normalize_name("علي الكعبي", language="ar") == "علي الكعبي"


def test_bidi_marks_are_dropped_but_the_zero_width_non_joiner_persian_needs_is_kept() -> None:
    assert normalize_name("\u200fمی\u200cخواهم\u200e") == "می\u200cخواهم"


@pytest.mark.parametrize("raw", [
    "۰۹۱۲۳۴۵۶۷۸۹", "09123456789", "9123456789", "0098 912 345 6789", "+98 912 345 6789",
    "'+989123456789", "٠٩١٢٣٤٥٦٧٨٩",
])
def test_iranian_mobile_numbers_in_any_form_become_e164(raw: str) -> None:
    assert normalize_phone(raw) == "+989123456789"


def test_a_number_with_its_own_country_code_keeps_it() -> None:
    assert normalize_phone("+1 613 612 0707") == "+16136120707"
    assert normalize_phone("(613) 612-0707", default_region="CA") == "+16136120707"


@pytest.mark.parametrize("raw", ["", "12", "not a phone", "0912"])
def test_unreadable_phones_are_refused(raw: str) -> None:
    with pytest.raises(PhoneError):
        normalize_phone(raw)


@pytest.mark.parametrize(
    ("text", "language", "shown"),
    [("95%", "fa", "۹۵٪"), ("1,234.5", "fa", "۱٬۲۳۴٫۵"), ("1,234.5", "ar", "١٬٢٣٤٫٥"),
     ("1,234.5", "en", "1,234.5")],
)
def test_numbers_are_shown_as_the_language_writes_them(text: str, language: str,
                                                        shown: str) -> None:
    from vafa.core.text import localize_number

    assert localize_number(text, language) == shown
