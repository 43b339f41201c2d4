"""The Gauss hypergeometric function 2F1(1, b; c; z) in log space, with its partial derivatives.

Why not just ``scipy.special.hyp2f1``? The Pareto/NBD likelihood (Fader & Hardie 2005, "A Note on
Deriving the Pareto/NBD Model and Related Expressions") needs 2F1(r+s+x, s+1; r+s+x+1; z)
for customers with hundreds of purchases and for z close to 1. In that region scipy 1.17 returns NaN
(b ≳ 200, z ≳ 0.93) or silently loses accuracy (errors of 1% for integer c - a - b, z ≈ 0.998),
which we measured against mpmath. Euler's transformation

    2F1(m, s+1; m+1; z) = (1 - z)^(-s) · 2F1(1, r+x; m+1; z),       m = r + s + x,

turns every value the Pareto/NBD model needs into G(b, c, z) = 2F1(1, b; c; z) with c > b > 0,
a function that is bounded, 1 ≤ G ≤ 1/(1 - z), so log G never overflows. We evaluate it

* by its power series Σ (b)_n/(c)_n z^n when z ≤ ``SERIES_LIMIT`` = 0.9 (term ratio < z, so at
  most ~400 terms, usually far fewer; all terms positive), accumulating d/db, d/dc and d/dz alongside the value; and
* otherwise by double-exponential quadrature of Euler's integral, written with t = 1 - e^(-u):
  G = (c-1) ∫_0^∞ exp(-(c-1)·u) · ((1-z) + z·e^(-u))^(-b) du.
  The log of the integrand is concave; it bends sharply (for large b) where z·e^(-u) = 1 - z,
  so the range is split there and each piece gets tanh-sinh (finite) or exp-sinh (infinite)
  nodes, which cluster at the ends where the mass and the bend are. The same nodes give the
  derivatives as weighted means, so nothing cancels.

The caller passes 1 - z separately because it is usually known exactly as a ratio
((β + τ)/(α + τ)); computing it as 1 - z would lose all digits when z ≈ 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .quadrature import EXP_SINH_LOG_W, EXP_SINH_U, finite_pieces

FloatArray = npt.NDArray[np.float64]

#: Above this z the power series is slow; the quadrature takes over.
SERIES_LIMIT = 0.9
_SERIES_MAX_TERMS = 450  # 0.9**450 ≈ 3e-21: ample for float64 at z ≤ 0.9


@dataclass(frozen=True)
class LogHyp2f1:
    """log 2F1(1, b; c; z) and its partial derivatives with respect to b, c and z."""

    value: FloatArray
    d_b: FloatArray
    d_c: FloatArray
    d_z: FloatArray


def log_hyp2f1_one(
    b: FloatArray, c: FloatArray, z: FloatArray, one_minus_z: FloatArray
) -> LogHyp2f1:
    """Return log 2F1(1, b; c; z) and its gradient, for c > b > 0 and 0 ≤ z < 1 (broadcast).

    ``one_minus_z`` must equal 1 - z, computed by the caller without cancellation.
    """
    b, c, z, one_minus_z = (
        np.array(v, dtype=np.float64) for v in np.broadcast_arrays(b, c, z, one_minus_z)
    )
    value = np.empty_like(z)
    d_b = np.empty_like(z)
    d_c = np.empty_like(z)
    d_z = np.empty_like(z)
    series = z <= SERIES_LIMIT
    if series.any():
        v, db, dc, dz = _series(b[series], c[series], z[series])
        value[series], d_b[series], d_c[series], d_z[series] = v, db, dc, dz
    quad = ~series
    if quad.any():
        v, db, dc, dz = _quadrature(b[quad], c[quad], z[quad], one_minus_z[quad])
        value[quad], d_b[quad], d_c[quad], d_z[quad] = v, db, dc, dz
    return LogHyp2f1(value, d_b, d_c, d_z)


def _series(
    b: FloatArray, c: FloatArray, z: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Power series of G and of its derivatives, all terms positive (no cancellation)."""
    total = np.ones_like(z)
    s_b = np.zeros_like(z)  # Σ t_n · Σ_{j<n} 1/(b+j)
    s_c = np.zeros_like(z)  # Σ t_n · Σ_{j<n} 1/(c+j)
    s_z = np.zeros_like(z)  # Σ n · t_n / z, kept without dividing by z
    term = np.ones_like(z)
    harmonic_b = np.zeros_like(z)
    harmonic_c = np.zeros_like(z)
    active = np.arange(z.size)
    bb, cc, zz = b, c, z
    for n in range(_SERIES_MAX_TERMS):
        # t_{n+1} = t_n (b+n)/(c+n) z;  d t_{n+1}/dz = (n+1) t_n (b+n)/(c+n)
        ratio = (bb + n) / (cc + n)
        s_z[active] += (n + 1) * term * ratio
        harmonic_b = harmonic_b + 1.0 / (bb + n)
        harmonic_c = harmonic_c + 1.0 / (cc + n)
        term = term * ratio * zz
        total[active] += term
        s_b[active] += term * harmonic_b
        s_c[active] += term * harmonic_c
        # the tail after this term is below term·z/(1-z) ≤ 9·term (z ≤ 0.9); harmonic sums grow
        # only logarithmically, so 1e-18 relative leaves the derivatives accurate as well
        keep = term * (1.0 + harmonic_b + harmonic_c) > 1e-18 * total[active]
        if n % 4 == 3 and not keep.all():
            active, bb, cc, zz = active[keep], bb[keep], cc[keep], zz[keep]
            term, harmonic_b, harmonic_c = term[keep], harmonic_b[keep], harmonic_c[keep]
            if active.size == 0:
                break
    return np.log(total), s_b / total, -s_c / total, s_z / total


def _quadrature(
    b: FloatArray, c: FloatArray, z: FloatArray, one_minus_z: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Double-exponential quadrature of the integral in the module docstring (z > 0.9).

    log f(u) = -(c-1)·u - b·log((1-z) + z·e^(-u)) is concave. Its features are put at the ends
    of pieces, where the double-exponential nodes cluster: the bend at u* = log(z/(1-z)), the
    mode when it is interior (only if k = c - b < 1), and, when f falls fast from u = 0, the
    point where it has fallen by e^-40 (beyond which the rest of [0, u*] is negligible), and the
    point u* - log b where the bend starts to steepen the slope.
    """
    log_eps = np.log(one_minus_z)
    log_z = np.log(z)
    bend = log_z - log_eps  # > 0 because z > 1/2
    k = c - b
    slope0 = b * z - (c - 1.0)  # d log f / du at u = 0
    # interior mode: b z e^-u / ((1-z) + z e^-u) = c - 1  <=>  u = bend + log((1-k)/(c-1))
    with np.errstate(invalid="ignore", divide="ignore"):  # k ≥ 1 gives log(≤0): masked below
        mode = np.where(k < 1.0, bend + np.log(np.maximum(1.0 - k, 1e-300)) - np.log(c - 1.0), 0.0)
    mode = np.clip(mode, 0.0, bend)
    fall = np.where(slope0 < 0.0, 40.0 / np.maximum(-slope0, 1e-300), bend)
    # before the bend the slope is -(k-1) - b·(1-z)e^u/z...: it leaves -(k-1) at about bend - log b
    cliff = bend - np.log(np.maximum(b, 1.0))
    inner = np.sort(np.clip(np.stack([mode, fall, cliff], axis=1), 0.0, bend[:, None]), axis=1)
    edges = np.concatenate([np.zeros_like(bend)[:, None], inner, bend[:, None]], axis=1)
    finite_u, finite_log_w = finite_pieces(edges)
    n = z.size
    u = np.concatenate([finite_u, bend[:, None] + EXP_SINH_U[None, :]], axis=1)
    log_w = np.concatenate(
        [finite_log_w, np.broadcast_to(EXP_SINH_LOG_W, (n, EXP_SINH_U.size))], axis=1
    )
    decay = np.exp(-u)
    q = one_minus_z[:, None] + z[:, None] * decay  # (1-z) + z·e^(-u), between 1-z and 1
    log_q = np.log(q)
    log_f = log_w - (c - 1.0)[:, None] * u - b[:, None] * log_q
    peak = np.max(log_f, axis=1, keepdims=True)
    weight = np.exp(log_f - peak)
    mass = np.sum(weight, axis=1)
    weight /= mass[:, None]  # normalised: a distribution over the nodes
    value = np.log(c - 1.0) + peak[:, 0] + np.log(mass)
    d_b = -np.sum(weight * log_q, axis=1)
    d_c = 1.0 / (c - 1.0) - np.sum(weight * u, axis=1)
    # d/dz log((1-z) + z e^(-u)) = -(1 - e^(-u)) / ((1-z) + z e^(-u)); the quotient is ≤ 1/(1-z)
    d_z = b * np.sum(weight * (-np.expm1(-u)) / q, axis=1)
    return value, d_b, d_c, d_z
