"""Double-exponential quadrature nodes shared by the CLV models' numerical fallbacks.

Tanh-sinh (finite pieces) and exp-sinh (half-lines) rules of Takahasi & Mori (1974): nodes cluster
double-exponentially at the ends of each piece, so endpoint singularities and sharp features
placed at piece boundaries are integrated to ~1e-11 relative with a fixed number of nodes. The
callers split their ranges at the features they know analytically (modes, bends, transitions).
Weights are returned as logarithms so integrands can stay in log space.
"""

from __future__ import annotations

import numpy as np

from .inputs import FloatArray

#: Step of the uniform grid in the transformed variable; 1/20 was the coarsest step that kept
#: the Pareto/NBD integrals within 1e-10 of mpmath on our test grid.
STEP = 1.0 / 20.0
# |t| ≤ 3.6 reaches 1e-40 from the ends of a piece (and e^±28 on half-lines)
_T = np.arange(-3.6, 3.6 + STEP / 2, STEP)
_V = 0.5 * np.pi * np.sinh(_T)

#: Tanh-sinh nodes on (0, 1), y = expit(2v), v = (π/2) sinh t, and log(dy/dt · h).
TANH_SINH_Y: FloatArray = np.exp(-np.logaddexp(0.0, -2.0 * _V))
TANH_SINH_LOG_W: FloatArray = (
    np.log(STEP)
    + np.log(np.pi * np.cosh(_T))
    - np.logaddexp(0.0, -2.0 * _V)
    - np.logaddexp(0.0, 2.0 * _V)
)
#: Exp-sinh nodes on (0, ∞), u = exp((π/2) sinh t), and log(du/dt · h).
EXP_SINH_U: FloatArray = np.exp(_V)
EXP_SINH_LOG_W: FloatArray = np.log(STEP) + np.log(0.5 * np.pi * np.cosh(_T)) + _V


def finite_pieces(edges: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Tanh-sinh nodes and log weights on consecutive pieces [e_0, e_1], …, one row per problem.

    ``edges`` has shape (n, k+1) and is non-decreasing along each row; empty pieces get
    (practically) zero weight. Returns arrays of shape (n, k · nodes).
    """
    starts = edges[:, :-1]
    lengths = np.maximum(edges[:, 1:] - starts, 1e-300)
    nodes = starts[:, :, None] + lengths[:, :, None] * TANH_SINH_Y[None, None, :]
    log_w = np.log(lengths)[:, :, None] + TANH_SINH_LOG_W[None, None, :]
    n = edges.shape[0]
    return nodes.reshape(n, -1), log_w.reshape(n, -1)
