"""When points expire, under each policy (pure date arithmetic)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from vafa.loyalty.expiry import add_months, lot_expires_at, year_end

TEHRAN = ZoneInfo("Asia/Tehran")  # UTC+03:30 all year since 2022


def test_adding_months_clamps_to_the_end_of_a_shorter_month() -> None:
    assert add_months(datetime(2024, 1, 31, 9, tzinfo=UTC), 1) == datetime(
        2024, 2, 29, 9, tzinfo=UTC
    )
    assert add_months(datetime(2025, 1, 31, 9, tzinfo=UTC), 1) == datetime(
        2025, 2, 28, 9, tzinfo=UTC
    )
    assert add_months(datetime(2025, 11, 15, tzinfo=UTC), 14) == datetime(2027, 1, 15, tzinfo=UTC)


def test_jalali_year_end_expiry_is_nowruz_midnight_in_tehran() -> None:
    earned = datetime(2025, 3, 1, 12, tzinfo=UTC)  # 11 Esfand 1403
    # 1 Farvardin 1404 = 21 March 2025, 00:00 in Tehran = 20 March 20:30 UTC.
    assert year_end(earned, cal="jalali", zone=TEHRAN) == datetime(2025, 3, 20, 20, 30, tzinfo=UTC)
    assert year_end(earned, cal="jalali", zone=TEHRAN, years_after=1) == datetime(
        2026, 3, 20, 20, 30, tzinfo=UTC
    )


def test_the_year_is_counted_in_the_shops_time_zone() -> None:
    # 31 Dec 22:00 UTC is already 1 January 01:30 in Tehran: the points belong to the new year.
    earned = datetime(2025, 12, 31, 22, tzinfo=UTC)
    assert year_end(earned, cal="gregorian", zone=TEHRAN) == datetime(
        2026, 12, 31, 20, 30, tzinfo=UTC
    )


def test_each_policy_gives_its_expiry() -> None:
    earned = datetime(2025, 3, 1, 12, tzinfo=UTC)
    common: dict[str, Any] = {
        "earned_at": earned,
        "months": 6,
        "cal": "gregorian",
        "zone": TEHRAN,
        "years_after": 0,
    }
    assert lot_expires_at(policy="rolling", **common) == datetime(2025, 9, 1, 12, tzinfo=UTC)
    assert lot_expires_at(policy="inactivity", **common) == datetime(2025, 9, 1, 12, tzinfo=UTC)
    assert lot_expires_at(policy="year_end", **common) == datetime(2025, 12, 31, 20, 30, tzinfo=UTC)
    assert lot_expires_at(policy="never", **common) is None
