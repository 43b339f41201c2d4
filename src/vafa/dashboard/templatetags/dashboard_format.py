"""Template tags that show numbers, money and dates as the active language writes them.

`{% num value %}`, `{% num value 2 %}`, `{% percent value %}`, `{% money value "IRT" %}` and
`{% jdate value %}` format with the offline report's `Localizer` (Persian digits and separators
in fa, Arabic-Indic in ar) and `core.timeutil.format_date` (Jalali in fa).
"""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils.translation import get_language

from vafa.core.timeutil import format_date
from vafa.dashboard.overview import localizer

register = template.Library()


@register.simple_tag
def num(value: object, decimals: int = 0) -> str:
    """A number grouped and in the active language's digits; empty for None."""
    if value is None or value == "":
        return ""
    return localizer(get_language()).number(value, decimals)


@register.simple_tag
def percent(value: object, decimals: int = 1) -> str:
    """A percentage on the 0–100 scale in the active language."""
    if value is None or value == "":
        return ""
    return localizer(get_language()).percent(value, decimals)


@register.simple_tag
def money(value: object, currency: str | None = None) -> str:
    """An amount with its currency (toman, rial, …) in the active language."""
    if value is None or value == "":
        return ""
    return localizer(get_language()).money(value, currency)


@register.simple_tag
def jdate(value: dt.date | dt.datetime | None) -> str:
    """A date: Jalali with Persian digits in fa, ISO with Arabic-Indic digits in ar, ISO in en."""
    if value is None:
        return ""
    return format_date(value, localizer(get_language()).lang)
