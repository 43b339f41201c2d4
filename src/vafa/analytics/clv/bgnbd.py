"""BG/NBD and MBG/NBD purchase models.

BG/NBD: Fader, Hardie & Lee (2005), "'Counting Your Customers' the Easy Way: An Alternative to the
Pareto/NBD Model", Marketing Science 24(2). While active, a customer buys as a Poisson process with
rate λ ~ Gamma(r, α); after each *repeat* purchase she drops out with probability p ~ Beta(a, b).

MBG/NBD: Batislam, Denizel & Filiztekin (2007), "Empirical validation and comparison of models for
customer base analysis", IJRM 24(3). The same, except that the drop-out coin is also tossed right
after the first purchase, so customers without repeat purchases can be inactive too.

Time is in the unit of the data (weeks for CDNOW, days for most shops); α scales with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1, logsumexp

from .base import TransactionFitter, weighted_sum
from .inputs import FloatArray, IntArray, Summary
from .quadrature import EXP_SINH_LOG_W, EXP_SINH_U, finite_pieces


@dataclass(frozen=True)
class _Prepared:
    """Compressed rows plus the unique frequencies (gammaln/digamma are evaluated per x only)."""

    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    w: FloatArray
    unique_x: FloatArray
    x_index: IntArray
    weight_per_x: FloatArray


class BetaGeoFitter(TransactionFitter):
    """BG/NBD model (Fader, Hardie & Lee 2005). Parameters r, alpha, a, b.

    Likelihood: eq. (6) of the paper, in logs. Conditional expectation: eq. (10). P(alive):
    Fader, Hardie & Lee, "Computing P(alive) Using the BG/NBD Model" (note), computed in logs.
    """

    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    #: MBG/NBD tosses the drop-out coin at the first purchase as well.
    _drop_at_first_purchase: ClassVar[bool] = False

    def _initial_params(self, data: Summary) -> FloatArray:
        start = super()._initial_params(data)
        start[2], start[3] = 0.5, 2.0  # a < b: drop-out is typically well below one half
        return start

    def _prepare(self, data: Summary) -> _Prepared:
        unique_x, x_index = np.unique(data.frequency, return_inverse=True)
        return _Prepared(
            x=data.frequency,
            t_x=data.recency,
            T=data.T,
            w=data.weights,
            unique_x=unique_x,
            x_index=x_index.reshape(-1).astype(np.int64),
            weight_per_x=np.bincount(x_index.reshape(-1), weights=data.weights).astype(np.float64),
        )

    def _negative_log_likelihood(
        self, params: FloatArray, prepared: _Prepared
    ) -> tuple[float, FloatArray]:
        r, alpha, a, b = params
        d = prepared
        ux = d.unique_x
        # shift = 1 for MBG/NBD: survival of x + 1 coin tosses instead of x
        shift = 1.0 if self._drop_at_first_purchase else 0.0
        # Per unique x: log Γ(r+x)/Γ(r) and log B(a, b+x+shift)/B(a, b), with derivatives.
        log_gamma_ratio = gammaln(r + ux) - gammaln(r)
        d_gamma_ratio_r = digamma(r + ux) - digamma(r)
        log_beta_ratio = betaln(a, b + ux + shift) - betaln(a, b)
        psi_ab = digamma(a + b)
        psi_abx = digamma(a + b + ux + shift)
        d_beta_ratio_a = psi_ab - psi_abx
        d_beta_ratio_b = digamma(b + ux + shift) - psi_abx - digamma(b) + psi_ab

        x, t_x, age, w = d.x, d.t_x, d.T, d.w
        log_alpha_T = np.log(alpha + age)
        log_alpha_tx = np.log(alpha + t_x)
        beta_term = log_beta_ratio[d.x_index]
        # Term 1: still active at T. Term 2: dropped out right after the last purchase (at t_x),
        # possible only after a repeat purchase for BG/NBD; ratio B(a+1, b+x-1+shift)/B(a, b+x+shift)
        # = a / (b + x - 1 + shift).
        b_minus = b + x - 1.0 + shift
        can_drop = x > 0 if not self._drop_at_first_purchase else np.ones_like(x, dtype=bool)
        safe_b_minus = np.where(can_drop, b_minus, 1.0)
        term1 = beta_term - (r + x) * log_alpha_T
        term2 = np.where(
            can_drop,
            beta_term + np.log(a) - np.log(safe_b_minus) - (r + x) * log_alpha_tx,
            -np.inf,
        )
        mix = np.logaddexp(term1, term2)
        share2 = np.exp(term2 - mix)  # posterior weight of "dropped at t_x"; 0 where impossible
        share1 = 1.0 - share2
        n = float(np.sum(w))
        total = (
            float(weighted_sum(d.weight_per_x, log_gamma_ratio))
            + n * r * np.log(alpha)
            + float(weighted_sum(w, mix))
        )
        ws1, ws2 = w * share1, w * share2
        grad_r = (
            float(weighted_sum(d.weight_per_x, d_gamma_ratio_r))
            + n * np.log(alpha)
            - float(weighted_sum(ws1, log_alpha_T))
            - float(weighted_sum(ws2, log_alpha_tx))
        )
        grad_alpha = n * r / alpha - float(
            weighted_sum(w * (r + x), share1 / (alpha + age) + share2 / (alpha + t_x))
        )
        grad_a = float(weighted_sum(d.weight_per_x, d_beta_ratio_a)) + float(np.sum(ws2)) / a
        grad_b = float(weighted_sum(d.weight_per_x, d_beta_ratio_b)) - float(
            weighted_sum(ws2, 1.0 / safe_b_minus)
        )
        return -total, -np.array([grad_r, grad_alpha, grad_a, grad_b])

    # -- predictions -----------------------------------------------------------------------

    def _log_odds_dead(
        self, params: FloatArray, x: FloatArray, t_x: FloatArray, age: FloatArray
    ) -> FloatArray:
        """log of P(dropped at t_x, history) / P(active, history); -inf where dropping is impossible."""
        r, alpha, a, b = params
        shift = 1.0 if self._drop_at_first_purchase else 0.0
        can_drop = x > 0 if not self._drop_at_first_purchase else np.ones_like(x, dtype=bool)
        b_minus = np.where(can_drop, b + x - 1.0 + shift, 1.0)
        log_odds = (
            np.log(a) - np.log(b_minus) + (r + x) * (np.log(alpha + age) - np.log(alpha + t_x))
        )
        return np.where(can_drop, log_odds, -np.inf)

    def _probability_alive(
        self, params: FloatArray, x: FloatArray, t_x: FloatArray, age: FloatArray
    ) -> FloatArray:
        # 1 / (1 + odds) computed as expit(-log odds): no overflow for x = 1000 and t_x << T
        return np.asarray(expit(-self._log_odds_dead(params, x, t_x, age)), dtype=np.float64)

    def _conditional_expected(
        self, params: FloatArray, t: FloatArray, x: FloatArray, t_x: FloatArray, age: FloatArray
    ) -> FloatArray:
        """Eq. (10) of FHL 2005 (Batislam et al. 2007 for MBG): E[purchases | active] · P(alive)."""
        return self._expected_if_alive(params, t, x, age) * self._probability_alive(
            params, x, t_x, age
        )

    def _unconditional_expected(self, params: FloatArray, t: FloatArray) -> FloatArray:
        """FHL 2005's E[X(t)]: the conditional expectation at x = t_x = T = 0.

        For MBG/NBD this includes the chance of dropping out at the first purchase, giving
        Batislam et al.'s b/(a-1)·[...].
        """
        zero = np.zeros_like(t)
        return self._conditional_expected(params, t, zero, zero, zero)

    def _expected_if_alive(
        self, params: FloatArray, t: FloatArray, x: FloatArray, age: FloatArray
    ) -> FloatArray:
        """E[purchases in (T, T+t] | active at T, x, T].

        Closed form: (a+b+x-1+δ)/(a-1) · [1 - (1-z)^(a-1) · 2F1(a-1, a+b-1+δ-r; a+b+x-1+δ; z)],
        z = t/(α+T+t), δ = 1 for MBG/NBD. This is eq. (10)'s numerator after Euler's
        transformation 2F1(A,B;C;z) = (1-z)^(C-A-B) 2F1(C-A,C-B;C;z), which removes the
        ((α+T)/(α+T+t))^(r+x) factor that underflows (and the 2F1 that overflows) for large x.
        Fallback where scipy's hyp2f1 fails (NaN/inf, seen for large x with z near 1), where the
        closed form is 0/0 (a ≈ 1) or loses digits (t ≪ α+T): the same expectation written as
        E_p[(1 - (1 + p·t/(α+T))^-(r+x)) / p] over the posterior p ~ Beta(a, b+x+δ), integrated
        by double-exponential quadrature (``_beta_expectation``).
        """
        r, alpha, a, b = params
        shift = 1.0 if self._drop_at_first_purchase else 0.0
        t, x, age = np.broadcast_arrays(t, x, age)
        out = np.zeros(t.shape, dtype=np.float64)
        # horizons so short that t/(α+T) underflows to 0 expect 0 purchases (it is ≤ (r+x)·t/(α+T))
        positive = t / (alpha + age) > 0
        if not positive.any():
            return out
        tt, xx, aa = t[positive], x[positive], age[positive]
        c = a + b + xx - 1.0 + shift
        log_one_minus_z = np.log(alpha + aa) - np.log(alpha + aa + tt)
        z = tt / (alpha + aa + tt)
        with np.errstate(all="ignore"):  # failures are detected just below and recomputed
            h = hyp2f1(a - 1.0, a + b - 1.0 + shift - r, c, z)
            closed = c / (a - 1.0) * -np.expm1(np.log(h) + (a - 1.0) * log_one_minus_z)
            closed = np.where(h > 0, closed, np.nan)
        kappa = tt / (alpha + aa)
        upper = (r + xx) * kappa  # E[(1-(1+pκ)^-(r+x))/p] ≤ (r+x)κ
        bad = ~np.isfinite(closed) | (closed < 0) | (closed > upper * (1 + 1e-9))
        bad |= (abs(a - 1.0) < 1e-7) | (kappa < 1e-6)
        if bad.any():
            closed[bad] = _beta_expectation(a, b + xx[bad] + shift, r + xx[bad], kappa[bad])
        out[positive] = closed
        return out


class ModifiedBetaGeoFitter(BetaGeoFitter):
    """MBG/NBD model (Batislam, Denizel & Filiztekin 2007). Parameters r, alpha, a, b.

    Likelihood: B(a, b+x+1)/B(a, b) Γ(r+x)α^r/Γ(r)/(α+T)^(r+x)
    + B(a+1, b+x)/B(a, b) Γ(r+x)α^r/Γ(r)/(α+t_x)^(r+x), for every x including 0.
    P(alive) = 1 / (1 + a/(b+x) · ((α+T)/(α+t_x))^(r+x)).
    """

    _drop_at_first_purchase: ClassVar[bool] = True


def _beta_expectation(
    a: float, b_post: FloatArray, shape: FloatArray, kappa: FloatArray
) -> FloatArray:
    """E[(1 - (1 + κp)^(-shape)) / p] for p ~ Beta(a, b_post), by quadrature in q = -log p.

    In q the Beta density is log-concave, exp(-a·q + (b_post-1)·log(1 - e^-q)) / B(a, b_post).
    The range is cut at the density's mode and where κp·shape = 1 (the integrand's bend), and
    each piece gets double-exponential nodes. Everything stays in logs; the integrand is bounded
    by shape·κ, so nothing overflows.
    """
    log_kappa = np.log(kappa)
    q_mode = np.where(b_post > 1.0, np.log1p(np.maximum(b_post - 1.0, 0.0) / a), 0.0)
    q_bend = np.maximum(log_kappa + np.log(shape), 0.0)
    edges = np.stack(
        [np.zeros_like(q_mode), np.minimum(q_mode, q_bend), np.maximum(q_mode, q_bend)], axis=1
    )
    finite_q, finite_log_w = finite_pieces(edges)
    n = kappa.size
    q = np.concatenate([finite_q, edges[:, -1:] + EXP_SINH_U[None, :]], axis=1)
    q = np.maximum(q, 1e-300)  # empty pieces sit at q = 0, where log(1 - e^-q) is -inf
    log_w = np.concatenate(
        [finite_log_w, np.broadcast_to(EXP_SINH_LOG_W, (n, EXP_SINH_U.size))], axis=1
    )
    log_density = (
        -a * q + (b_post - 1.0)[:, None] * np.log(-np.expm1(-q)) - betaln(a, b_post)[:, None]
    )
    # log g with g = (1 - (1 + y)^-shape)·e^q and y = κ e^-q; for y < 1e-13, g = shape·κ
    log_y = log_kappa[:, None] - q
    tiny = log_y < -30.0
    y = np.exp(np.maximum(log_y, -30.0))
    log_g = np.where(
        tiny,
        np.log(shape * kappa)[:, None],
        np.log(-np.expm1(-shape[:, None] * np.log1p(y))) + q,
    )
    return np.asarray(np.exp(logsumexp(log_w + log_density + log_g, axis=1)), dtype=np.float64)
