"""Cohort analysis by month of first purchase (K4): who keeps buying, and what they keep spending.

A customer's *cohort* is the local calendar month (in the shop's zone ``tz``) of their first
purchase; month ``k`` is the k-th calendar month after it (k = 0 is the first month itself). For
each cohort and k:

* ``active_customers``: cohort members who bought in month k;
* ``retention_rate`` = active_customers / cohort_size × 100 (100 at k = 0 by construction);
* ``revenue``: what the cohort spent in month k;
* ``revenue_retention_rate`` = revenue / revenue at k = 0 × 100 (can exceed 100: a cohort may
  spend more later than in its first month);
* ``cumulative_revenue_per_customer``: everything the cohort spent up to and including month k,
  divided by its size (the curve a CLV estimate should match).

Cells after ``as_of`` are not observed and are absent from the tidy table (NaN in the wide one),
never zero: a zero would read as "everyone left". The month holding ``as_of`` is marked
``complete=False``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from vafa.analytics.errors import InputError
from vafa.analytics.io import DateLike
from vafa.analytics.summary import PurchaseHistory, purchase_history

__all__ = ["COHORT_VALUES", "cohort_matrix", "cohort_table"]

CohortValue = Literal[
    "retention_rate",
    "revenue_retention_rate",
    "cumulative_revenue_per_customer",
    "active_customers",
    "revenue",
]
COHORT_VALUES: tuple[str, ...] = (
    "retention_rate",
    "revenue_retention_rate",
    "cumulative_revenue_per_customer",
    "active_customers",
    "revenue",
)


def _month_index(days: np.ndarray) -> np.ndarray:
    """Months since January 1970 of each local day."""
    dates = np.datetime64("1970-01-01", "D") + days.astype("timedelta64[D]")
    return dates.astype("datetime64[M]").astype(np.int64)


def cohort_table(
    transactions: pd.DataFrame | pa.Table | PurchaseHistory,
    *,
    as_of: DateLike | None = None,
    tz: str = "UTC",
) -> pd.DataFrame:
    """Return the tidy cohort table: one row per cohort and observed month since first purchase.

    Columns: ``cohort`` (first day of the cohort's month), ``months_since_first`` (k),
    ``cohort_size``, ``active_customers``, ``retention_rate``, ``revenue``,
    ``revenue_retention_rate``, ``cumulative_revenue_per_customer`` and ``complete``.
    """
    history = purchase_history(transactions, as_of=as_of, tz=tz)
    last_month = int(_month_index(np.array([history.as_of]))[0])
    first_month = _month_index(history.first_day)
    month = _month_index(history.day)
    # occasions are sorted by customer then day, so a customer's months never go back
    new_month = np.r_[True, (history.code[1:] != history.code[:-1]) | (month[1:] != month[:-1])]
    cohort_of = first_month[history.code]
    oldest = int(first_month.min())
    width = last_month - oldest + 1
    cell = (cohort_of - oldest) * width + (month - cohort_of)
    active = np.bincount(cell[new_month], minlength=width * width)
    revenue = np.bincount(cell, weights=history.amount, minlength=width * width)
    sizes = pd.Series(first_month).value_counts().rename("cohort_size")
    # every observed (cohort, k) cell, including months in which nobody bought
    pairs = [(c, k) for c in sorted(sizes.index) for k in range(last_month - c + 1)]
    cells = np.array([(c - oldest) * width + k for c, k in pairs], dtype=np.int64)
    table = pd.DataFrame(
        {
            "cohort": [c for c, _ in pairs],
            "k": [k for _, k in pairs],
            "active_customers": active[cells],
            "revenue": revenue[cells],
        }
    )
    table["active_customers"] = table["active_customers"].astype(np.int64)
    table["revenue"] = table["revenue"].astype(np.float64)
    table["cohort_size"] = table["cohort"].map(sizes).astype(np.int64)
    first_revenue = table.loc[table["k"] == 0].set_index("cohort")["revenue"]
    base = table["cohort"].map(first_revenue).to_numpy(dtype=np.float64)
    table["retention_rate"] = table["active_customers"] / table["cohort_size"] * 100
    with np.errstate(divide="ignore", invalid="ignore"):
        table["revenue_retention_rate"] = np.where(
            base > 0, table["revenue"].to_numpy() / base * 100, np.nan
        )
    cumulative = table.groupby("cohort")["revenue"].cumsum()
    table["cumulative_revenue_per_customer"] = cumulative / table["cohort_size"]
    table["complete"] = (table["cohort"] + table["k"]) < last_month
    table["cohort"] = (
        np.datetime64("1970-01", "M") + table["cohort"].to_numpy().astype("timedelta64[M]")
    ).astype("datetime64[s]")
    table = table.rename(columns={"k": "months_since_first"})
    return table[
        [
            "cohort",
            "months_since_first",
            "cohort_size",
            "active_customers",
            "retention_rate",
            "revenue",
            "revenue_retention_rate",
            "cumulative_revenue_per_customer",
            "complete",
        ]
    ]


def cohort_matrix(table: pd.DataFrame, value: CohortValue = "retention_rate") -> pd.DataFrame:
    """Pivot a tidy `cohort_table` into the familiar triangle: cohorts down, months across.

    Adds a ``cohort_size`` column first, as cohort charts show it beside each row.
    """
    if value not in COHORT_VALUES:
        raise InputError(f"value must be one of {', '.join(COHORT_VALUES)}")
    needed = {"cohort", "months_since_first", "cohort_size", value}
    if not needed <= set(table.columns):
        raise InputError("pass the output of cohort_table()")
    wide = table.pivot(index="cohort", columns="months_since_first", values=value)
    wide.columns.name = "months_since_first"
    sizes = table.drop_duplicates("cohort").set_index("cohort")["cohort_size"]
    wide.insert(0, "cohort_size", sizes.reindex(wide.index))
    return wide
