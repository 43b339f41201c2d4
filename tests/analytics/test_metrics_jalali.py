"""Solar Hijri (Jalali) reporting periods: months, seasons and years as Iranian merchants count them.

Reference dates (Iran's official calendar): 1 Farvardin 1403 = 2024-03-20, 1 Tir 1403 =
2024-06-21, 1 Mehr 1403 = 2024-09-22, 1 Dey 1403 = 2024-12-21, 1 Farvardin 1404 = 2025-03-21,
1 Ordibehesht 1404 = 2025-04-21, 1 Esfand 1403 = 2025-02-19.
"""

from __future__ import annotations

import pandas as pd
import pytest

from vafa.analytics import metrics
from vafa.analytics.errors import InputError
from vafa.analytics.io import read_transactions


def transactions(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return read_transactions(pd.DataFrame(rows, columns=["customer_id", "placed_at", "total"]))


SHOP = transactions(
    [
        ("ana", "2024-03-19", 10.0),  # last day of 1402 (29 Esfand)
        ("ana", "2024-03-20", 20.0),  # Nowruz 1403
        ("bahram", "2024-06-20", 30.0),  # last day of spring 1403
        ("bahram", "2024-06-21", 40.0),  # first day of summer 1403
        ("sara", "2025-03-20", 50.0),  # last day of 1403
        ("sara", "2025-05-10", 60.0),
    ]
)


def test_jalali_seasons_start_on_farvardin_tir_mehr_and_dey() -> None:
    frame = metrics.average_order_value(SHOP, period="JQ", as_of="2025-05-10")
    starts = [d.date().isoformat() for d in frame["period_start"]]
    assert starts == ["2023-12-22", "2024-03-20", "2024-06-21", "2024-09-22", "2024-12-21",
                      "2025-03-21"]
    # each purchase on the edge of a season falls on its own side of it
    assert frame["revenue"].tolist() == [10.0, 50.0, 40.0, 0.0, 50.0, 60.0]
    assert frame["complete"].tolist() == [True] * 5 + [False]


def test_jalali_periods_match_the_same_boundaries_given_as_dates() -> None:
    explicit = ["2024-02-20", "2024-03-20", "2024-04-20", "2024-05-21", "2024-06-21",
                "2024-07-22"]
    by_name = metrics.average_order_value(SHOP, period="JM", as_of="2024-07-21")
    by_dates = metrics.average_order_value(SHOP, period=explicit, as_of="2024-07-21")
    pd.testing.assert_frame_equal(by_name.reset_index(drop=True), by_dates.reset_index(drop=True))


def test_kpi_table_compares_the_last_complete_jalali_month_with_the_one_before() -> None:
    table = metrics.kpi_table(SHOP, period="JM", as_of="2025-05-10")
    assert table.attrs["current_start"] == "2025-03-21"  # Farvardin 1404
    assert table.attrs["current_end"] == "2025-04-20"
    assert table.attrs["previous_start"] == "2025-02-19"  # Esfand 1403
    revenue = table.set_index("metric").loc["revenue"]
    assert (revenue["current"], revenue["previous"]) == (0.0, 50.0)


def test_a_jalali_year_runs_from_nowruz_to_nowruz() -> None:
    frame = metrics.average_order_value(SHOP, period="JY", as_of="2025-05-10")
    assert [d.date().isoformat() for d in frame["period_start"]] == [
        "2023-03-21", "2024-03-20", "2025-03-21"]
    assert frame["revenue"].tolist() == [10.0, 140.0, 60.0]


def test_an_unknown_period_name_is_refused_with_the_choices() -> None:
    with pytest.raises(InputError, match="'JM', 'JQ', 'JY'"):
        metrics.average_order_value(SHOP, period="JW")  # type: ignore[arg-type]
