"""Gamma-Gamma spend model and discounted customer lifetime value.

Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base Analysis",
Journal of Marketing Research 42(4), section "Spend"; after Colombo & Jiang (1999). A customer's
transaction values are Gamma(p, ν) around her mean p/ν, with ν ~ Gamma(q, γ) across customers.
The paper calls the scale γ; here it is ``v`` (as in lifetimes).

The model is fitted on the average spend z̄ of customers' *repeat* transactions, so it needs
frequency > 0; it assumes spend is independent of the purchase process (check that the
correlation between frequency and monetary value is weak before relying on it).
"""

from __future__ import annotations

import warnings
from typing import ClassVar, Self

import numpy as np
from scipy.special import digamma, gammaln

from vafa.analytics.errors import IdentificationError, InputError, StatisticalWarning

from .base import MIN_CUSTOMERS, CLVFitter, TransactionFitter, weighted_sum
from .inputs import (
    ArrayLike,
    FloatArray,
    as_float_array,
    broadcast_columns,
    compress_rows,
    require_integer,
    require_non_negative,
    validate_weights,
)

#: Length of a month in the transaction model's time unit (lifetimes' convention).
MONTH_IN_UNITS: dict[str, float] = {"D": 30.0, "W": 4.345, "M": 1.0, "H": 30.0 * 24.0}


class GammaGammaFitter(CLVFitter):
    """Gamma-Gamma model of average transaction value. Parameters p, q, v (the paper's γ)."""

    param_names: ClassVar[tuple[str, ...]] = ("p", "q", "v")

    def fit(
        self,
        frequency: ArrayLike,
        monetary_value: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> Self:
        """Fit on repeat buyers: ``frequency`` x > 0 repeat purchases of mean value z̄ > 0.

        Customers with frequency 0 carry no information on spend under this model, and a zero
        in the data usually means the caller forgot to select repeat buyers, so they are refused
        (InputError) rather than silently dropped: pass ``summary[summary.frequency > 0]``.
        """
        self._check_settings()
        x, spend = _validate_spend(frequency, monetary_value, allow_broadcast=False)
        without_repeat = x == 0
        if without_repeat.any():
            raise InputError(
                f"frequency: the spend model is fitted on repeat buyers only, but "
                f"{int(without_repeat.sum())} customer(s) have frequency 0 (first at position "
                f"{int(np.flatnonzero(without_repeat)[0])}); select frequency > 0 first"
            )
        not_positive = spend <= 0
        if not_positive.any():
            raise InputError(
                f"monetary_value: the average spend of a repeat buyer must be > 0; "
                f"{int(not_positive.sum())} value(s) are not (first at position "
                f"{int(np.flatnonzero(not_positive)[0])})"
            )
        w = validate_weights(weights, len(x))
        n = float(w.sum())
        if n < MIN_CUSTOMERS:
            raise IdentificationError(
                f"GammaGammaFitter: {n:g} customers are too few to estimate p, q and v "
                f"(need at least {MIN_CUSTOMERS})"
            )
        if np.ptp(spend[w > 0]) == 0:
            raise IdentificationError(
                "GammaGammaFitter: every customer has the same average spend, so the spread of "
                "spend across customers (q, v) cannot be estimated"
            )
        (ux, uz), uw = compress_rows([x, spend], w)
        log_x, log_z = np.log(ux), np.log(uz)

        def objective(params: FloatArray) -> tuple[float, FloatArray]:
            p, q, v = params
            px = p * ux
            log_vxz = np.log(v + ux * uz)
            ll = (
                gammaln(px + q)
                - gammaln(px)
                - gammaln(q)
                + q * np.log(v)
                + px * log_x
                + (px - 1.0) * log_z
                - (px + q) * log_vxz
            )
            psi_pq = digamma(px + q)
            d_p = ux * (psi_pq - digamma(px) + log_x + log_z - log_vxz)
            d_q = psi_pq - digamma(q) + np.log(v) - log_vxz
            d_v = q / v - (px + q) / (v + ux * uz)
            gradient = np.array(
                [weighted_sum(uw, d_p), weighted_sum(uw, d_q), weighted_sum(uw, d_v)]
            )
            return -float(weighted_sum(uw, ll)), -gradient

        mean_spend = float(weighted_sum(uw, uz) / uw.sum())
        # start at p = 2, q = 3 with v such that the population mean p·v/(q-1) is the sample mean
        self._optimise(objective, np.array([2.0, 3.0, mean_spend]), n)
        self._warn_if_mean_infinite()
        return self

    def _warn_if_mean_infinite(self) -> None:
        if self.params_["q"] <= 1.0:
            warnings.warn(
                f"GammaGammaFitter: q = {self.params_['q']:.3g} ≤ 1, so the population mean spend "
                "is infinite; the expected spend of customers without repeat purchases is inf",
                StatisticalWarning,
                stacklevel=3,
            )

    def conditional_expected_average_profit(
        self, frequency: ArrayLike, monetary_value: ArrayLike
    ) -> FloatArray:
        """E[mean transaction value | x, z̄] = p(v + x·z̄)/(p·x + q - 1) (FHL 2005).

        This is the posterior mean, a weighted average of the population mean p·v/(q-1) and the
        customer's own z̄; for x = 0 it is the population mean (infinite if q ≤ 1).
        """
        values = self._require_fitted()
        p, q, v = values
        x, spend = _validate_spend(frequency, monetary_value, allow_broadcast=True)
        denominator = p * x + q - 1.0
        with np.errstate(divide="ignore"):  # only where denominator ≤ 0: the mean is infinite
            return np.asarray(
                np.where(
                    denominator > 0, p * (v + x * spend) / np.maximum(denominator, 1e-300), np.inf
                ),
                dtype=np.float64,
            )

    def log_likelihood(
        self, frequency: ArrayLike, monetary_value: ArrayLike, weights: ArrayLike | None = None
    ) -> float:
        """Total log-likelihood of repeat buyers' average spend under the current parameters."""
        p, q, v = self._require_fitted()
        x, spend = _validate_spend(frequency, monetary_value, allow_broadcast=False)
        w = validate_weights(weights, len(x))
        if np.any(x == 0) or np.any(spend <= 0):
            raise InputError("frequency, monetary_value: need frequency > 0 and monetary_value > 0")
        px = p * x
        ll = (
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * np.log(v)
            + px * np.log(x)
            + (px - 1.0) * np.log(spend)
            - (px + q) * np.log(v + x * spend)
        )
        return float(weighted_sum(w, ll))

    def customer_lifetime_value(
        self,
        transaction_model: TransactionFitter,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        monetary_value: ArrayLike,
        time: int = 12,
        discount_rate: float = 0.01,
        freq: str = "D",
    ) -> FloatArray:
        """Discounted value of each customer's purchases over the next ``time`` months.

        CLV = Σ_{m=1..time} E[spend] · (E[purchases up to month m] - E[… up to m-1]) / (1+d)^m,
        lifetimes' convention: expected purchases from the fitted ``transaction_model``, expected
        spend from this model, ``discount_rate`` d per month, and ``freq`` the time unit the
        transaction model was fitted in ("D" days, "W" weeks, "M" months, "H" hours; a month is
        30 days or 4.345 weeks). The result is in the currency of ``monetary_value`` (floats:
        round and convert to Decimal before storing it as money).
        """
        if freq not in MONTH_IN_UNITS:
            raise InputError(f"freq: must be one of {sorted(MONTH_IN_UNITS)}, got {freq!r}")
        if not (isinstance(time, int | np.integer) and time >= 0):
            raise InputError(f"time: must be a whole number of months ≥ 0, got {time!r}")
        if not (np.isfinite(discount_rate) and discount_rate > -1):
            raise InputError(f"discount_rate: must be a number > -1, got {discount_rate!r}")
        spend = self.conditional_expected_average_profit(frequency, monetary_value)
        month = MONTH_IN_UNITS[freq]
        previous = np.zeros(np.shape(spend))
        value = np.zeros(np.shape(spend))
        for m in range(1, int(time) + 1):
            cumulative = transaction_model.conditional_expected_number_of_purchases_up_to_time(
                m * month, frequency, recency, T
            )
            value = value + spend * (cumulative - previous) / (1.0 + discount_rate) ** m
            previous = cumulative
        return np.asarray(value, dtype=np.float64)


def _validate_spend(
    frequency: ArrayLike, monetary_value: ArrayLike, *, allow_broadcast: bool
) -> tuple[FloatArray, FloatArray]:
    x = as_float_array(frequency, "frequency")
    spend = as_float_array(monetary_value, "monetary_value")
    if allow_broadcast:
        x, spend = broadcast_columns({"frequency": x, "monetary_value": spend})
    else:
        x, spend = np.atleast_1d(x), np.atleast_1d(spend)
        if len(x) != len(spend):
            raise InputError(
                f"columns have different lengths: frequency={len(x)}, monetary_value={len(spend)}"
            )
    require_non_negative(x, "frequency")
    require_integer(x, "frequency")
    require_non_negative(spend, "monetary_value")
    return x, spend
