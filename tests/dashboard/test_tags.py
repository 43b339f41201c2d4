"""The dashboard's formatting tags write numbers, money and dates as each language does."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import translation
from django.utils.timezone import override as timezone_override

TEMPLATE = Template(
    "{% load dashboard_format %}{% num value %}|{% num ratio 2 %}|{% percent share %}|"
    "{% money amount currency %}|{% jdate day %}"
)
VALUES = {
    "value": 1234567,
    "ratio": 1.5,
    "share": 42.25,
    "amount": Decimal("12345.60"),
    "currency": "IRT",
    "day": dt.date(2025, 3, 21),
}


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        # 2025-03-21 is 1 Farvardin 1404, the Persian new year.
        ("fa", "۱٬۲۳۴٬۵۶۷|۱٫۵۰|۴۲٫۳٪|۱۲٬۳۴۶ تومان|۱۴۰۴/۰۱/۰۱"),
        ("ar", "١٬٢٣٤٬٥٦٧|١٫٥٠|٤٢٫٣٪|١٢٬٣٤٦ تومان|٢٠٢٥-٠٣-٢١"),
        ("en", "1,234,567|1.50|42.3%|12,346 toman|2025-03-21"),
    ],
)
def test_tags_localise_digits_separators_money_and_dates(lang: str, expected: str) -> None:
    with translation.override(lang):
        assert TEMPLATE.render(Context(VALUES)) == expected


def test_tags_leave_missing_values_empty() -> None:
    blank = {key: None for key in VALUES}
    with translation.override("fa"):
        assert TEMPLATE.render(Context(blank)) == "||||"


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        # 2025-03-20 22:05 UTC is 21 March 01:35 in Tehran (UTC+3:30): 1 Farvardin 1404.
        ("fa", "۱۴۰۴/۰۱/۰۱ ۰۱:۳۵|C-۱۰۰۱|۶۴٪||"),
        ("en", "2025-03-21 01:35|C-1001|64%|Product view|At risk"),
    ],
)
def test_moments_ids_probabilities_and_labels_read_as_each_language_writes_them(
    lang: str, expected: str
) -> None:
    template = Template(
        "{% load dashboard_format %}{% when moment %}|{% digits ident %}|{% percent_of p %}|"
        "{{ kind|event_label }}|{{ segment|segment_label }}"
    )
    context = Context({"moment": dt.datetime(2025, 3, 20, 22, 5, tzinfo=dt.UTC),
                       "ident": "C-1001", "p": 0.6372, "kind": "product_view",
                       "segment": "at_risk"})
    with translation.override(lang), timezone_override("Asia/Tehran"):
        rendered = template.render(context)
    when, ident, share, event, segment = rendered.split("|")
    expected_parts = expected.split("|")
    assert [when, ident, share] == expected_parts[:3]
    if lang == "en":  # the labels' Persian wording comes from the shared catalogue
        assert [event, segment] == expected_parts[3:]
