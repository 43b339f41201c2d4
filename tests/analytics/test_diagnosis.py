"""Behavioural loyalty labels with their reasons (K8)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vafa.analytics.diagnosis import LABELS, diagnose_loyalty, loyalty_label_summary
from vafa.analytics.errors import InputError
from vafa.analytics.io import read_transactions

AS_OF = "2024-06-30"


def orders(rows: list[tuple[str, str, float, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "placed_at", "total", "discount"])
    return read_transactions(frame)


def every(days: int, count: int, start: str) -> list[str]:
    first = pd.Timestamp(start)
    return [(first + pd.Timedelta(days=days * i)).date().isoformat() for i in range(count)]


ROWS = (
    [("once", "2024-06-01", 50.0, 0.0)]
    # every 30 days, last on 06-28: habitual
    + [("clockwork", day, 40.0, 0.0) for day in every(30, 6, "2024-01-30")]
    # every 10 days, then silent since 03-20: 102 days, over 10× the usual interval
    + [("drifter", day, 20.0, 0.0) for day in every(10, 4, "2024-02-19")]
    # three of four orders with a small discount, irregular gaps
    + [
        ("coupon", "2024-05-01", 95.0, 5.0),
        ("coupon", "2024-05-03", 95.0, 5.0),
        ("coupon", "2024-06-01", 95.0, 5.0),
        ("coupon", "2024-06-25", 100.0, 0.0),
    ]
    # deep discounts: 40 off 100
    + [("bargain", "2024-06-10", 60.0, 40.0), ("bargain", "2024-06-20", 60.0, 40.0)]
    # two purchases, no pattern
    + [("plain", "2024-05-01", 30.0, 0.0), ("plain", "2024-06-15", 30.0, 0.0)]
)


@pytest.fixture(scope="module")
def diagnosis() -> pd.DataFrame:
    return diagnose_loyalty(orders(ROWS), as_of=AS_OF)


def test_each_customer_gets_the_label_their_behaviour_shows(diagnosis: pd.DataFrame) -> None:
    assert diagnosis["label"].to_dict() == {
        "bargain": "price_driven",
        "clockwork": "habitual",
        "coupon": "incentive_driven",
        "drifter": "lapsing",
        "once": "one_time",
        "plain": "regular",
    }


def test_each_label_carries_a_reason_key_and_its_numbers(diagnosis: pd.DataFrame) -> None:
    drifter = diagnosis.loc["drifter"]
    assert drifter["reason_key"] == "overdue"
    assert drifter["days_since_last"] == 102
    assert drifter["median_interval_days"] == 10.0
    assert drifter["reason"] == "Last bought 102 days ago, 10.2× their usual 10-day interval."
    clockwork = diagnosis.loc["clockwork"]
    assert clockwork["interval_cv"] == 0.0
    assert clockwork["reason"] == "6 purchases about every 30 days (variation 0.00)."
    assert diagnosis.loc["coupon", "discounted_order_share"] == 0.75
    assert diagnosis.loc["bargain", "discount_value_share"] == pytest.approx(0.4)
    assert diagnosis.loc["bargain", "reason_key"] == "deep_discounts"
    assert diagnosis.loc["once", "reason"] == "Bought once, 29 days ago."


def test_thresholds_are_parameters() -> None:
    strict = diagnose_loyalty(orders(ROWS), as_of=AS_OF, incentive_order_share=0.8)
    relaxed = diagnose_loyalty(orders(ROWS), as_of=AS_OF, lapse_factor=20.0)

    assert strict.loc["coupon", "label"] != "incentive_driven"
    assert relaxed.loc["drifter", "label"] != "lapsing"


def test_orders_mostly_placed_in_sales_make_a_customer_price_driven() -> None:
    diagnosis = diagnose_loyalty(
        orders(ROWS), as_of=AS_OF, sale_periods=[("2024-04-25", "2024-05-05")]
    )

    assert diagnosis.loc["plain", "sale_order_share"] == 0.5  # not more than half
    assert diagnosis.loc["plain", "label"] == "regular"
    assert diagnosis.loc["coupon", "sale_order_share"] == 0.5


def test_without_discounts_nobody_is_incentive_or_price_driven() -> None:
    frame = orders(ROWS).drop(columns=["discount"])

    diagnosis = diagnose_loyalty(frame, as_of=AS_OF)

    assert not diagnosis["label"].isin(["incentive_driven", "price_driven"]).any()
    assert diagnosis.attrs["discount_data"] is False
    assert np.isnan(diagnosis["discounted_order_share"]).all()


def test_the_summary_counts_customers_and_revenue_per_label(diagnosis: pd.DataFrame) -> None:
    summary = loyalty_label_summary(diagnosis)

    assert list(summary.index) == list(LABELS)
    assert summary["customers"].tolist() == [1, 1, 1, 1, 1, 1]
    assert summary.loc["habitual", "revenue"] == 240.0
    assert summary["revenue_share"].sum() == pytest.approx(100.0)


def test_it_refuses_impossible_thresholds() -> None:
    with pytest.raises(InputError, match="habitual_min_purchases"):
        diagnose_loyalty(orders(ROWS), habitual_min_purchases=2)
    with pytest.raises(InputError, match="incentive_order_share"):
        diagnose_loyalty(orders(ROWS), incentive_order_share=1.5)
    with pytest.raises(InputError, match="sale period ends before"):
        diagnose_loyalty(orders(ROWS), sale_periods=[("2024-05-05", "2024-05-01")])
