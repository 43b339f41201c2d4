"""Dates and times: aware UTC out, Gregorian or Jalali in, the shop's zone for naive input."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from vafa.core.timeutil import DateError, format_date, get_zone, parse_date, parse_datetime

TEHRAN = ZoneInfo("Asia/Tehran")


@pytest.mark.parametrize(("raw", "expected"), [
    ("2025-03-20T10:00:00Z", datetime(2025, 3, 20, 10, 0, tzinfo=UTC)),
    ("2025-03-20T13:30:00+03:30", datetime(2025, 3, 20, 10, 0, tzinfo=UTC)),
    ("2025-03-20 13:30", datetime(2025, 3, 20, 10, 0, tzinfo=UTC)),  # naive: Tehran
    ("2025/03/20", datetime(2025, 3, 19, 20, 30, tzinfo=UTC)),  # a date: midnight in Tehran
    ("۲۰۲۵-۰۳-۲۰ ۱۳:۳۰", datetime(2025, 3, 20, 10, 0, tzinfo=UTC)),
])
def test_gregorian_timestamps_become_aware_utc(raw: str, expected: datetime) -> None:
    value = parse_datetime(raw, zone=TEHRAN)
    assert value == expected
    assert value.tzinfo is UTC


def test_jalali_dates_are_converted() -> None:
    # 1 Farvardin 1404 (Nowruz) is 21 March 2025 (jdatetime; Iran calendar authority).
    assert parse_datetime("۱۴۰۴/۰۱/۰۱", zone=TEHRAN, calendar="jalali") == datetime(
        2025, 3, 20, 20, 30, tzinfo=UTC)
    assert parse_datetime("1403-12-30 08:00", zone=TEHRAN, calendar="jalali") == datetime(
        2025, 3, 20, 4, 30, tzinfo=UTC)
    assert parse_date("1370/05/01", calendar="jalali") == date(1991, 7, 23)


def test_a_date_in_the_wrong_calendar_is_refused_with_a_hint() -> None:
    with pytest.raises(DateError, match="Jalali date"):
        parse_datetime("1403/05/01", zone=TEHRAN)
    with pytest.raises(DateError, match="Gregorian date"):
        parse_datetime("2025-01-01", zone=TEHRAN, calendar="jalali")
    with pytest.raises(DateError, match="implausible year 1370"):
        parse_date("1370-05-01")


@pytest.mark.parametrize("raw", ["", "yesterday", "2025-13-01", "1403/12/31"])
def test_unreadable_dates_are_refused(raw: str) -> None:
    calendar = "jalali" if raw.startswith("14") else "gregorian"
    with pytest.raises(DateError):
        parse_datetime(raw, zone=TEHRAN, calendar=calendar)


def test_unknown_zones_and_calendars_are_refused() -> None:
    with pytest.raises(DateError, match="unknown time zone"):
        get_zone("Mars/Olympus")
    with pytest.raises(DateError, match="unknown calendar"):
        parse_datetime("2025-01-01", zone=TEHRAN, calendar="hijri")


def test_dates_are_shown_in_jalali_with_persian_digits_for_persian_readers() -> None:
    assert format_date(date(2025, 3, 21), "fa") == "۱۴۰۴/۰۱/۰۱"
    assert format_date(date(2025, 3, 21), "ar") == "٢٠٢٥-٠٣-٢١"
    assert format_date(date(2025, 3, 21), "en") == "2025-03-21"
