"""Shared machinery of the CLV estimators: fitting by maximum likelihood, standard errors, summary.

The estimators follow scikit-learn's conventions: ``__init__`` only stores its arguments, ``fit``
validates the data and returns ``self``, learned values end in ``_``, and asking for predictions
before ``fit`` raises :class:`~vafa.analytics.errors.NotFittedError`.

Optimisation. Every parameter is positive, so we optimise its logarithm with L-BFGS-B and the
model's analytic gradient. The objective is the mean negative log-likelihood per customer plus
``penalizer · Σ θ²`` (lifetimes' convention, so a penalizer means the same thing there and here).

Convergence rule:

* the optimiser reports success → ``converged_ = True``;
* it stopped early (iteration limit, line-search failure) but the gradient of the mean
  log-likelihood with respect to the log-parameters is below ``SMALL_GRADIENT`` in every
  coordinate → the estimate is kept, ``converged_ = False`` and a ``StatisticalWarning`` says so;
* otherwise, or if a parameter ran to the edge of the search box (``|log θ| ≥ LOG_BOUND``, which
  means the likelihood keeps improving as it goes to 0 or ∞) → ``ConvergenceError``.

Standard errors come from the inverse of the Hessian of the negative log-likelihood at the optimum,
obtained by central differences of the analytic gradient in log-parameters and mapped to the
natural parameters by the delta method (SE(θ) = θ · SE(log θ)). The 95% intervals in ``summary()``
are Wald intervals on the log scale, exp(log θ ± 1.96 SE(log θ)), so they stay positive.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from vafa.analytics.errors import (
    ConvergenceError,
    IdentificationError,
    InputError,
    NotFittedError,
    StatisticalWarning,
)

from .inputs import (
    ArrayLike,
    FloatArray,
    Summary,
    as_float_array,
    compress_summary,
    require_non_negative,
    require_repeat_after_first,
    validate_summary,
    validate_weights,
)

#: Search box for log-parameters: e^±30 spans 1e-13 .. 1e13 in any time unit.
LOG_BOUND = 30.0
#: Early stops are accepted (with a warning) when every log-parameter gradient is below this.
SMALL_GRADIENT = 1e-4
#: Fewer customers than this cannot identify a four-parameter model.
MIN_CUSTOMERS = 10
_Z_95 = 1.959963984540054
_HESSIAN_STEP = 1e-4

#: An objective: natural parameters → (total negative log-likelihood, its gradient).
Objective = Callable[[FloatArray], tuple[float, FloatArray]]


def weighted_sum(weights: FloatArray, values: FloatArray) -> float:
    """Σ weights·values without BLAS.

    ``np.dot`` hands long vectors to the BLAS library, whose worker threads busy-wait; on a busy
    machine that multiplied the CPU time of a fit by 10-15 in our benchmark. Elementwise product
    and sum stay on one thread and cost the same memory traffic.
    """
    return float(np.sum(weights * values))


class CLVFitter(ABC):
    """Base class: parameter storage, optimisation, standard errors and the summary table."""

    #: Parameter names in the order of the papers.
    param_names: ClassVar[tuple[str, ...]]

    params_: dict[str, float]
    log_likelihood_: float
    standard_errors_: dict[str, float]
    n_customers_: float
    converged_: bool
    n_iter_: int

    def __init__(self, penalizer: float = 0.0, tol: float = 1e-12, max_iter: int = 1000) -> None:
        """Store the settings (validated by ``fit``).

        penalizer: weight of the L2 penalty Σ θ² added to the mean negative log-likelihood;
            0 gives the maximum-likelihood estimate, a small value (0.001–0.1) tames flat
            likelihoods on small or odd data.
        tol: relative change of the objective at which L-BFGS-B stops.
        max_iter: iteration limit of the optimiser.
        """
        self.penalizer = penalizer
        self.tol = tol
        self.max_iter = max_iter

    def __repr__(self) -> str:
        if not hasattr(self, "params_"):
            return f"{type(self).__name__}(penalizer={self.penalizer}) [not fitted]"
        shown = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
        return f"{type(self).__name__}({shown})"

    @classmethod
    def from_params(cls, params: Mapping[str, float], **settings: Any) -> Self:
        """A model with the given parameters, as if fitted: for simulations, tests and reuse.

        ``params`` must name every parameter in ``param_names``. Values that only a fit
        produces are empty: ``log_likelihood_`` and the standard errors are NaN,
        ``n_customers_`` is 0, ``converged_`` is False and ``n_iter_`` is 0.
        """
        model = cls(**settings)
        missing = set(cls.param_names) - set(params)
        unknown = set(params) - set(cls.param_names)
        if missing or unknown:
            raise InputError(
                f"params: expected exactly {', '.join(cls.param_names)}; "
                f"missing {sorted(missing)}, unknown {sorted(unknown)}"
            )
        values = np.array([float(params[name]) for name in cls.param_names])
        if not (np.all(np.isfinite(values)) and np.all(values > 0)):
            raise InputError(f"params: every parameter must be a positive number, got {params}")
        model._set_fitted(values, log_likelihood=math.nan, standard_errors=None, n_customers=0.0)
        model.converged_ = False
        model.n_iter_ = 0
        return model

    def summary(self) -> pd.DataFrame:
        """One row per parameter: estimate, standard error and 95% interval (see module doc)."""
        values = self._require_fitted()
        se = np.array([self.standard_errors_[name] for name in self.param_names])
        se_log = se / values
        return pd.DataFrame(
            {
                "estimate": values,
                "std_error": se,
                "ci_lower_95": values * np.exp(-_Z_95 * se_log),
                "ci_upper_95": values * np.exp(_Z_95 * se_log),
            },
            index=pd.Index(list(self.param_names), name="param"),
        )

    # -- internals -------------------------------------------------------------------------

    def _require_fitted(self) -> FloatArray:
        """The parameters as an array in ``param_names`` order, or NotFittedError."""
        if not hasattr(self, "params_"):
            raise NotFittedError(
                f"{type(self).__name__} is not fitted yet: call fit() (or from_params()) first"
            )
        return np.array([self.params_[name] for name in self.param_names], dtype=np.float64)

    def _check_settings(self) -> None:
        if not (np.isfinite(self.penalizer) and self.penalizer >= 0):
            raise InputError(f"penalizer: must be a number ≥ 0, got {self.penalizer}")
        if not (np.isfinite(self.tol) and self.tol > 0):
            raise InputError(f"tol: must be a number > 0, got {self.tol}")
        if not (isinstance(self.max_iter, int) and self.max_iter >= 1):
            raise InputError(f"max_iter: must be an integer ≥ 1, got {self.max_iter}")

    def _set_fitted(
        self,
        values: FloatArray,
        *,
        log_likelihood: float,
        standard_errors: FloatArray | None,
        n_customers: float,
    ) -> None:
        self.params_ = {name: float(v) for name, v in zip(self.param_names, values, strict=True)}
        self.log_likelihood_ = float(log_likelihood)
        se = standard_errors if standard_errors is not None else np.full(len(values), math.nan)
        self.standard_errors_ = {
            name: float(v) for name, v in zip(self.param_names, se, strict=True)
        }
        self.n_customers_ = float(n_customers)

    def _optimise(self, objective: Objective, start: FloatArray, n_customers: float) -> None:
        """Maximise the likelihood from ``start`` and store the results (see module doc)."""
        penalizer = float(self.penalizer)

        def scaled(log_params: FloatArray) -> tuple[float, FloatArray]:
            params = np.exp(log_params)
            # Line-search trial points can be wild (e.g. α = e^25). Floating-point trouble there
            # shows up as a non-finite value or gradient, which is rejected just below, so the
            # warnings would only be noise; the final estimate is checked for finiteness too.
            with np.errstate(all="ignore"):
                value, gradient = objective(params)
            f = value / n_customers + penalizer * float(np.sum(params**2))
            g = params * (gradient / n_customers + 2.0 * penalizer * params)
            if not np.isfinite(f) or not np.all(np.isfinite(g)):
                # L-BFGS-B backs off from a non-finite trial point only if told it is worse
                return math.inf, np.zeros_like(log_params)
            return f, g

        x0 = np.clip(np.log(start), -LOG_BOUND + 1, LOG_BOUND - 1)
        f0, _ = scaled(x0)
        if not np.isfinite(f0):
            raise ConvergenceError(
                f"{type(self).__name__}: the log-likelihood is not finite at the starting values "
                f"{dict(zip(self.param_names, np.exp(x0), strict=True))}"
            )
        result = minimize(
            scaled,
            x0,
            jac=True,
            method="L-BFGS-B",
            bounds=[(-LOG_BOUND, LOG_BOUND)] * len(x0),
            options={"maxiter": self.max_iter, "ftol": self.tol, "gtol": 1e-9},
        )
        log_params = np.asarray(result.x, dtype=np.float64)
        value, gradient = scaled(log_params)
        at_edge = [
            name
            for name, v in zip(self.param_names, log_params, strict=True)
            if abs(v) >= LOG_BOUND - 1e-6
        ]
        if at_edge:
            raise ConvergenceError(
                f"{type(self).__name__}: parameter(s) {', '.join(at_edge)} ran to the edge of the "
                f"search range (the likelihood keeps improving towards 0 or infinity); the data "
                f"do not pin the model down. Try a penalizer > 0 (e.g. 0.01) or more data."
            )
        converged = bool(result.success)
        if not converged:
            worst = float(np.max(np.abs(gradient))) if np.isfinite(value) else math.inf
            if worst >= SMALL_GRADIENT:
                raise ConvergenceError(
                    f"{type(self).__name__}: the optimiser stopped without converging "
                    f"({result.message}); largest gradient {worst:.3g}. Try a larger max_iter "
                    f"or a penalizer > 0."
                )
            warnings.warn(
                f"{type(self).__name__}: the optimiser stopped early ({result.message}) but the "
                f"gradient is small ({worst:.2g}); the estimate is kept, converged_ is False.",
                StatisticalWarning,
                stacklevel=3,
            )
        params = np.exp(log_params)
        raw_value, _ = objective(params)
        if not np.isfinite(raw_value):
            raise ConvergenceError(
                f"{type(self).__name__}: the log-likelihood at the estimate is not finite"
            )
        standard_errors = self._standard_errors(scaled, log_params, n_customers)
        self._set_fitted(
            params,
            log_likelihood=-raw_value,
            standard_errors=standard_errors,
            n_customers=n_customers,
        )
        self.converged_ = converged
        self.n_iter_ = int(result.nit)

    def _standard_errors(
        self,
        scaled: Callable[[FloatArray], tuple[float, FloatArray]],
        log_params: FloatArray,
        n_customers: float,
    ) -> FloatArray:
        """SE of the natural parameters from the inverse Hessian in log-parameters (delta method)."""
        k = len(log_params)
        hessian = np.empty((k, k))
        for j in range(k):
            step = np.zeros(k)
            step[j] = _HESSIAN_STEP
            _, g_plus = scaled(log_params + step)
            _, g_minus = scaled(log_params - step)
            hessian[:, j] = (g_plus - g_minus) / (2 * _HESSIAN_STEP)
        hessian = 0.5 * (hessian + hessian.T) * n_customers  # of the total, not the mean
        try:
            eigenvalues = np.linalg.eigvalsh(hessian)
            if not (np.all(np.isfinite(eigenvalues)) and eigenvalues.min() > 0):
                raise np.linalg.LinAlgError("Hessian is not positive definite")
            covariance_log = np.linalg.inv(hessian)
        except np.linalg.LinAlgError:
            warnings.warn(
                f"{type(self).__name__}: the Hessian at the optimum is singular or not positive "
                "definite, so standard errors are unavailable (NaN); the likelihood is flat in "
                "some direction.",
                StatisticalWarning,
                stacklevel=4,
            )
            return np.full(k, math.nan)
        return np.exp(log_params) * np.sqrt(np.diag(covariance_log))


class TransactionFitter(CLVFitter):
    """Base class of the purchase-count models (BG/NBD, MBG/NBD, Pareto/NBD).

    Subclasses provide the log-likelihood with its gradient, P(alive), and the conditional and
    unconditional expected number of purchases, in the time unit of the data they were fitted on.
    Predictions accept arrays, pandas Series or scalars (broadcast together) and return a float64
    numpy array of the broadcast shape (0-d for scalars), with the same validation as ``fit``.
    """

    def fit(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> Self:
        """Fit by maximum likelihood on per-customer summaries and return ``self``.

        frequency: repeat purchases x; recency: age at the last purchase t_x (0 when x = 0,
        > 0 when x > 0); T: age at the end of the period; weights: optional count of customers
        per row.
        Identical rows are merged before fitting, so passing a million raw customers is fine.
        """
        self._check_settings()
        x, t_x, age = validate_summary(frequency, recency, T)
        require_repeat_after_first(x, t_x)
        w = validate_weights(weights, len(x))
        self._check_identified(x, w)
        data = compress_summary(x, t_x, age, w)
        prepared = self._prepare(data)
        self._optimise(
            lambda params: self._negative_log_likelihood(params, prepared),
            self._initial_params(data),
            data.n_customers,
        )
        return self

    def log_likelihood(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> float:
        """Total log-likelihood of the data under the current parameters (no penalty)."""
        params = self._require_fitted()
        x, t_x, age = validate_summary(frequency, recency, T)
        data = compress_summary(x, t_x, age, validate_weights(weights, len(x)))
        value, _ = self._negative_log_likelihood(params, self._prepare(data))
        return -value

    def conditional_probability_alive(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """P(the customer is still active at T | x, t_x, T), one value per customer."""
        params = self._require_fitted()
        x, t_x, age = validate_summary(frequency, recency, T, allow_broadcast=True)
        return self._probability_alive(params, x, t_x, age)

    def conditional_expected_number_of_purchases_up_to_time(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """Expected purchases in (T, T + t] for a customer with history (x, t_x, T)."""
        params = self._require_fitted()
        horizon = _validate_horizon(t)
        x, t_x, age = validate_summary(frequency, recency, T, allow_broadcast=True)
        try:
            horizon, x, t_x, age = np.broadcast_arrays(horizon, x, t_x, age)
        except ValueError:
            raise InputError(
                f"t: shape {np.shape(horizon)} does not match the customers' {np.shape(x)}"
            ) from None
        return self._conditional_expected(params, horizon, x, t_x, age)

    def expected_number_of_purchases_up_to_time(self, t: ArrayLike) -> FloatArray:
        """Expected purchases in (0, t] of a newly acquired customer (unconditional)."""
        params = self._require_fitted()
        return self._unconditional_expected(params, _validate_horizon(t))

    # -- for subclasses --------------------------------------------------------------------

    def _check_identified(self, x: FloatArray, w: FloatArray) -> None:
        n = float(w.sum())
        if n < MIN_CUSTOMERS:
            raise IdentificationError(
                f"{type(self).__name__}: {n:g} customers are too few to estimate "
                f"{len(self.param_names)} parameters (need at least {MIN_CUSTOMERS})"
            )
        if not np.any((x > 0) & (w > 0)):
            raise IdentificationError(
                f"{type(self).__name__}: no customer made a repeat purchase (all frequency = 0), "
                "so purchase rates and drop-out cannot be told apart"
            )

    def _initial_params(self, data: Summary) -> FloatArray:
        """Starting values: r = 1 and α matched to the observed purchase rate; others 1."""
        rate = float(np.sum(data.weights * data.frequency) / np.sum(data.weights * data.T))
        start = np.ones(len(self.param_names))
        start[1] = 1.0 / max(rate, 1e-12)
        return start

    @abstractmethod
    def _prepare(self, data: Summary) -> Any:
        """Precompute what the likelihood needs (unique values, index arrays) once per fit."""

    @abstractmethod
    def _negative_log_likelihood(
        self, params: FloatArray, prepared: Any
    ) -> tuple[float, FloatArray]:
        """Total negative log-likelihood (weighted) and its gradient in natural parameters."""

    @abstractmethod
    def _probability_alive(
        self, params: FloatArray, x: FloatArray, t_x: FloatArray, age: FloatArray
    ) -> FloatArray: ...

    @abstractmethod
    def _conditional_expected(
        self, params: FloatArray, t: FloatArray, x: FloatArray, t_x: FloatArray, age: FloatArray
    ) -> FloatArray: ...

    @abstractmethod
    def _unconditional_expected(self, params: FloatArray, t: FloatArray) -> FloatArray: ...


def _validate_horizon(t: ArrayLike) -> FloatArray:
    horizon = as_float_array(t, "t")
    require_non_negative(horizon, "t")
    return horizon
