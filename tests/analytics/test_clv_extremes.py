"""Extreme customers give finite answers without warnings; the numerical fallbacks are accurate."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1

from vafa.analytics.clv import (
    BetaGeoFitter,
    GammaGammaFitter,
    ModifiedBetaGeoFitter,
    ParetoNBDFitter,
    TransactionFitter,
)
from vafa.analytics.clv.hypergeometric import log_hyp2f1_one

# (frequency, recency, T) in days: 1,000 purchases over ten years, bought at the start only,
# bought on the last day, no repeat purchase, recency == T, recency 0, a customer of age 0.
EXTREMES = (
    np.array([1000, 1000, 1000, 0, 0, 5, 1, 3]),
    np.array([3650, 1.0, 0.0, 0.0, 0.0, 3650, 0.0, 3650]),
    np.array([3650, 3650, 3650, 3650, 0.0, 3650, 3650, 3650]),
)

DAILY_MODELS: list[TransactionFitter] = [
    BetaGeoFitter.from_params({"r": 0.25, "alpha": 30.0, "a": 0.8, "b": 2.4}),
    ModifiedBetaGeoFitter.from_params({"r": 0.5, "alpha": 43.0, "a": 0.9, "b": 1.6}),
    ParetoNBDFitter.from_params({"r": 0.55, "alpha": 74.0, "s": 0.6, "beta": 82.0}),
    ParetoNBDFitter.from_params({"r": 0.55, "alpha": 74.0, "s": 0.6, "beta": 0.01}),
    ParetoNBDFitter.from_params({"r": 0.55, "alpha": 0.01, "s": 2.0, "beta": 900.0}),
]


@pytest.fixture
def warnings_are_errors() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.mark.usefixtures("warnings_are_errors")
@pytest.mark.parametrize("model", DAILY_MODELS, ids=repr)
def test_extreme_customers_get_finite_predictions(model: TransactionFitter) -> None:
    p_alive = model.conditional_probability_alive(*EXTREMES)
    assert np.all(np.isfinite(p_alive)) and np.all((p_alive >= 0) & (p_alive <= 1))
    for horizon in (0.0, 5e-324, 1e-300, 1.0, 365.0, 3650.0, 36500.0):
        expected = model.conditional_expected_number_of_purchases_up_to_time(horizon, *EXTREMES)
        assert np.all(np.isfinite(expected)) and np.all(expected >= 0)
    assert np.all(np.isfinite(model.expected_number_of_purchases_up_to_time([0, 1, 3650, 1e6])))
    assert np.isfinite(model.log_likelihood(*EXTREMES))


@pytest.mark.usefixtures("warnings_are_errors")
def test_a_customer_who_stopped_buying_years_ago_is_almost_surely_gone() -> None:
    bg, _, pareto, _, _ = DAILY_MODELS
    # 1,000 purchases, the last ten years ago: P(alive) underflows towards 0 without NaN
    assert bg.conditional_probability_alive(1000, 1.0, 3650.0) < 1e-100
    assert pareto.conditional_probability_alive(1000, 1.0, 3650.0) < 1e-100
    # the same customer buying until today is surely alive and keeps buying at ~her rate
    assert pareto.conditional_probability_alive(1000, 3650.0, 3650.0) == 1.0
    rate = pareto.conditional_expected_number_of_purchases_up_to_time(1.0, 1000, 3650.0, 3650.0)
    assert rate == pytest.approx((0.55 + 1000) / (74 + 3650), rel=0.01)


@pytest.mark.usefixtures("warnings_are_errors")
@pytest.mark.parametrize("model_class", [BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter])
def test_fitting_data_with_extreme_customers_stays_finite(
    model_class: type[TransactionFitter], cdnow_dir: Path
) -> None:
    # CDNOW's customers in days, plus the extreme ones that a fit accepts (not x > 0 at t_x = 0)
    cdnow = pd.read_csv(cdnow_dir / "cdnow_customers_summary.csv")
    usable = ~((EXTREMES[0] > 0) & (EXTREMES[1] == 0))
    frequency = np.concatenate([cdnow["frequency"], EXTREMES[0][usable]])
    recency = np.concatenate([cdnow["recency"] * 7, EXTREMES[1][usable]])
    age = np.concatenate([cdnow["T"] * 7, EXTREMES[2][usable]])
    model = model_class().fit(frequency, recency, age)
    assert np.isfinite(model.log_likelihood_)
    assert all(np.isfinite(v) and v > 0 for v in model.params_.values())


# -- the numerical fallbacks --------------------------------------------------------------------

# log 2F1(1, b; c; z) from mpmath 1.3.0 at 40 digits (1 - z given exactly); compared to 1e-9.
# scipy 1.17's hyp2f1 returns NaN for the last four and is 0.4% off for (30.5, 33.5, 0.998).
MPMATH = [
    (0.3, 1.9, 0.2, 0.8, 0.034205114630731365),
    (0.0197, 1.0479, 0.9263, 0.0737, 0.047222414956000595),
    (30.5, 33.5, 0.998, 0.002, 2.734862025528304),
    (1.6, 1001.3, 0.999, 0.001, 0.0015991970564600425),
    (200.5, 201.8, 0.99909, 0.00091, 5.472879738228431),
    (1000.55, 1002.16, 0.9999999, 1e-7, 7.3951669629711585),
    (5000.6, 5002.2, 0.999999999, 1e-9, 9.026806717092972),
]


@pytest.mark.usefixtures("warnings_are_errors")
def test_the_hypergeometric_function_matches_mpmath_where_scipy_fails() -> None:
    b, c, z, one_minus_z, reference = (np.array(column) for column in zip(*MPMATH, strict=True))
    result = log_hyp2f1_one(b, c, z, one_minus_z)
    assert result.value == pytest.approx(reference, rel=1e-9, abs=1e-9)
    with np.errstate(all="ignore"):
        assert np.isnan(hyp2f1(1.0, b[-1], c[-1], z[-1]))  # why we do not rely on scipy here


@pytest.mark.usefixtures("warnings_are_errors")
def test_the_hypergeometric_gradient_matches_finite_differences() -> None:
    b, c, z, one_minus_z, _ = (np.array(column) for column in zip(*MPMATH, strict=True))
    result = log_hyp2f1_one(b, c, z, one_minus_z)
    step = 1e-4  # small against c - b - 1 ≥ 0.6, where log G curves most
    d_b = (
        log_hyp2f1_one(b + step, c, z, one_minus_z).value
        - log_hyp2f1_one(b - step, c, z, one_minus_z).value
    ) / (2 * step)
    d_c = (
        log_hyp2f1_one(b, c + step, z, one_minus_z).value
        - log_hyp2f1_one(b, c - step, z, one_minus_z).value
    ) / (2 * step)
    assert result.d_b == pytest.approx(d_b, rel=1e-5, abs=1e-6)
    assert result.d_c == pytest.approx(d_c, rel=1e-5, abs=1e-6)


@pytest.mark.usefixtures("warnings_are_errors")
def test_the_bg_nbd_expectation_is_continuous_through_a_equal_to_one() -> None:
    # at a = 1 the closed form is 0/0; the quadrature fallback takes over
    def expected(a: float) -> float:
        model = BetaGeoFitter.from_params({"r": 0.25, "alpha": 30.0, "a": a, "b": 2.4})
        return float(
            model.conditional_expected_number_of_purchases_up_to_time(365, 4, 200.0, 300.0)
        )

    at_one = expected(1.0)
    assert at_one == pytest.approx(expected(1.0 + 1e-6), rel=1e-5)
    assert at_one == pytest.approx(expected(1.0 - 1e-6), rel=1e-5)


@pytest.mark.usefixtures("warnings_are_errors")
def test_the_pareto_nbd_expectation_is_continuous_through_s_equal_to_one() -> None:
    def expected(s: float) -> float:
        model = ParetoNBDFitter.from_params({"r": 0.55, "alpha": 74.0, "s": s, "beta": 82.0})
        return float(
            model.conditional_expected_number_of_purchases_up_to_time(365, 4, 200.0, 300.0)
        )

    assert expected(1.0) == pytest.approx(expected(1.0 + 1e-7), rel=1e-6)


@pytest.mark.usefixtures("warnings_are_errors")
def test_clv_of_extreme_customers_is_finite() -> None:
    spend = GammaGammaFitter.from_params({"p": 6.25, "q": 3.74, "v": 15.44})
    frequency, recency, age = EXTREMES
    monetary = np.where(frequency > 0, 25.0, 0.0)
    for model in DAILY_MODELS:
        value = spend.customer_lifetime_value(
            model, frequency, recency, age, monetary, time=36, freq="D"
        )
        assert np.all(np.isfinite(value)) and np.all(value >= 0)
