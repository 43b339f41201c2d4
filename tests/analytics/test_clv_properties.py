"""Properties every purchase model must keep for any customer history, extremes included.

The models are built once with fixed plausible parameters (``from_params``) — never refitted
inside the hypothesis loop — in a weekly unit (CDNOW's estimates) and a daily one.
"""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vafa.analytics.clv import (
    BetaGeoFitter,
    ModifiedBetaGeoFitter,
    ParetoNBDFitter,
    TransactionFitter,
)

MODELS: list[TransactionFitter] = [
    # CDNOW estimates (weeks) from the published fits
    BetaGeoFitter.from_params({"r": 0.2426, "alpha": 4.4136, "a": 0.7930, "b": 2.4259}),
    ModifiedBetaGeoFitter.from_params({"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}),
    ParetoNBDFitter.from_params({"r": 0.5533, "alpha": 10.578, "s": 0.6062, "beta": 11.668}),
    # daily units, a > 1 (finite lifetime purchases), and Pareto/NBD with α ≫ β and β ≫ α
    BetaGeoFitter.from_params({"r": 0.25, "alpha": 30.0, "a": 2.5, "b": 6.0}),
    ModifiedBetaGeoFitter.from_params({"r": 3.0, "alpha": 200.0, "a": 0.2, "b": 9.0}),
    ParetoNBDFitter.from_params({"r": 0.55, "alpha": 74.0, "s": 0.6, "beta": 0.5}),
    ParetoNBDFitter.from_params({"r": 2.0, "alpha": 0.3, "s": 1.0, "beta": 400.0}),
]


@st.composite
def histories(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A batch of (frequency, recency, T) with extremes: 0 or 1,000 purchases, recency 0 or T."""
    n = draw(st.integers(1, 8))
    frequency = np.array(
        draw(
            st.lists(
                st.one_of(st.integers(0, 30), st.sampled_from([0, 1, 1000])), min_size=n, max_size=n
            )
        ),
        dtype=float,
    )
    age = np.array(
        draw(
            st.lists(
                st.one_of(st.floats(0, 3650), st.sampled_from([0.0, 3650.0])),
                min_size=n,
                max_size=n,
            )
        )
    )
    share = np.array(
        draw(
            st.lists(
                st.one_of(st.floats(0, 1), st.sampled_from([0.0, 1.0])), min_size=n, max_size=n
            )
        )
    )
    recency = np.where(frequency > 0, np.round(share * age, 2), 0.0)
    return frequency, np.minimum(recency, age), age


horizons = st.tuples(st.floats(0, 5000), st.floats(0, 5000)).map(sorted)


@settings(max_examples=60, deadline=None)
@given(histories(), st.sampled_from(range(len(MODELS))))
def test_p_alive_is_a_probability(
    history: tuple[np.ndarray, np.ndarray, np.ndarray], which: int
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p_alive = MODELS[which].conditional_probability_alive(*history)
    assert np.all(np.isfinite(p_alive))
    assert np.all((p_alive >= 0) & (p_alive <= 1))


@settings(max_examples=60, deadline=None)
@given(histories(), horizons, st.sampled_from(range(len(MODELS))))
def test_expected_purchases_are_finite_and_grow_with_the_horizon(
    history: tuple[np.ndarray, np.ndarray, np.ndarray], horizon: list[float], which: int
) -> None:
    model = MODELS[which]
    short, long = horizon
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        near = model.conditional_expected_number_of_purchases_up_to_time(short, *history)
        far = model.conditional_expected_number_of_purchases_up_to_time(long, *history)
        unconditional = model.expected_number_of_purchases_up_to_time([short, long])
    for values in (near, far, unconditional):
        assert np.all(np.isfinite(values))
        assert np.all(values >= 0)
    assert np.all(far >= near * (1 - 1e-9) - 1e-12)
    assert unconditional[1] >= unconditional[0] * (1 - 1e-9) - 1e-12


@settings(max_examples=40, deadline=None)
@given(histories(), st.floats(0, 1000), st.sampled_from(range(len(MODELS))))
def test_a_longer_silence_never_raises_p_alive(
    history: tuple[np.ndarray, np.ndarray, np.ndarray], extra: float, which: int
) -> None:
    frequency, recency, age = history
    model = MODELS[which]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        now = model.conditional_probability_alive(frequency, recency, age)
        later = model.conditional_probability_alive(frequency, recency, age + extra)
    assert np.all(later <= now + 1e-12)


@settings(max_examples=25, deadline=None)
@given(histories(), st.sampled_from(range(len(MODELS))))
def test_the_log_likelihood_of_any_history_is_finite(
    history: tuple[np.ndarray, np.ndarray, np.ndarray], which: int
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = MODELS[which].log_likelihood(*history)
    assert np.isfinite(value)
