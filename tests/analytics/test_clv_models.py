"""CLV models against published CDNOW estimates, lifetimes' predictions, and their error contract.

Published values: /work/shared/data/cdnow/README.md, which cites Fader, Hardie & Lee (2005) for
BG/NBD and Gamma-Gamma, Schmittlein, Morrison & Colombo (1987) for Pareto/NBD, and Batislam et al.
(2007) for MBG/NBD. Data: cdnow_customers_summary.csv, 2,357 customers, 39-week calibration, weeks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vafa.analytics.clv import (
    BetaGeoFitter,
    GammaGammaFitter,
    ModifiedBetaGeoFitter,
    ParetoNBDFitter,
    TransactionFitter,
)
from vafa.analytics.errors import (
    ConvergenceError,
    IdentificationError,
    InputError,
    NotFittedError,
    StatisticalWarning,
)

TRANSACTION_MODELS = [BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter]


def significant(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}g}"


@pytest.fixture(scope="module")
def cdnow(cdnow_dir: Path) -> pd.DataFrame:
    return pd.read_csv(cdnow_dir / "cdnow_customers_summary.csv")


@pytest.fixture(scope="module")
def cdnow_spend(cdnow_dir: Path) -> pd.DataFrame:
    return pd.read_csv(cdnow_dir / "cdnow_customers_summary_with_transactions.csv")


@pytest.fixture(scope="module")
def bg(cdnow: pd.DataFrame) -> BetaGeoFitter:
    return BetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])


@pytest.fixture(scope="module")
def pareto(cdnow: pd.DataFrame) -> ParetoNBDFitter:
    return ParetoNBDFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])


# -- published estimates ------------------------------------------------------------------------


def test_bg_nbd_reproduces_the_published_cdnow_estimates(bg: BetaGeoFitter) -> None:
    # FHL 2005: r = 0.2426, α = 4.4136, a = 0.7930, b = 2.4259, LL = -9582.43.
    # Tolerance: 3 significant digits for the parameters, 0.01 for the log-likelihood.
    published = {"r": 0.2426, "alpha": 4.4136, "a": 0.7930, "b": 2.4259}
    for name, value in published.items():
        assert significant(bg.params_[name]) == significant(value), name
    assert bg.log_likelihood_ == pytest.approx(-9582.43, abs=0.01)
    assert bg.converged_ and bg.n_customers_ == 2357


def test_bg_nbd_conditional_expectation_matches_the_paper(bg: BetaGeoFitter) -> None:
    # FHL 2005, customer with x = 2, t_x = 30.43, T = 38.86, next 39 weeks: ≈ 1.226 (±0.0005).
    expected = bg.conditional_expected_number_of_purchases_up_to_time(39, 2, 30.43, 38.86)
    assert float(expected) == pytest.approx(1.226, abs=5e-4)


def test_pareto_nbd_reproduces_the_published_cdnow_estimates(pareto: ParetoNBDFitter) -> None:
    # SMC 1987 as refitted in the README: r = 0.5533, α = 10.578, s = 0.6062, β = 11.668,
    # LL = -9594.97. The surface is flat: LL to 0.05, parameters to 1%.
    assert pareto.log_likelihood_ == pytest.approx(-9594.97, abs=0.05)
    published = {"r": 0.5533, "alpha": 10.578, "s": 0.6062, "beta": 11.668}
    for name, value in published.items():
        assert pareto.params_[name] == pytest.approx(value, rel=0.01), name


def test_mbg_nbd_reproduces_the_published_cdnow_estimates(cdnow: pd.DataFrame) -> None:
    # Batislam et al. 2007 via the README: r ≈ 0.525, α ≈ 6.183, a ≈ 0.891, b ≈ 1.614 (±1%).
    model = ModifiedBetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    published = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}
    for name, value in published.items():
        assert model.params_[name] == pytest.approx(value, rel=0.01), name


def test_gamma_gamma_reproduces_the_published_cdnow_estimates(cdnow_spend: pd.DataFrame) -> None:
    # FHL 2005 "RFM and CLV", 946 repeat buyers: p = 6.25, q = 3.74, γ = 15.44 (3 significant
    # digits), LL = -4055.92 (±0.01) on zbar.
    repeaters = cdnow_spend[cdnow_spend["x"] > 0]
    assert len(repeaters) == 946
    model = GammaGammaFitter().fit(repeaters["x"], repeaters["zbar"])
    for name, value in {"p": 6.25, "q": 3.74, "v": 15.44}.items():
        assert significant(model.params_[name]) == significant(value), name
    assert model.log_likelihood_ == pytest.approx(-4055.92, abs=0.01)


def test_bg_nbd_standard_errors_match_lifetimes(bg: BetaGeoFitter) -> None:
    # lifetimes 0.11.3 BetaGeoFitter.summary on the same data (se(coef)), to 0.1%.
    lifetimes_se = {"r": 0.012557, "alpha": 0.378221, "a": 0.185719, "b": 0.705345}
    for name, value in lifetimes_se.items():
        assert bg.standard_errors_[name] == pytest.approx(value, rel=1e-3), name


def test_summary_is_a_table_of_estimates_errors_and_intervals(bg: BetaGeoFitter) -> None:
    table = bg.summary()
    assert list(table.index) == ["r", "alpha", "a", "b"]
    assert list(table.columns) == ["estimate", "std_error", "ci_lower_95", "ci_upper_95"]
    assert (table["ci_lower_95"] < table["estimate"]).all()
    assert (table["estimate"] < table["ci_upper_95"]).all()


# -- predictions against lifetimes 0.11.3 at lifetimes' own CDNOW parameters ------------------

CUSTOMERS = {"frequency": [0, 2, 7], "recency": [0, 30.43, 35.0], "T": [38.86, 38.86, 38.86]}
# Values printed by lifetimes 0.11.3 (conditional_probability_alive,
# conditional_expected_number_of_purchases_up_to_time(39, ...),
# expected_number_of_purchases_up_to_time([1, 39, 78])); compared to 1e-6 relative.
LIFETIMES = {
    BetaGeoFitter: (
        {"r": 0.2425929282798216, "alpha": 4.413532265271803, "a": 0.7928859664405851, "b": 2.42575238262545},
        [1.0, 0.72660914, 0.84378691],
        [0.19478086, 1.22591042, 4.38752932],
        [0.05318474, 1.19501623, 1.8579717],
    ),
    ModifiedBetaGeoFitter: (
        {"r": 0.5248377255677019, "alpha": 6.182988479134203, "a": 0.8913562809310627, "b": 1.614000025671838},
        [0.38971644, 0.70612626, 0.83121098],
        [0.15395364, 1.26267078, 4.22762557],
        [0.05306063, 1.1822838, 1.80363619],
    ),
    ParetoNBDFitter: (
        {"r": 0.5532799647652142, "alpha": 10.577863522348636, "s": 0.6062453239787837, "beta": 11.6689958633845},
        [0.29509719, 0.86911537, 0.93605549],
        [0.10705946, 1.45509345, 4.63609359],
        [0.05100579, 1.21339295, 1.90984812],
    ),
}  # fmt: skip


@pytest.mark.parametrize("model_class", TRANSACTION_MODELS)
def test_predictions_agree_with_lifetimes_at_the_same_parameters(
    model_class: type[TransactionFitter],
) -> None:
    params, p_alive, conditional, unconditional = LIFETIMES[model_class]
    model = model_class.from_params(params)
    c = CUSTOMERS
    assert model.conditional_probability_alive(c["frequency"], c["recency"], c["T"]) == (
        pytest.approx(p_alive, rel=1e-6)
    )
    assert model.conditional_expected_number_of_purchases_up_to_time(
        39, c["frequency"], c["recency"], c["T"]
    ) == pytest.approx(conditional, rel=1e-6)
    assert model.expected_number_of_purchases_up_to_time([1.0, 39.0, 78.0]) == pytest.approx(
        unconditional, rel=1e-6
    )


def test_clv_agrees_with_lifetimes(cdnow_spend: pd.DataFrame) -> None:
    # lifetimes 0.11.3 customer_lifetime_value(bgf, ..., time=12, discount_rate=0.01, freq="W")
    # with both models fitted on CDNOW: first customer 36.27849576, mean 30.3393718 (1e-5 rel).
    d = cdnow_spend
    repeaters = d[d["x"] > 0]
    spend = GammaGammaFitter().fit(repeaters["x"], repeaters["zbar"])
    purchases = BetaGeoFitter().fit(d["x"], d["t_x"], d["T"])
    clv = spend.customer_lifetime_value(
        purchases, d["x"], d["t_x"], d["T"], d["zbar"], time=12, discount_rate=0.01, freq="W"
    )
    assert clv[0] == pytest.approx(36.27849576, rel=1e-5)
    assert clv.mean() == pytest.approx(30.3393718, rel=1e-5)


def test_gamma_gamma_expected_spend_shrinks_towards_the_population_mean() -> None:
    model = GammaGammaFitter.from_params({"p": 6.25, "q": 3.74, "v": 15.44})
    population = 6.25 * 15.44 / (3.74 - 1)
    one, many, none = model.conditional_expected_average_profit([1, 50, 0], [100.0, 100.0, 0.0])
    assert none == pytest.approx(population)
    assert population < one < many < 100.0


# -- weights and compression --------------------------------------------------------------------


@pytest.mark.parametrize("model_class", TRANSACTION_MODELS)
def test_fitting_on_weighted_unique_rows_equals_fitting_on_customers(
    model_class: type[TransactionFitter], cdnow: pd.DataFrame
) -> None:
    grouped = cdnow.groupby(["frequency", "recency", "T"]).size().reset_index(name="count")
    assert len(grouped) < len(cdnow)
    raw = model_class().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    weighted = model_class().fit(
        grouped["frequency"], grouped["recency"], grouped["T"], weights=grouped["count"]
    )
    assert weighted.log_likelihood_ == pytest.approx(raw.log_likelihood_, abs=1e-6)
    assert weighted.n_customers_ == raw.n_customers_ == len(cdnow)
    for name in raw.param_names:
        assert weighted.params_[name] == pytest.approx(raw.params_[name], rel=1e-5)


def test_log_likelihood_at_the_optimum_equals_the_fitted_value(
    bg: BetaGeoFitter, cdnow: pd.DataFrame
) -> None:
    value = bg.log_likelihood(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    assert value == pytest.approx(bg.log_likelihood_, abs=1e-8)


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_class", TRANSACTION_MODELS)
def test_it_refuses_to_predict_before_fit(model_class: type[TransactionFitter]) -> None:
    model = model_class()
    with pytest.raises(NotFittedError):
        model.conditional_probability_alive([1], [1.0], [2.0])
    with pytest.raises(NotFittedError):
        model.conditional_expected_number_of_purchases_up_to_time(1, [1], [1.0], [2.0])
    with pytest.raises(NotFittedError):
        model.expected_number_of_purchases_up_to_time(1)
    with pytest.raises(NotFittedError):
        model.summary()


def test_the_spend_model_refuses_to_predict_before_fit() -> None:
    with pytest.raises(NotFittedError):
        GammaGammaFitter().conditional_expected_average_profit([1], [10.0])


@pytest.mark.parametrize("model_class", TRANSACTION_MODELS)
def test_it_refuses_data_without_repeat_buyers(model_class: type[TransactionFitter]) -> None:
    with pytest.raises(IdentificationError, match="repeat purchase"):
        model_class().fit([0] * 50, [0.0] * 50, np.linspace(1, 50, 50))


@pytest.mark.parametrize("model_class", TRANSACTION_MODELS)
def test_it_refuses_too_few_customers(model_class: type[TransactionFitter]) -> None:
    with pytest.raises(IdentificationError, match="too few"):
        model_class().fit([1, 2, 0], [3.0, 4.0, 0.0], [5.0, 5.0, 5.0])


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "field", "reason"),
    [
        ([1, -1], [1.0, 0.0], [2.0, 2.0], "frequency", "negative"),
        ([1, 1.5], [1.0, 1.0], [2.0, 2.0], "frequency", "whole numbers"),
        ([1, 1], [1.0, 3.0], [2.0, 2.0], "recency", "exceed T"),
        ([1, 1], [1.0, -1.0], [2.0, 2.0], "recency", "negative"),
        ([1, 1], [1.0, np.nan], [2.0, 2.0], "recency", "NaN"),
        ([1, 1], [1.0, 1.0], [2.0, -2.0], "T", "negative"),
        ([1, 1], [1.0, 1.0], [2.0, np.inf], "T", "infinite"),
        ([1, 1, 1], [1.0, 1.0], [2.0, 2.0], "frequency=3", "different lengths"),
        ([1, 0], [1.0, 1.0], [2.0, 2.0], "recency", "frequency 0"),
        ([1, 1], [1.0, 0.0], [2.0, 2.0], "recency", "need recency > 0"),
        (["a", "b"], [1.0, 1.0], [2.0, 2.0], "frequency", "numbers"),
    ],
)
def test_it_refuses_bad_input_and_names_the_field(
    frequency: list[object], recency: list[float], T: list[float], field: str, reason: str
) -> None:
    with pytest.raises(InputError, match=reason) as caught:
        BetaGeoFitter().fit(frequency, recency, T)
    assert field in str(caught.value)


def test_it_refuses_negative_weights() -> None:
    with pytest.raises(InputError, match="weights"):
        BetaGeoFitter().fit([1] * 12, [1.0] * 12, [2.0] * 12, weights=[1.0] * 11 + [-1.0])


def test_it_refuses_a_negative_horizon(bg: BetaGeoFitter) -> None:
    with pytest.raises(InputError, match="t: "):
        bg.conditional_expected_number_of_purchases_up_to_time(-1, 1, 1.0, 2.0)


def test_the_spend_model_refuses_customers_without_repeat_purchases() -> None:
    with pytest.raises(InputError, match="frequency") as caught:
        GammaGammaFitter().fit([1, 2, 0] * 5, [10.0, 12.0, 0.0] * 5)
    assert "repeat buyers" in str(caught.value)


def test_the_spend_model_cannot_identify_identical_spend() -> None:
    with pytest.raises(IdentificationError, match="same average spend"):
        GammaGammaFitter().fit([1, 2, 3] * 5, [10.0] * 15)


def test_an_exhausted_iteration_budget_is_a_convergence_error(cdnow: pd.DataFrame) -> None:
    with pytest.raises(ConvergenceError, match="max_iter"):
        BetaGeoFitter(max_iter=2).fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])


def test_from_params_requires_every_parameter() -> None:
    with pytest.raises(InputError, match="missing"):
        BetaGeoFitter.from_params({"r": 1.0, "alpha": 1.0, "a": 1.0})
    with pytest.raises(InputError, match="positive"):
        ParetoNBDFitter.from_params({"r": 1.0, "alpha": -1.0, "s": 1.0, "beta": 1.0})


def test_an_early_stop_at_a_flat_gradient_warns_and_keeps_the_estimate(
    cdnow: pd.DataFrame,
) -> None:
    class WarmStarted(BetaGeoFitter):
        """Starts at the published optimum, so one iteration leaves a tiny gradient."""

        def _initial_params(self, data: object) -> np.ndarray:
            return np.array([0.2426, 4.4136, 0.7930, 2.4259])

    with pytest.warns(StatisticalWarning, match="stopped early"):
        model = WarmStarted(max_iter=1).fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    assert not model.converged_
    assert model.log_likelihood_ == pytest.approx(-9582.43, abs=0.01)
