"""Pareto/NBD purchase model.

Schmittlein, Morrison & Colombo (1987), "Counting Your Customers: Who Are They and What Will They
Do Next?", Management Science 33(1); formulas as in Fader & Hardie (2005), "A Note on Deriving the
Pareto/NBD Model and Related Expressions". While active, a customer buys as a Poisson process with
rate λ ~ Gamma(r, α); her lifetime is exponential with rate μ ~ Gamma(s, β).

Likelihood (as derived in the note), with m = r + s + x:

    L = Γ(r+x) α^r β^s / Γ(r) · [ (α+T)^-(r+x) (β+T)^-s  +  s · (I(t_x) - I(T)) ],
    I(τ) = ∫_τ^∞ (α+u)^-(r+x) (β+u)^-(s+1) du,

where s·(I(t_x) - I(T)) equals the note's s/(r+s+x)·A_0. We write I with Euler's transformation
as I(τ) = (α+τ)^-(r+x) (β+τ)^-s / m · 2F1(1, r+x; m+1; (α-β)/(α+τ)) when α ≥ β, and
I(τ) = (α+τ)^-(r+x-1) (β+τ)^-(s+1) / m · 2F1(1, s+1; m+1; (β-α)/(β+τ)) when α < β. The 2F1 lies
between 1 and 1/(1-z), so log I is finite for any customer; :mod:`.hypergeometric` evaluates it
(series, or quadrature where scipy's hyp2f1 returns NaN or loses accuracy) with its gradient,
which gives the likelihood's analytic gradient.

Speed: I depends on (x, τ) only, so it is evaluated once per distinct (x, t_x) and (x, T) pair,
far fewer than the customers (or even the distinct (x, t_x, T) rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.special import digamma, expit, gammaln

from .base import TransactionFitter, weighted_sum
from .hypergeometric import log_hyp2f1_one
from .inputs import FloatArray, IntArray, Summary, unique_rows


@dataclass(frozen=True)
class _Prepared:
    x: FloatArray
    T: FloatArray
    w: FloatArray
    unique_x: FloatArray
    weight_per_x: FloatArray
    pair_x: FloatArray  # distinct (x, τ) pairs, τ ∈ {t_x, T}
    pair_tau: FloatArray
    tx_pair: IntArray  # row → its (x, t_x) pair
    T_pair: IntArray  # row → its (x, T) pair


class ParetoNBDFitter(TransactionFitter):
    """Pareto/NBD model (Schmittlein, Morrison & Colombo 1987). Parameters r, alpha, s, beta."""

    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "s", "beta")

    def _initial_params(self, data: Summary) -> FloatArray:
        start = super()._initial_params(data)
        # the drop-out rate's scale: about the typical customer age
        start[3] = float(np.sum(data.weights * data.T) / np.sum(data.weights)) or 1.0
        return start

    def _prepare(self, data: Summary) -> _Prepared:
        unique_x, x_index = np.unique(data.frequency, return_inverse=True)
        n = len(data.frequency)
        (pair_x, pair_tau), inverse = unique_rows(
            [
                np.concatenate([data.frequency, data.frequency]),
                np.concatenate([data.recency, data.T]),
            ]
        )
        return _Prepared(
            x=data.frequency,
            T=data.T,
            w=data.weights,
            unique_x=unique_x,
            weight_per_x=np.bincount(x_index.reshape(-1), weights=data.weights).astype(np.float64),
            pair_x=pair_x,
            pair_tau=pair_tau,
            tx_pair=inverse[:n],
            T_pair=inverse[n:],
        )

    def _negative_log_likelihood(
        self, params: FloatArray, prepared: _Prepared
    ) -> tuple[float, FloatArray]:
        r, alpha, s, beta = params
        d = prepared
        log_i, grad_log_i = _log_tail_integral(params, d.pair_x, d.pair_tau)
        x, age, w = d.x, d.T, d.w
        log_alpha_T = np.log(alpha + age)
        log_beta_T = np.log(beta + age)
        # term 1: alive at T; term 2: died in (t_x, T]
        term1 = -(r + x) * log_alpha_T - s * log_beta_T
        li_tx, li_T = log_i[d.tx_pair], log_i[d.T_pair]
        gap = np.minimum(li_T - li_tx, 0.0)  # log(I(T)/I(t_x)) ≤ 0; 0 when t_x = T
        died_possible = gap < 0.0
        safe_gap = np.where(died_possible, gap, -1.0)
        term2 = np.where(died_possible, np.log(s) + li_tx + np.log(-np.expm1(safe_gap)), -np.inf)
        mix = np.logaddexp(term1, term2)
        share2 = np.exp(term2 - mix)
        share1 = 1.0 - share2
        n = float(np.sum(w))
        ux = d.unique_x
        total = (
            float(weighted_sum(d.weight_per_x, gammaln(r + ux) - gammaln(r)))
            + n * (r * np.log(alpha) + s * np.log(beta))
            + float(weighted_sum(w, mix))
        )
        # d log(I(t_x) - I(T)) = (∇log I(t_x) - ρ ∇log I(T)) / (1 - ρ), ρ = I(T)/I(t_x)
        rho = np.exp(safe_gap)
        inv_one_minus_rho = np.where(died_possible, 1.0 / -np.expm1(safe_gap), 0.0)
        ws2 = w * share2
        ws1 = w * share1
        # one gather of the (pairs × 4) gradient table per side instead of one per parameter
        table = np.stack(grad_log_i, axis=1)
        died_weight = ws2 * inv_one_minus_rho
        grad = np.sum(died_weight[:, None] * table[d.tx_pair], axis=0) - np.sum(
            (died_weight * rho)[:, None] * table[d.T_pair], axis=0
        )
        grad[0] += (
            float(weighted_sum(d.weight_per_x, digamma(r + ux) - digamma(r)))
            + n * np.log(alpha)
            - float(weighted_sum(ws1, log_alpha_T))
        )
        grad[1] += n * r / alpha - float(weighted_sum(ws1 * (r + x), 1.0 / (alpha + age)))
        grad[2] += n * np.log(beta) - float(weighted_sum(ws1, log_beta_T)) + float(np.sum(ws2)) / s
        grad[3] += n * s / beta - float(weighted_sum(ws1, s / (beta + age)))
        return -total, -grad

    # -- predictions -----------------------------------------------------------------------

    def _log_odds_dead(
        self, params: FloatArray, x: FloatArray, t_x: FloatArray, age: FloatArray
    ) -> FloatArray:
        """log[s·(I(t_x) - I(T))] - log[(α+T)^-(r+x) (β+T)^-s]; -inf when t_x = T."""
        r, alpha, s, beta = params
        (pair_x, pair_tau), inverse = unique_rows(
            [np.concatenate([x.ravel(), x.ravel()]), np.concatenate([t_x.ravel(), age.ravel()])]
        )
        log_i, _ = _log_tail_integral(params, pair_x, pair_tau)
        n = x.size
        li_tx = log_i[inverse[:n]].reshape(x.shape)
        li_T = log_i[inverse[n:]].reshape(x.shape)
        gap = np.minimum(li_T - li_tx, 0.0)
        died_possible = gap < 0.0
        safe_gap = np.where(died_possible, gap, -1.0)
        alive_term = -(r + x) * np.log(alpha + age) - s * np.log(beta + age)
        return np.where(
            died_possible,
            np.log(s) + li_tx + np.log(-np.expm1(safe_gap)) - alive_term,
            -np.inf,
        )

    def _probability_alive(
        self, params: FloatArray, x: FloatArray, t_x: FloatArray, age: FloatArray
    ) -> FloatArray:
        """P(alive) = 1/(1 + s/(r+s+x)·(α+T)^(r+x)(β+T)^s·A_0), as expit(-log odds)."""
        if x.size == 0:
            return np.zeros(x.shape)
        return np.asarray(expit(-self._log_odds_dead(params, x, t_x, age)), dtype=np.float64)

    def _conditional_expected(
        self, params: FloatArray, t: FloatArray, x: FloatArray, t_x: FloatArray, age: FloatArray
    ) -> FloatArray:
        """E[purchases in (T, T+t]] = (r+x)(β+T)/((α+T)(s-1)) · [1 - ((β+T)/(β+T+t))^(s-1)] · P(alive).

        Written as (r+x)/(α+T) · (β+T) · h(s-1, log(1 + t/(β+T))) with h(k, u) = (1 - e^(-k·u))/k,
        which is exact for small t and has the limit u at s = 1.
        """
        r, alpha, s, beta = params
        rate = (r + x) / (alpha + age)
        return (
            rate
            * (beta + age)
            * _one_minus_exp_over(s - 1.0, np.log1p(t / (beta + age)))
            * (self._probability_alive(params, x, t_x, age))
        )

    def _unconditional_expected(self, params: FloatArray, t: FloatArray) -> FloatArray:
        """E[X(t)] = r·β/(α(s-1)) · [1 - (β/(β+t))^(s-1)]."""
        r, alpha, s, beta = params
        return np.asarray(
            r / alpha * beta * _one_minus_exp_over(s - 1.0, np.log1p(t / beta)), dtype=np.float64
        )


def _one_minus_exp_over(k: float, u: FloatArray) -> FloatArray:
    """(1 - e^(-k·u)) / k for u ≥ 0, continuous at k = 0 (where it is u)."""
    ku = k * u
    small = np.abs(ku) < 1e-8
    safe_k = k if k != 0.0 else 1.0
    return np.asarray(
        np.where(small, u * (1.0 - 0.5 * ku), -np.expm1(-ku) / safe_k), dtype=np.float64
    )


def _log_tail_integral(
    params: FloatArray, x: FloatArray, tau: FloatArray
) -> tuple[FloatArray, list[FloatArray]]:
    """log I(τ) for each (x, τ) and its gradient [d/dr, d/dα, d/ds, d/dβ] (see module doc)."""
    r, alpha, s, beta = params
    m = r + s + x
    log_alpha = np.log(alpha + tau)
    log_beta = np.log(beta + tau)
    if alpha >= beta:
        z = (alpha - beta) / (alpha + tau)
        one_minus_z = (beta + tau) / (alpha + tau)
        h = log_hyp2f1_one(r + x, m + 1.0, z, one_minus_z)
        value = -(r + x) * log_alpha - s * log_beta - np.log(m) + h.value
        d_r = -log_alpha - 1.0 / m + h.d_b + h.d_c
        d_s = -log_beta - 1.0 / m + h.d_c
        d_alpha = -(r + x) / (alpha + tau) + h.d_z * one_minus_z / (alpha + tau)
        d_beta = -s / (beta + tau) - h.d_z / (alpha + tau)
    else:
        z = (beta - alpha) / (beta + tau)
        one_minus_z = (alpha + tau) / (beta + tau)
        h = log_hyp2f1_one(s + 1.0, m + 1.0, z, one_minus_z)
        value = -(r + x - 1.0) * log_alpha - (s + 1.0) * log_beta - np.log(m) + h.value
        d_r = -log_alpha - 1.0 / m + h.d_c
        d_s = -log_beta - 1.0 / m + h.d_b + h.d_c
        d_alpha = -(r + x - 1.0) / (alpha + tau) - h.d_z / (beta + tau)
        d_beta = -(s + 1.0) / (beta + tau) + h.d_z * one_minus_z / (beta + tau)
    return value, [d_r, d_alpha, d_s, d_beta]
