"""Confidence intervals for uplift, against published values and hand computations."""

from __future__ import annotations

import math

import pytest

from vafa.analytics.errors import InputError
from vafa.analytics.uplift import (
    GroupOutcome,
    measure_uplift,
    newcombe_difference,
    welch_difference,
    wilson_interval,
)


def test_the_wilson_interval_matches_newcombes_example() -> None:
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Statistics
    # in Medicine 17:857–872, Table I: 81/263, Wilson score interval 0.2553 to 0.3662 (4 d.p.).
    interval = wilson_interval(81, 263)
    assert (interval.low, interval.high) == (pytest.approx(0.2553, abs=5e-5),
                                             pytest.approx(0.3662, abs=5e-5))


@pytest.mark.parametrize(("counts", "low", "high"), [
    # Newcombe (1998), "Interval estimation for the difference between independent
    # proportions", Statistics in Medicine 17:873–890, Table II, method 10 (score, Wilson
    # based), examples (a)–(h); printed to 4 decimal places, so compared within 5e-5.
    ((56, 70, 48, 80), 0.0524, 0.3339),
    ((9, 10, 3, 10), 0.1705, 0.8090),
    ((6, 7, 2, 7), 0.0582, 0.8062),
    ((5, 56, 0, 29), -0.0381, 0.1926),
    ((0, 10, 0, 20), -0.1611, 0.2775),
    ((0, 10, 0, 10), -0.2775, 0.2775),
    ((10, 10, 0, 20), 0.6791, 1.0000),
    ((10, 10, 0, 10), 0.6075, 1.0000),
])
def test_the_difference_of_proportions_matches_newcombes_table(
    counts: tuple[int, int, int, int], low: float, high: float
) -> None:
    interval = newcombe_difference(*counts)
    assert interval.estimate == pytest.approx(counts[0] / counts[1] - counts[2] / counts[3])
    assert interval.low == pytest.approx(low, abs=5e-5)
    assert interval.high == pytest.approx(high, abs=5e-5)


def test_the_welch_interval_matches_a_hand_computation() -> None:
    # Treated revenue per recipient 0, 0, 10, 20; control 0, 0, 0, 4.
    # Means 7.5 and 1; variances (56.25 + 56.25 + 6.25 + 156.25) / 3 = 91.6667 and
    # (1 + 1 + 1 + 9) / 3 = 4. SE² = 91.6667/4 + 4/4 = 23.9167 (SE 4.8905).
    # ν = 23.9167² / (22.9167²/3 + 1²/3) = 572.007 / 175.391 = 3.2613.
    # t(0.975, ν = 3.2613) = 3.0429 (the Student t quantile, from scipy.stats.t.ppf; tables
    # give 3.182 at ν = 3 and 2.776 at ν = 4), half width 3.0429 × 4.8905 = 14.881:
    # 6.5 ± 14.881 = (−8.381, 21.381).
    interval = welch_difference(7.5, 275 / 3, 4, 1.0, 4.0, 4)
    assert interval is not None
    assert interval.estimate == pytest.approx(6.5)
    se = math.sqrt(275 / 12 + 1)
    assert se == pytest.approx(4.8905, abs=1e-4)
    assert (interval.high - interval.low) / 2 / se == pytest.approx(3.0429, abs=1e-4)
    assert interval.low == pytest.approx(-8.381, abs=1e-3)
    assert interval.high == pytest.approx(21.381, abs=1e-3)


def test_it_measures_uplift_from_sufficient_statistics() -> None:
    treated = GroupOutcome(recipients=4, conversions=2, revenue=30.0, revenue_squares=500.0)
    control = GroupOutcome(recipients=4, conversions=1, revenue=4.0, revenue_squares=16.0)
    uplift = measure_uplift(treated, control)
    assert uplift.conversion is not None and uplift.revenue is not None
    assert uplift.conversion.estimate == pytest.approx(0.25)
    assert treated.revenue_variance == pytest.approx(275 / 3)
    assert uplift.revenue.low == pytest.approx(-8.381, abs=1e-3)  # the example above
    assert not uplift.revenue.excludes_zero()


def test_it_leaves_out_intervals_it_cannot_compute() -> None:
    empty = GroupOutcome(recipients=0, conversions=0)
    one = GroupOutcome(recipients=1, conversions=1, revenue=5.0, revenue_squares=25.0)
    assert measure_uplift(one, empty).conversion is None
    assert measure_uplift(one, one).revenue is None
    flat = GroupOutcome(recipients=3, conversions=0)
    revenue = measure_uplift(flat, flat).revenue
    assert revenue is not None and revenue.low == revenue.high == 0


@pytest.mark.parametrize("bad", [
    lambda: wilson_interval(3, 2),
    lambda: wilson_interval(0, 0),
    lambda: wilson_interval(1, 2, confidence=1.0),
    lambda: GroupOutcome(recipients=2, conversions=3),
    lambda: welch_difference(1, -1, 3, 1, 1, 3),
])
def test_it_refuses_impossible_inputs(bad: object) -> None:
    with pytest.raises(InputError):
        bad()  # type: ignore[operator]
