"""KPIs over time: hand-computed cases, the retention/churn identity, surveys, goals."""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vafa.analytics import metrics
from vafa.analytics.errors import InputError, InputFieldError
from vafa.analytics.io import read_transactions
from vafa.analytics.summary import purchase_history


def transactions(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return read_transactions(pd.DataFrame(rows, columns=["customer_id", "placed_at", "total"]))


# The worked example of the metrics module docstring.
WORKED = transactions(
    [
        ("ana", "2023-12-10", 10.0),
        ("ana", "2024-05-03", 10.0),
        ("bahram", "2023-05-20", 10.0),
        ("sara", "2024-06-15", 10.0),
        ("reza", "2022-01-01", 10.0),
        ("reza", "2024-06-01", 10.0),
    ]
)
Q2 = ["2024-04-01", "2024-07-01"]


def test_retention_follows_the_worked_example_of_the_docstring() -> None:
    result = metrics.retention_rate(WORKED, period=Q2, active_window=365, as_of="2024-06-30")

    row = result.iloc[0]
    assert (row["S"], row["E"], row["N"], row["lost"]) == (2, 3, 2, 1)
    assert (row["new"], row["reactivated"]) == (1, 1)
    assert row["value"] == 50.0  # ((3 − 2) / 2) × 100
    assert row["period_start"] == pd.Timestamp("2024-04-01")
    assert row["period_end"] == pd.Timestamp("2024-06-30")
    assert bool(row["complete"])


def test_churn_follows_the_worked_example_of_the_docstring() -> None:
    result = metrics.churn_rate(WORKED, period=Q2, active_window=365, as_of="2024-06-30")

    assert result["value"].tolist() == [50.0]  # (1 / 2) × 100


def test_a_period_cut_by_as_of_is_marked_incomplete_and_measured_at_as_of() -> None:
    result = metrics.retention_rate(WORKED, period="Q", as_of="2024-05-15")

    last = result.iloc[-1]
    assert last["period_start"] == pd.Timestamp("2024-04-01")
    assert last["period_end"] == pd.Timestamp("2024-05-15")
    assert not last["complete"]
    assert result["complete"].iloc[:-1].all()


def test_a_period_without_customers_at_its_start_has_no_retention_rate() -> None:
    result = metrics.retention_rate(WORKED, period="Q")

    assert result["S"].iloc[0] == 0
    assert np.isnan(result["value"].iloc[0])


def test_a_shorter_activity_window_loses_customers_sooner() -> None:
    # bahram's purchase of 2023-05-20 is 317 days before 1 April: active with 365, not with 300
    wide = metrics.churn_rate(WORKED, period=Q2, active_window=365, as_of="2024-06-30")
    narrow = metrics.churn_rate(WORKED, period=Q2, active_window=300, as_of="2024-06-30")

    assert wide["S"].iloc[0] == 2
    assert narrow["S"].iloc[0] == 1


@st.composite
def shops(draw: st.DrawFn) -> tuple[pd.DataFrame, int, str]:
    rows = draw(
        st.lists(
            st.tuples(st.integers(0, 12), st.integers(0, 720), st.floats(0, 500)),
            min_size=1,
            max_size=60,
        )
    )
    start = pd.Timestamp("2022-01-01", tz="UTC")
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{r[0]}" for r in rows],
            "placed_at": [start + pd.Timedelta(days=r[1]) for r in rows],
            "total": [r[2] for r in rows],
        }
    )
    return read_transactions(frame), draw(st.integers(1, 400)), draw(st.sampled_from("MQY"))


@settings(max_examples=40, deadline=None)
@given(shop=shops())
def test_retention_plus_churn_is_100_and_the_parts_add_up(
    shop: tuple[pd.DataFrame, int, str],
) -> None:
    frame, window, period = shop
    history = purchase_history(frame)  # both rates from one history, as kpi_table does

    retention = metrics.retention_rate(history, period=period, active_window=window)
    churn = metrics.churn_rate(history, period=period, active_window=window)

    s, e, n, lost = (retention[c].to_numpy() for c in ("S", "E", "N", "lost"))
    # with N = everyone active at the end who was not at the start, E − N = S − lost
    assert (e - n == s - lost).all()
    assert (n == retention["new"] + retention["reactivated"]).all()
    assert (lost <= s).all() and (n <= e).all()
    defined = s > 0
    np.testing.assert_allclose(
        retention["value"][defined] + churn["value"][defined], 100.0, rtol=0, atol=1e-9
    )
    assert retention["value"][defined].between(0, 100).all()
    assert np.isnan(retention["value"][~defined]).all()
    # a period's end is the next one's start
    assert (e[:-1] == s[1:]).all()


SHOP = transactions(
    [
        ("a", "2024-01-05", 100.0),
        ("a", "2024-01-05", 20.0),  # same day: 2 orders, 1 occasion
        ("a", "2024-02-10", 30.0),
        ("b", "2024-01-20", 50.0),
        ("c", "2024-02-01", 10.0),
        ("c", "2024-02-11", 10.0),
        ("c", "2024-02-21", 10.0),
        ("d", "2024-02-15", 400.0),
    ]
)


def test_order_value_frequency_and_revenue_per_customer_by_month() -> None:
    aov = metrics.average_order_value(SHOP, period="M")
    frequency = metrics.purchase_frequency(SHOP, period="M")
    per_customer = metrics.revenue_per_customer(SHOP, period="M")

    # January: a (100 + 20), b (50): 3 orders, 2 customers, 170
    # February: a 30, c 3 × 10, d 400: 5 orders, 3 customers, 460
    assert aov[["revenue", "orders"]].to_numpy().tolist() == [[170.0, 3], [460.0, 5]]
    assert aov["value"].tolist() == pytest.approx([170 / 3, 460 / 5])
    assert frequency["value"].tolist() == pytest.approx([3 / 2, 5 / 3])
    assert per_customer["value"].tolist() == pytest.approx([170 / 2, 460 / 3])


def test_repeat_purchase_rate_counts_occasions_up_to_the_period_end() -> None:
    result = metrics.repeat_purchase_rate(SHOP, period="M")

    # January: a has one occasion (two orders on one day), b one: nobody repeats
    # February: a (2nd occasion), c (3), d (1): two of three
    assert result["customers"].tolist() == [2, 3]
    assert result["repeat_customers"].tolist() == [0, 2]
    assert result["value"].tolist() == pytest.approx([0.0, 200 / 3])


def test_time_between_purchases_uses_gaps_between_occasions() -> None:
    result = metrics.time_between_purchases(SHOP)

    # gaps: a 36 days; c 10 and 10
    assert result["gaps"].tolist() == [3]
    assert result["value"].tolist() == [10.0]
    assert result["mean_days"].tolist() == pytest.approx([56 / 3])


def test_pareto_share_is_the_revenue_of_the_top_fifth() -> None:
    result = metrics.pareto_share(SHOP)

    # spend: d 400, a 150, b 50, c 30 → top ⌈0.2 × 4⌉ = 1 customer holds 400 of 630
    assert result["top_customers"].tolist() == [1]
    assert result["value"].tolist() == pytest.approx([400 / 630 * 100])


def test_rebuy_rates_compare_one_time_and_repeat_buyers_on_observed_windows() -> None:
    data = transactions(
        [
            ("a", "2024-01-01", 1.0),
            ("a", "2024-01-20", 1.0),  # a rebought within 30 days after 1st
            ("a", "2024-03-05", 1.0),  # not within 30 days after 2nd
            ("b", "2024-01-05", 1.0),  # never again
            ("c", "2024-03-10", 1.0),  # too late to judge on 2024-03-31
            ("d", "2024-01-02", 1.0),
            ("d", "2024-01-03", 1.0),
            ("d", "2024-01-04", 1.0),
        ]
    )

    result = metrics.rebuy_rates(data, window_days=30, max_k=2, as_of="2024-03-31")

    assert result["label"].tolist() == ["1", "2+"]
    # k = 1: a, b, d eligible (c is not); a and d rebought
    assert result.loc[0, ["eligible", "rebought"]].tolist() == [3, 2]
    # k ≥ 2: a's 2nd (no), d's 2nd (yes), d's 3rd (no); a's 3rd (03-05) is too late to judge
    assert result.loc[1, ["eligible", "rebought"]].tolist() == [3, 1]
    assert result["value"].tolist() == pytest.approx([200 / 3, 100 / 3])


def test_suggest_active_window_takes_a_quantile_of_the_gaps() -> None:
    rows = [
        ("a", (pd.Timestamp("2024-01-01") + pd.Timedelta(days=10 * i)).isoformat(), 1.0)
        for i in range(30)
    ]

    assert metrics.suggest_active_window(transactions(rows)) == 10


def test_an_auto_activity_window_comes_from_the_shops_own_gaps() -> None:
    rows = [
        (customer, (pd.Timestamp("2024-01-01") + pd.Timedelta(days=10 * i)).isoformat(), 1.0)
        for customer in ("a", "b")
        for i in range(15)
    ]

    result = metrics.churn_rate(transactions(rows), period="M", active_window="auto")

    assert result.attrs["active_window"] == 10
    assert result["lost"].sum() == 0  # both buy every 10 days: never 10 days silent at a boundary


def test_suggest_active_window_warns_and_falls_back_on_little_data() -> None:
    from vafa.analytics.errors import StatisticalWarning

    with pytest.warns(StatisticalWarning):
        assert metrics.suggest_active_window(SHOP) == 365


ANSWERS = pd.DataFrame(
    {
        "customer_id": [f"c{i}" for i in range(12)],
        "kind": ["nps"] * 6 + ["csat"] * 3 + ["CES"] * 3,
        # NPS edges: 6 is a detractor, 7 and 8 passive, 9 a promoter
        "score": [6, 7, 8, 9, 10, 0, 3, 4, 5, 2, 6, 7],
        "answered_at": pd.to_datetime(
            ["2024-01-10"] * 3 + ["2024-02-10"] * 3 + ["2024-01-15"] * 3 + ["2024-02-01"] * 3
        ),
    }
)


def test_nps_counts_9_and_10_as_promoters_and_0_to_6_as_detractors() -> None:
    overall = metrics.nps(ANSWERS)
    monthly = metrics.nps(ANSWERS, period="M")

    row = overall.iloc[0]
    assert (row["promoters"], row["passives"], row["detractors"]) == (2, 2, 2)
    assert row["value"] == pytest.approx(0.0)  # 2/6 − 2/6
    # January: 6, 7, 8 → −33.3; February: 9, 10, 0 → 66.7 − 33.3
    assert monthly["value"].tolist() == pytest.approx([-100 / 3, 100 / 3])


def test_nps_with_only_the_edge_scores_6_7_8_9() -> None:
    answers = pd.DataFrame(
        {
            "customer_id": list("abcd"),
            "kind": "nps",
            "score": [6, 7, 8, 9],
            "answered_at": pd.Timestamp("2024-01-01", tz="UTC"),
        }
    )

    assert metrics.nps(answers)["value"].tolist() == [0.0]  # 25 % − 25 %


def test_csat_counts_4_and_5_and_ces_is_the_mean() -> None:
    assert metrics.csat(ANSWERS)["value"].tolist() == pytest.approx([200 / 3])
    assert metrics.ces(ANSWERS)["value"].tolist() == pytest.approx([5.0])


def test_survey_metrics_puts_every_kind_in_one_tidy_frame() -> None:
    result = metrics.survey_metrics(ANSWERS)

    assert result["metric"].tolist() == ["nps", "csat", "ces"]
    assert result["period_end"].nunique() == 1


@pytest.mark.parametrize(
    ("kind", "score", "message"),
    [
        ("nps", 11, "not a whole number from 0 to 10"),
        ("csat", 0, "from 1 to 5"),
        ("ces", 2.5, "from 1 to 7"),
        ("stars", 3, "unknown survey kind"),
    ],
)
def test_it_refuses_scores_off_their_scale(kind: str, score: float, message: str) -> None:
    answers = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "kind": ["nps", kind],
            "score": [5, score],
            "answered_at": ["2024-01-01", "2024-01-02"],
        }
    )

    with pytest.raises(InputFieldError, match=f"row 1: .*{message}"):
        metrics.read_survey_answers(answers)


def test_response_rate_counts_invitations_answered_within_the_window() -> None:
    invitations = pd.DataFrame(
        {
            "customer_id": ["c0", "c1", "c3", "zz"],
            "kind": ["nps"] * 4,
            "sent_at": pd.to_datetime(["2024-01-05", "2024-01-05", "2024-01-05", "2024-01-05"]),
        }
    )

    result = metrics.survey_response_rate(invitations, ANSWERS, response_window_days=14)

    # c0 and c1 answered on 01-10 (in time); c3 on 02-10 (too late); zz never
    assert result[["invitations", "answered"]].to_numpy().tolist() == [[4, 2]]
    assert result["value"].tolist() == [50.0]


def test_kpi_table_compares_the_last_complete_quarter_with_the_one_before() -> None:
    data = transactions(
        [
            ("a", "2024-01-10", 10.0),
            ("b", "2024-02-10", 30.0),
            ("a", "2024-04-10", 20.0),
            ("c", "2024-05-10", 40.0),
            ("c", "2024-07-02", 5.0),  # in Q3, after the compared quarters
        ]
    )

    table = metrics.kpi_table(data, period="Q", as_of="2024-07-02", answers=ANSWERS)

    values = table.set_index("metric")
    assert values.loc["revenue", ["current", "previous"]].tolist() == [60.0, 40.0]
    assert values.loc["orders", ["current", "previous"]].tolist() == [2.0, 2.0]
    assert values.loc["new_customers", ["current", "previous"]].tolist() == [1.0, 2.0]
    assert values.loc["churn_rate", "current"] == pytest.approx(0.0)
    assert values.loc["revenue", "change_pct"] == pytest.approx(50.0)
    assert np.isnan(values.loc["nps", "current"])  # no answers in Q2
    assert values.loc["nps", "previous"] == pytest.approx(0.0)
    assert table.attrs["current_start"] == "2024-04-01"
    assert table.attrs["current_end"] == "2024-06-30"
    assert table.attrs["previous_start"] == "2024-01-01"


def test_kpi_table_can_show_the_running_period() -> None:
    data = transactions([("a", "2024-01-10", 10.0), ("b", "2024-04-02", 7.0)])

    table = metrics.kpi_table(data, period="Q", as_of="2024-04-05", include_partial=True)

    assert table.set_index("metric").loc["revenue", "current"] == 7.0
    assert table.attrs["current_end"] == "2024-04-05"
    assert table.attrs["complete"] is False


def test_goal_progress_forecasts_a_linear_trend_to_the_deadline() -> None:
    series = pd.Series(
        [12.0, 11.5, 11.0],
        index=pd.to_datetime(["2024-01-01", "2024-01-11", "2024-01-21"]),
    )

    goal = metrics.goal_progress(series, target=10.0, deadline="2024-02-10")

    assert goal.direction == "decrease"
    assert goal.progress == pytest.approx(0.5)  # from 12 to 11 of the way to 10
    assert goal.slope_per_day == pytest.approx(-0.05)
    assert goal.forecast == pytest.approx(10.0)  # 11 − 0.05 × 20
    assert goal.on_track is True
    assert goal.reached is False
    assert goal.deadline == datetime.date(2024, 2, 10)


def test_goal_progress_reads_a_tidy_kpi_frame_and_says_when_off_track() -> None:
    churn = pd.DataFrame(
        {"period_end": pd.to_datetime(["2024-03-31", "2024-06-30"]), "value": [10.0, 11.0]}
    )

    goal = metrics.goal_progress(churn, target=9.0, deadline="2024-09-30")

    assert goal.on_track is False
    assert goal.progress == pytest.approx(-1.0)


def test_goal_progress_needs_a_direction_when_target_equals_baseline() -> None:
    series = pd.Series([5.0], index=pd.to_datetime(["2024-01-01"]))

    with pytest.raises(InputError, match="direction"):
        metrics.goal_progress(series, target=5.0, deadline="2024-06-30")
    goal = metrics.goal_progress(series, target=5.0, deadline="2024-06-30", direction="decrease")
    assert goal.reached and goal.forecast is None and goal.on_track is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: metrics.retention_rate(SHOP, period="W"), "period must be"),
        (lambda: metrics.retention_rate(SHOP, period=["2024-02-01", "2024-01-01"]), "increasing"),
        (lambda: metrics.retention_rate(SHOP, period=None), "need periods"),
        (lambda: metrics.churn_rate(SHOP, active_window=0), "at least one day"),
        (lambda: metrics.pareto_share(SHOP, top_share=0), "top_share"),
        (lambda: metrics.rebuy_rates(SHOP, window_days=0), "window_days"),
        (lambda: metrics.average_order_value(SHOP, as_of="2020-01-01"), "no purchase"),
        (lambda: metrics.kpi_table(SHOP, period=["2024-01-01"]), "calendar periods"),  # type: ignore[arg-type]
    ],
)
def test_it_refuses_unusable_arguments(call: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        call()  # type: ignore[operator]
