"""RFM quintile scores, the 11 segments, their summary and transitions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vafa.analytics.errors import InputError
from vafa.analytics.io import read_transactions
from vafa.analytics.rfm import (
    SEGMENT_GRID,
    SEGMENTS,
    quintile_scores,
    rfm_segments_summary,
    rfm_table,
    rfm_transition_matrix,
)


def transactions(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return read_transactions(pd.DataFrame(rows, columns=["customer_id", "placed_at", "total"]))


def test_quintiles_of_distinct_values_split_evenly() -> None:
    assert quintile_scores(np.arange(10)).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert quintile_scores(np.arange(10), higher_is_better=False).tolist() == [
        5, 5, 4, 4, 3, 3, 2, 2, 1, 1,
    ]  # fmt: skip


def test_tied_values_share_the_lowest_score_their_group_spans() -> None:
    # six one-time buyers out of ten: all score 1, not spread over 1–3
    scores = quintile_scores([1, 1, 1, 1, 1, 1, 2, 2, 3, 9])

    assert scores.tolist() == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]


def test_the_grid_names_every_score_pair_with_one_of_the_eleven_segments() -> None:
    assert len(SEGMENT_GRID) == 25
    assert set(SEGMENT_GRID.values()) == set(SEGMENTS)
    assert len(SEGMENTS) == 11
    assert SEGMENT_GRID[(5, 5)] == "champions"
    assert SEGMENT_GRID[(5, 1)] == "new"
    assert SEGMENT_GRID[(1, 5)] == "cant_lose"
    assert SEGMENT_GRID[(1, 1)] == "lost"
    assert SEGMENT_GRID[(3, 3)] == "need_attention"


# five customers, each one step apart in every dimension
LADDER = [
    (customer, f"2024-0{month}-01", amount)
    for customer, months, amount in [
        ("e", [1], 10.0),
        ("d", [1, 2], 20.0),
        ("c", [1, 2, 3], 30.0),
        ("b", [1, 2, 3, 4], 40.0),
        ("a", [1, 2, 3, 4, 5], 50.0),
    ]
    for month in months
]


def test_rfm_table_scores_and_names_each_customer() -> None:
    table = rfm_table(transactions(LADDER), as_of="2024-05-31")

    assert list(table.index) == ["a", "b", "c", "d", "e"]
    assert table.loc["a", ["recency_days", "frequency", "monetary"]].tolist() == [30, 5, 250.0]
    assert table["r_score"].tolist() == [5, 4, 3, 2, 1]
    assert table["rfm"].tolist() == ["555", "444", "333", "222", "111"]
    assert table["segment"].tolist() == [
        "champions",
        "loyal",
        "need_attention",
        "hibernating",
        "lost",
    ]


def test_frequency_alone_decides_when_monetary_is_off() -> None:
    rows = [("a", "2024-01-01", 1000.0), ("b", "2024-01-01", 1.0), ("b", "2024-01-02", 1.0)]

    with_m = rfm_table(transactions(rows), use_monetary=True)
    without_m = rfm_table(transactions(rows), use_monetary=False)

    # of two customers the better takes score 1 + ⌊5 × 1 / 2⌋ = 3
    assert with_m.loc["a", ["f_score", "m_score"]].tolist() == [1, 3]
    assert with_m.loc["a", "fm_score"] == 2  # ⌈(1 + 3) / 2⌉
    assert without_m.loc["a", "fm_score"] == 1


def test_the_segment_summary_lists_all_segments_with_shares_and_clv() -> None:
    table = rfm_table(transactions(LADDER), as_of="2024-05-31")
    clv = pd.Series({"a": 500.0, "b": 300.0, "zz": 1.0})

    summary = rfm_segments_summary(table, clv=clv)

    assert list(summary.index) == list(SEGMENTS)
    assert summary["customers"].sum() == 5
    assert summary["customer_share"].sum() == pytest.approx(100.0)
    assert summary["revenue_share"].sum() == pytest.approx(100.0)
    assert summary.loc["champions", "revenue"] == 250.0
    assert summary.loc["champions", "mean_clv"] == 500.0
    assert summary.loc["loyal", "mean_clv"] == 300.0
    assert np.isnan(summary.loc["lost", "mean_clv"])  # e has no CLV
    assert summary.loc["new", "customers"] == 0


def test_the_transition_matrix_shows_a_champion_who_stopped_buying() -> None:
    later = [
        (customer, "2024-08-01", 1.0) for customer in ("b", "c", "d", "e")
    ]  # everyone but a buys again
    data = transactions(LADDER + later)

    matrix = rfm_transition_matrix(data, "2024-05-31", "2024-08-31")

    assert matrix.loc["champions", "cant_lose"] == 1  # a: still F5, M5 but now R1
    assert matrix.to_numpy().sum() == 5
    assert list(matrix.index) == list(SEGMENTS)
    assert list(matrix.columns) == list(SEGMENTS)


def test_new_customers_appear_in_their_own_row_when_asked() -> None:
    data = transactions([*LADDER, ("f", "2024-07-01", 5.0)])

    matrix = rfm_transition_matrix(data, "2024-05-31", "2024-08-31", include_new=True)

    assert matrix.loc["not_customer"].sum() == 1
    assert matrix.to_numpy().sum() == 6


def test_cdnow_transitions_cover_every_customer_of_the_first_date(cdnow_dir: Path) -> None:
    data = read_transactions(cdnow_dir / "CDNOW_master.txt", format="cdnow")

    matrix = rfm_transition_matrix(data, "1997-09-30", "1998-06-30")

    # every CDNOW customer bought first in 1997 Q1 (README), so all 23,570 are in both dates
    assert matrix.to_numpy().sum() == 23_570


def test_it_refuses_dates_in_the_wrong_order_and_foreign_tables() -> None:
    data = transactions(LADDER)

    with pytest.raises(InputError, match="after date_a"):
        rfm_transition_matrix(data, "2024-05-31", "2024-05-01")
    with pytest.raises(InputError, match="rfm_table"):
        rfm_segments_summary(pd.DataFrame({"x": [1]}))
    with pytest.raises(InputError, match="no purchase"):
        rfm_table(data, as_of="2023-01-01")
