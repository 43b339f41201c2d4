"""Gregorian dates of Iranian calendar holidays the synthetic shop's seasonality follows.

Nowruz (1 Farvardin) falls on 20 or 21 March depending on the moment of the vernal equinox; the
table below was computed with ``jdatetime`` (the project's Jalali library) and is stored here so that
the generator needs only the standard library. Yalda night is 30 Azar, a fixed 275 days after
1 Farvardin because the first nine Persian months have fixed lengths.
"""

from __future__ import annotations

from datetime import date, timedelta

_FIRST_TABLE_YEAR = 1990
# One digit per Gregorian year from 1990: 0 means Nowruz is on 20 March, 1 means 21 March.
_NOWRUZ_MARCH_DAY_MINUS_20 = (
    "1111110111011101110111011101110111011100110011001100110011001100110011000100010001000100010"
)
_YALDA_AFTER_NOWRUZ = timedelta(days=275)


def nowruz(year: int) -> date:
    """1 Farvardin falling in Gregorian `year` (21 March outside the 1990–2080 table)."""
    index = year - _FIRST_TABLE_YEAR
    if 0 <= index < len(_NOWRUZ_MARCH_DAY_MINUS_20):
        return date(year, 3, 20 + int(_NOWRUZ_MARCH_DAY_MINUS_20[index]))
    return date(year, 3, 21)


def yalda(year: int) -> date:
    """The day whose evening is Yalda night (30 Azar) in Gregorian `year`."""
    return nowruz(year) + _YALDA_AFTER_NOWRUZ


def black_friday(year: int) -> date:
    """The Friday after the fourth Thursday of November, which Iranian web shops also run sales on."""
    first = date(year, 11, 1)
    first_thursday = first + timedelta(days=(3 - first.weekday()) % 7)
    return first_thursday + timedelta(days=22)
