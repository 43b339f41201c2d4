"""When a lot of points expires, under each of the program's expiry policies.

Pure date arithmetic (no database), so the rules can be read and tested on their own. Times are
aware; calendar years are counted in the shop's time zone because "the end of the year" is a
local moment (Nowruz in Tehran, 1 January in Berlin), then converted back to UTC.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, tzinfo

import jdatetime

from vafa.loyalty.models import Calendar, ExpiryPolicy


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` plus whole calendar months, clamping the day (31 Jan + 1 month = 28/29 Feb)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def year_end(moment: datetime, *, cal: str, zone: tzinfo, years_after: int = 0) -> datetime:
    """The first instant of the year after `moment`'s year (+ `years_after`), in UTC.

    With the Jalali calendar that is 1 Farvardin (Nowruz) at 00:00 in `zone`; with the Gregorian
    one 1 January at 00:00 in `zone`.
    """
    local = moment.astimezone(zone)
    if cal == Calendar.JALALI:
        jalali_year = jdatetime.date.fromgregorian(date=local.date()).year
        start = jdatetime.date(jalali_year + 1 + years_after, 1, 1).togregorian()
    elif cal == Calendar.GREGORIAN:
        start = local.date().replace(year=local.year + 1 + years_after, month=1, day=1)
    else:
        raise ValueError(f"unknown calendar {cal!r}")
    return datetime(start.year, start.month, start.day, tzinfo=zone).astimezone(UTC)


def lot_expires_at(
    *, policy: str, earned_at: datetime, months: int, cal: str, zone: tzinfo, years_after: int
) -> datetime | None:
    """The expiry of points earned at `earned_at`; `None` means they never expire.

    For `inactivity` this is only the first expiry: each later activity of the member moves it
    (see `services`).
    """
    if policy in (ExpiryPolicy.ROLLING, ExpiryPolicy.INACTIVITY):
        return add_months(earned_at, months)
    if policy == ExpiryPolicy.YEAR_END:
        return year_end(earned_at, cal=cal, zone=zone, years_after=years_after)
    if policy == ExpiryPolicy.NEVER:
        return None
    raise ValueError(f"unknown expiry policy {policy!r}")
