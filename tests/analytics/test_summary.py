"""Frequency/recency/T/monetary summaries, checked against CDNOW's published summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vafa.analytics.errors import InputError
from vafa.analytics.io import day_number, read_transactions
from vafa.analytics.summary import (
    calibration_and_holdout_data,
    purchase_history,
    summary_data_from_transactions,
)


def transactions(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "placed_at", "total"])
    return read_transactions(frame)


@pytest.fixture(scope="module")
def cdnow_sample(cdnow_dir: Path) -> tuple[pd.DataFrame, pd.Series]:
    """CDNOW_master restricted to the 1/10 sample, and master id → summary ID (sample index)."""
    master = read_transactions(cdnow_dir / "CDNOW_master.txt", format="cdnow")
    sample = pd.read_csv(
        cdnow_dir / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["customer_id", "index", "date", "cds", "dollars"],
        dtype=str,
    )
    ids = sample.groupby("customer_id")["index"].first().astype(int)
    return master[master["customer_id"].isin(ids.index)], ids


def test_it_reproduces_the_published_cdnow_summary(
    cdnow_sample: tuple[pd.DataFrame, pd.Series], cdnow_dir: Path
) -> None:
    sample, ids = cdnow_sample

    summary = summary_data_from_transactions(sample, observation_end="1997-09-30", freq="W")

    summary.index = ids.reindex(summary.index).to_numpy()
    summary = summary.sort_index()
    published = pd.read_csv(
        cdnow_dir / "cdnow_customers_summary_with_transactions.csv", index_col="ID"
    )
    assert len(summary) == len(published) == 2357
    # cdnow_customers_summary(_with_transactions).csv, lifetimes 0.11.3: weeks to 2 decimals,
    # so ours rounded to 2 decimals must equal them; x (frequency) exactly.
    assert (summary["frequency"].to_numpy() == published["x"].to_numpy()).all()
    assert (summary["recency"].round(2).to_numpy() == published["t_x"].to_numpy()).all()
    assert (summary["T"].round(2).to_numpy() == published["T"].to_numpy()).all()
    # zbar is printed to 2 decimals (22.345 appears as 22.35): half a cent of tolerance
    np.testing.assert_allclose(
        summary["monetary_value"].to_numpy(), published["zbar"].to_numpy(), atol=0.005 + 1e-9
    )
    assert summary.attrs == {"observation_end": "1997-09-30", "freq": "W", "tz": "UTC"}


def test_the_first_cdnow_sample_customer_matches_the_readme_example(
    cdnow_sample: tuple[pd.DataFrame, pd.Series],
) -> None:
    sample, _ = cdnow_sample
    # customer 00004 bought on 1997-01-01, 01-18, 08-02 (and 12-12, after calibration)
    summary = summary_data_from_transactions(sample, observation_end="1997-09-30", freq="W")

    row = summary.loc["00004"]
    # README: x = 2, t_x = 30.43, T = 38.86 (213 and 272 days over 7)
    assert row["frequency"] == 2
    assert row["recency"] == pytest.approx(213 / 7)
    assert row["T"] == pytest.approx(272 / 7)


def test_purchases_on_one_day_are_one_transaction_with_summed_amounts() -> None:
    data = transactions(
        [
            ("a", "2024-01-01T09:00:00Z", 10.0),
            ("a", "2024-01-01T18:00:00Z", 5.0),
            ("a", "2024-01-11T12:00:00Z", 20.0),
            ("a", "2024-01-11T13:00:00Z", 4.0),
            ("a", "2024-01-21T00:00:00Z", 6.0),
        ]
    )

    summary = summary_data_from_transactions(data, observation_end="2024-01-31")

    row = summary.loc["a"]
    assert row["frequency"] == 2
    assert row["recency"] == 20.0
    assert row["T"] == 30.0
    assert row["monetary_value"] == pytest.approx((24.0 + 6.0) / 2)


def test_a_one_time_buyer_has_zero_frequency_recency_and_monetary_value() -> None:
    data = transactions([("a", "2024-01-01", 10.0), ("b", "2024-01-05", 3.0)])

    summary = summary_data_from_transactions(data)

    assert summary.loc["a"].tolist() == [0, 0.0, 4.0, 0.0]
    assert summary.loc["b"].tolist() == [0, 0.0, 0.0, 0.0]
    assert summary["frequency"].dtype == np.int64
    assert list(summary.index) == ["a", "b"]


def test_the_observation_end_is_inclusive_and_later_customers_are_left_out() -> None:
    data = transactions(
        [("a", "2024-01-01", 1.0), ("a", "2024-01-10", 2.0), ("b", "2024-01-11", 5.0)]
    )

    summary = summary_data_from_transactions(
        data, observation_end="2024-01-10", include_monetary=False
    )

    assert list(summary.index) == ["a"]
    assert list(summary.columns) == ["frequency", "recency", "T"]
    assert summary.loc["a"].tolist() == [1, 9.0, 9.0]


def test_weeks_are_days_over_seven_without_rounding() -> None:
    data = transactions([("a", "2024-01-01", 1.0), ("a", "2024-01-04", 1.0)])

    summary = summary_data_from_transactions(data, observation_end="2024-01-11", freq="W")

    assert summary.loc["a", "recency"] == pytest.approx(3 / 7)
    assert summary.loc["a", "T"] == pytest.approx(10 / 7)


def test_the_shops_zone_decides_the_day_of_a_late_order() -> None:
    # 21:00 UTC on the 1st is 00:30 on the 2nd in Tehran: two days there, one in UTC
    data = transactions([("a", "2024-01-01T10:00:00Z", 1.0), ("a", "2024-01-01T21:00:00Z", 1.0)])

    in_utc = summary_data_from_transactions(data)
    in_tehran = summary_data_from_transactions(data, tz="Asia/Tehran")

    assert in_utc.loc["a", "frequency"] == 0
    assert in_tehran.loc["a", "frequency"] == 1


def test_calibration_and_holdout_split_counts_what_came_after() -> None:
    data = transactions(
        [
            ("a", "2024-01-01", 10.0),
            ("a", "2024-01-05", 20.0),
            ("a", "2024-01-12", 30.0),
            ("a", "2024-01-12", 10.0),
            ("a", "2024-01-20", 50.0),
            ("b", "2024-01-09", 5.0),
            ("c", "2024-01-15", 7.0),  # first bought in the holdout: left out
        ]
    )

    split = calibration_and_holdout_data(
        data, calibration_end="2024-01-10", observation_end="2024-01-20"
    )

    assert list(split.index) == ["a", "b"]
    assert list(split.columns) == [
        "frequency_cal",
        "recency_cal",
        "T_cal",
        "monetary_value_cal",
        "frequency_holdout",
        "monetary_value_holdout",
        "duration_holdout",
    ]
    assert split.loc["a"].tolist() == [1, 4.0, 9.0, 20.0, 2, 45.0, 10.0]
    assert split.loc["b"].tolist() == [0, 0.0, 1.0, 0.0, 0, 0.0, 10.0]
    assert split.attrs["calibration_end"] == "2024-01-10"


def test_summary_with_a_calibration_end_is_the_calibration_split() -> None:
    data = transactions([("a", "2024-01-01", 1.0), ("a", "2024-01-08", 2.0)])

    via_summary = summary_data_from_transactions(data, calibration_end="2024-01-03", freq="W")
    direct = calibration_and_holdout_data(data, calibration_end="2024-01-03", freq="W")

    pd.testing.assert_frame_equal(via_summary, direct)
    assert direct.loc["a", "duration_holdout"] == pytest.approx(5 / 7)


def test_the_cdnow_holdout_counts_agree_with_a_direct_count(
    cdnow_sample: tuple[pd.DataFrame, pd.Series],
) -> None:
    sample, _ = cdnow_sample

    split = calibration_and_holdout_data(
        sample, calibration_end="1997-09-30", observation_end="1998-06-30", freq="W"
    )

    days = sample.assign(day=sample["placed_at"].dt.floor("D"))
    later = days[days["day"] > pd.Timestamp("1997-09-30", tz="UTC")]
    expected = later.groupby("customer_id")["day"].nunique()
    counted = split["frequency_holdout"]
    assert counted.sum() == expected.sum()
    assert (counted.reindex(expected.index) == expected).all()
    assert split["duration_holdout"].iloc[0] == pytest.approx(273 / 7)  # 39 weeks


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"freq": "M"}, "freq must be 'D' or 'W'"),
        ({"observation_end": "2023-01-01"}, "no customer"),
        ({"calibration_end": "2024-02-01", "observation_end": "2024-01-01"}, "must be after"),
        ({"observation_end": "not a date"}, "cannot read"),
    ],
)
def test_it_refuses_unusable_arguments(arguments: dict[str, str], message: str) -> None:
    data = transactions([("a", "2024-01-01", 1.0)])

    with pytest.raises(InputError, match=message):
        summary_data_from_transactions(data, **arguments)  # type: ignore[arg-type]


def naive_summary(rows: list[tuple[str, int, float]], end: int) -> dict[str, tuple[int, int, int]]:
    """A deliberately plain reference: per customer, the distinct days up to ``end``."""
    days: dict[str, set[int]] = {}
    for customer, day, _ in rows:
        if day <= end:
            days.setdefault(customer, set()).add(day)
    return {c: (len(d) - 1, max(d) - min(d), end - min(d)) for c, d in days.items()}


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d"]),
            st.integers(min_value=0, max_value=60),
            st.floats(min_value=0.0, max_value=1000.0, allow_nan=False),
        ),
        min_size=1,
        max_size=40,
    ),
    end=st.integers(min_value=0, max_value=70),
)
def test_it_agrees_with_a_plain_reference_on_any_data(
    rows: list[tuple[str, int, float]], end: int
) -> None:
    start = pd.Timestamp("2024-01-01", tz="UTC")
    frame = read_transactions(
        pd.DataFrame(
            {
                "customer_id": [r[0] for r in rows],
                "placed_at": [start + pd.Timedelta(days=r[1], hours=5) for r in rows],
                "total": [r[2] for r in rows],
            }
        )
    )
    expected = naive_summary(rows, end)
    if not expected:
        with pytest.raises(InputError):
            summary_data_from_transactions(frame, observation_end=start + pd.Timedelta(days=end))
        return

    summary = summary_data_from_transactions(frame, observation_end=start + pd.Timedelta(days=end))

    got = {c: (int(r["frequency"]), int(r["recency"]), int(r["T"])) for c, r in summary.iterrows()}
    assert got == expected
    assert (summary["recency"] <= summary["T"]).all()
    assert ((summary["frequency"] == 0) <= (summary["monetary_value"] == 0)).all()


def test_a_history_cut_at_a_day_equals_one_built_up_to_that_day() -> None:
    data = read_transactions(
        pd.DataFrame(
            {
                "customer_id": ["b", "a", "b", "c", "a", "b"],
                "placed_at": [
                    "2024-01-03",
                    "2024-01-01",
                    "2024-01-03",
                    "2024-01-09",
                    "2024-01-05",
                    "2024-01-07",
                ],
                "total": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                "discount": [0.0, 1.0, 0.0, 0.0, 2.0, 0.0],
            }
        )
    )

    cut = purchase_history(data).until(day_number("2024-01-05"))
    built = purchase_history(data, as_of="2024-01-05")

    assert list(cut.customers) == list(built.customers) == ["a", "b"]
    for name in ("code", "day", "amount", "orders", "discount", "discounted_orders"):
        np.testing.assert_array_equal(getattr(cut, name), getattr(built, name))
    assert built.orders.tolist() == [1, 1, 2]  # b's two orders of 01-03 are one occasion
    assert built.amount.tolist() == [2.0, 5.0, 4.0]
    assert built.discounted_orders is not None and built.discounted_orders.tolist() == [1, 1, 0]
    assert built.as_of == cut.as_of == day_number("2024-01-05")
