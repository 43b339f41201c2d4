"""Cohorts by month of first purchase: retention, revenue retention, cumulative revenue."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vafa.analytics.cohorts import cohort_matrix, cohort_table
from vafa.analytics.errors import InputError
from vafa.analytics.io import read_transactions

DATA = read_transactions(
    pd.DataFrame(
        [
            ("a", "2024-01-05", 10.0),
            ("a", "2024-01-20", 10.0),
            ("a", "2024-03-02", 30.0),
            ("b", "2024-01-31", 20.0),
            ("b", "2024-02-01", 5.0),
            ("c", "2024-02-14", 40.0),
            ("c", "2024-03-31", 20.0),
        ],
        columns=["customer_id", "placed_at", "total"],
    )
)


def test_the_tidy_table_has_one_row_per_cohort_and_observed_month() -> None:
    table = cohort_table(DATA)

    cells = table[["cohort", "months_since_first"]].astype(str).agg(" +".join, axis=1).tolist()
    assert cells == ["2024-01-01 +0", "2024-01-01 +1", "2024-01-01 +2", "2024-02-01 +0",
                     "2024-02-01 +1"]  # fmt: skip
    january = table[table["cohort"] == pd.Timestamp("2024-01-01")]
    assert january["cohort_size"].tolist() == [2, 2, 2]
    assert january["active_customers"].tolist() == [2, 1, 1]
    assert january["retention_rate"].tolist() == [100.0, 50.0, 50.0]
    assert january["revenue"].tolist() == [40.0, 5.0, 30.0]
    assert january["revenue_retention_rate"].tolist() == pytest.approx([100.0, 12.5, 75.0])
    assert january["cumulative_revenue_per_customer"].tolist() == pytest.approx([20, 22.5, 37.5])


def test_the_month_holding_as_of_is_incomplete_and_later_months_are_absent() -> None:
    table = cohort_table(DATA, as_of="2024-02-20")

    assert table["months_since_first"].max() == 1
    assert table.loc[table["cohort"] == pd.Timestamp("2024-02-01"), "complete"].tolist() == [False]
    assert table.loc[table["cohort"] == pd.Timestamp("2024-01-01"), "complete"].tolist() == [
        True,
        False,
    ]


def test_a_month_in_which_nobody_bought_is_a_zero_not_a_gap() -> None:
    data = read_transactions(
        pd.DataFrame(
            [("a", "2024-01-05", 1.0), ("a", "2024-03-05", 1.0)],
            columns=["customer_id", "placed_at", "total"],
        )
    )

    table = cohort_table(data)

    assert table["retention_rate"].tolist() == [100.0, 0.0, 100.0]


def test_the_wide_matrix_is_a_triangle_with_cohort_sizes() -> None:
    wide = cohort_matrix(cohort_table(DATA), "retention_rate")

    assert wide["cohort_size"].tolist() == [2, 1]
    assert wide[0].tolist() == [100.0, 100.0]
    assert wide.loc[pd.Timestamp("2024-01-01"), 2] == 50.0
    assert np.isnan(wide.loc[pd.Timestamp("2024-02-01"), 2])  # not yet observed


def test_cdnow_has_three_cohorts_holding_every_customer(cdnow_dir: Path) -> None:
    data = read_transactions(cdnow_dir / "CDNOW_master.txt", format="cdnow")

    table = cohort_table(data)

    sizes = table.drop_duplicates("cohort")["cohort_size"]
    # README: 23,570 customers, all first buying in 1997 Q1; observed to the end of June 1998
    assert sizes.sum() == 23_570
    assert table["cohort"].dt.strftime("%Y-%m").unique().tolist() == [
        "1997-01",
        "1997-02",
        "1997-03",
    ]
    assert table["months_since_first"].max() == 17
    assert (table.loc[table["months_since_first"] == 0, "retention_rate"] == 100.0).all()


def test_it_refuses_an_unknown_value() -> None:
    with pytest.raises(InputError, match="value must be one of"):
        cohort_matrix(cohort_table(DATA), "profit")  # type: ignore[arg-type]
