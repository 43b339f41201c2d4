"""Template tags that show numbers, money and dates as the active language writes them.

`{% num value %}`, `{% num value 2 %}`, `{% percent value %}`, `{% money value "IRT" %}` and
`{% jdate value %}`, `{% when value %}` format with the offline report's `Localizer` (Persian digits and separators
in fa, Arabic-Indic in ar) and `core.timeutil.format_date` (Jalali in fa).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django import template
from django.utils import timezone
from django.utils.translation import get_language

from vafa.core.text import localize_digits
from vafa.core.timeutil import format_date
from vafa.customers.models import Channel, EventType
from vafa.dashboard.overview import localizer
from vafa.insights.models import RfmSegment

register = template.Library()


@register.simple_tag
def num(value: object, decimals: int = 0) -> str:
    """A number grouped and in the active language's digits; empty for None."""
    if value is None or value == "":
        return ""
    return localizer(get_language()).number(value, decimals)


@register.simple_tag
def factor(value: object) -> str:
    """A factor such as a tier's points multiplier, with exactly the decimals it has (1.25 stays
    1.25, 1.50 shows 1.5), in the active language's digits; empty for None."""
    if value is None or value == "":
        return ""
    exact = Decimal(str(value)).normalize()
    decimals = max(0, -int(exact.as_tuple().exponent))
    return localizer(get_language()).number(exact, decimals)


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


@register.simple_tag
def when(value: dt.datetime | None) -> str:
    """A moment in the shop's time zone: its date as `jdate` shows it, then the hour and minute
    in the active language's digits (`۱۴۰۴/۰۱/۱۵ ۱۴:۰۵` in fa)."""
    if value is None:
        return ""
    local = timezone.localtime(value)
    lang = localizer(get_language()).lang
    return f"{format_date(local, lang)} {localize_digits(local.strftime('%H:%M'), lang)}"


@register.filter
def event_label(kind: str) -> str:
    """The name of a known event type in the active language; a shop's own types as sent."""
    return str(dict(EventType.choices).get(kind, kind))


@register.filter
def channel_label(channel: str) -> str:
    """The name of a messaging channel (email, SMS, …) in the active language."""
    return str(dict(Channel.choices).get(channel, channel))


@register.filter
def segment_label(segment: str) -> str:
    """The name of an RFM segment in the active language ("—" for none)."""
    return str(dict(RfmSegment.choices).get(segment, segment)) if segment else "—"


@register.simple_tag
def percent_of(value: object, decimals: int = 0) -> str:
    """A probability or share on the 0–1 scale as a percentage in the active language."""
    if value is None or value == "":
        return ""
    return localizer(get_language()).percent(Decimal(str(value)) * 100, decimals)


@register.simple_tag
def digits(value: object) -> str:
    """An identifier or phone number with its digits in the active language's script."""
    return localize_digits(str(value), localizer(get_language()).lang)


@register.simple_tag
def reason_of(labels: dict[int, str], entry: object) -> str:
    """A ledger entry's reason in words (`Customer360.point_reasons`), or as written."""
    return labels.get(getattr(entry, "pk", 0), str(getattr(entry, "reason", "")))
