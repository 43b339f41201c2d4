"""Reading and showing dates: aware datetimes stored in UTC, Gregorian or Jalali input.

A timestamp without an offset is read in the shop's time zone (what a merchant's export means),
then converted to UTC for storage.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jdatetime

from vafa.core.text import localize_digits, normalize_digits


class DateError(ValueError):
    """A date or time that cannot be read."""


# Years a shop's data can plausibly carry. Outside them the calendar is almost surely wrong: a
# Jalali date read as Gregorian lands in the 1300s/1400s, a Gregorian one read as Jalali in 2600+.
GREGORIAN_YEARS = (1900, 2200)
JALALI_YEARS = (1279, 1579)

_JALALI = re.compile(
    r"^(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})"
    r"(?:[ T](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?)?$"
)


def get_zone(name: str) -> ZoneInfo:
    """A `ZoneInfo` for an IANA name, with a clear error for a bad one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DateError(f"unknown time zone {name!r}") from None


def parse_datetime(text: str, *, zone: tzinfo, calendar: str = "gregorian") -> datetime:
    """Read a timestamp or a date and return it aware, in UTC.

    Gregorian input is ISO 8601 (`2025-03-20`, `2025-03-20 14:05`, `2025-03-20T14:05:00Z`,
    `…+03:30`, also with `/`). Jalali input (`calendar="jalali"`) is `1404/01/01` or
    `1404-01-01 14:05[:00]`. Persian and Arabic digits are accepted either way. A timestamp without
    an offset, or a date alone (midnight), is read in `zone`. A year outside the calendar's
    plausible range is refused with a hint, so a Jalali file read as Gregorian fails loudly
    instead of storing orders from the year 1403.
    """
    raw = text.strip() if text.isascii() else normalize_digits(text).strip()
    if not raw:
        raise DateError("empty date")
    if calendar == "jalali":
        return _parse_jalali(raw, text, zone)
    if calendar != "gregorian":
        raise DateError(f"unknown calendar {calendar!r} (gregorian or jalali)")
    try:
        value = datetime.fromisoformat(raw)  # the common case, as fast as it gets
    except ValueError:
        candidate = raw.replace("z", "Z")
        if "/" in candidate and len(candidate) >= 8:
            candidate = candidate.replace("/", "-")
        try:
            value = datetime.fromisoformat(candidate)
        except ValueError:
            raise DateError(f"not an ISO 8601 date or time: {text!r}") from None
    if not GREGORIAN_YEARS[0] <= value.year <= GREGORIAN_YEARS[1]:
        hint = " (a Jalali date? use the Jalali calendar)" if value.year < 1700 else ""
        raise DateError(f"implausible year {value.year} in {text!r}{hint}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def _parse_jalali(raw: str, text: str, zone: tzinfo) -> datetime:
    match = _JALALI.match(raw)
    if not match:
        raise DateError(f"not a Jalali date (expected 1404/01/31 [HH:MM]): {text!r}")
    parts = {k: int(v) for k, v in match.groupdict().items() if v is not None}
    if not JALALI_YEARS[0] <= parts["y"] <= JALALI_YEARS[1]:
        hint = " (a Gregorian date? drop the Jalali calendar)" if parts["y"] > 1700 else ""
        raise DateError(f"implausible Jalali year {parts['y']} in {text!r}{hint}")
    try:
        gregorian = jdatetime.date(parts["y"], parts["m"], parts["d"]).togregorian()
        local = datetime.combine(
            gregorian, time(parts.get("H", 0), parts.get("M", 0), parts.get("S", 0))
        )
    except ValueError as exc:
        raise DateError(f"not a valid Jalali date {text!r}: {exc}") from None
    return local.replace(tzinfo=zone).astimezone(UTC)


def parse_date(text: str, *, calendar: str = "gregorian") -> date:
    """Read a calendar date (e.g. a birth date) in either calendar, returned as Gregorian.

    A time part, if any, is ignored; the date is taken as written (no time-zone shift).
    """
    raw = normalize_digits(text).strip()
    if calendar == "jalali":
        return parse_datetime(raw[:10], zone=UTC, calendar="jalali").date()
    if calendar != "gregorian":
        raise DateError(f"unknown calendar {calendar!r} (gregorian or jalali)")
    try:
        value = date.fromisoformat(raw.replace("/", "-")[:10])
    except ValueError:
        raise DateError(f"not a date (expected YYYY-MM-DD): {text!r}") from None
    if not GREGORIAN_YEARS[0] <= value.year <= GREGORIAN_YEARS[1]:
        hint = " (a Jalali date? use the Jalali calendar)" if value.year < 1700 else ""
        raise DateError(f"implausible year {value.year} in {text!r}{hint}")
    return value


def format_date(value: date | datetime, language: str, *, zone: tzinfo | None = None) -> str:
    """Show a date as the language expects it: Jalali with Persian digits in fa, else ISO digits
    localised (Arabic-Indic in ar)."""
    if isinstance(value, datetime):
        value = (value.astimezone(zone) if zone else value).date()
    if language == "fa":
        text = jdatetime.date.fromgregorian(date=value).strftime("%Y/%m/%d")
    else:
        text = value.isoformat()
    return localize_digits(text, language)
