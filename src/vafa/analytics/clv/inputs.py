"""Validation and compression of per-customer summaries (frequency, recency, T) for the CLV models.

Conventions (as in lifetimes and Fader & Hardie): ``frequency`` x is the number of *repeat*
purchases, ``recency`` t_x the customer's age at the last purchase and ``T`` the age at the end of
the observation period, all in one time unit (days or weeks). A customer without repeat purchases
has recency 0.

Fitting on millions of customers is fast because identical (x, t_x, T) rows are merged into one
row with a weight (the count): with daily data most customers share their row with others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

from vafa.analytics.errors import InputError

FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.int64]
#: What the public methods accept for a column: a pandas Series, a numpy array, a list or a scalar.
ArrayLike: TypeAlias = pd.Series | npt.ArrayLike | Sequence[float]

# recency may exceed T by this relative amount (rounding in exported summaries)
_RECENCY_SLACK = 1e-9


def as_float_array(values: Any, name: str) -> FloatArray:
    """Convert a column to a float64 array, refusing text, NaN and infinities with a named error."""
    if isinstance(values, pd.Series | pd.Index):
        values = values.to_numpy(dtype=np.float64, na_value=np.nan)
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise InputError(f"{name}: values must be numbers ({error})") from error
    if array.ndim > 1:
        raise InputError(f"{name}: expected a one-dimensional column, got shape {array.shape}")
    bad = ~np.isfinite(array)
    if bad.any():
        raise InputError(
            f"{name}: {int(bad.sum())} value(s) are NaN or infinite "
            f"(first at position {_first(bad)})"
        )
    return array


def _first(mask: npt.NDArray[np.bool_]) -> int:
    return int(np.flatnonzero(np.atleast_1d(mask))[0])


def require_non_negative(array: FloatArray, name: str) -> None:
    """Refuse negative values, naming the column and the first offending position."""
    negative = array < 0
    if negative.any():
        raise InputError(
            f"{name}: {int(negative.sum())} value(s) are negative "
            f"(first at position {_first(negative)}: {np.atleast_1d(array)[_first(negative)]})"
        )


def require_integer(array: FloatArray, name: str) -> None:
    """Refuse non-integer counts."""
    fractional = array != np.round(array)
    if fractional.any():
        raise InputError(
            f"{name}: counts must be whole numbers; {int(fractional.sum())} value(s) are not "
            f"(first at position {_first(fractional)}: {np.atleast_1d(array)[_first(fractional)]})"
        )


def broadcast_columns(columns: dict[str, FloatArray]) -> list[FloatArray]:
    """Broadcast columns to one shape, or say which lengths disagree."""
    try:
        return [np.asarray(a, dtype=np.float64) for a in np.broadcast_arrays(*columns.values())]
    except ValueError:
        lengths = ", ".join(f"{name}={np.shape(a)}" for name, a in columns.items())
        raise InputError(f"columns have different lengths: {lengths}") from None


@dataclass(frozen=True)
class Summary:
    """Validated per-customer summaries, possibly compressed to weighted unique rows."""

    frequency: FloatArray
    recency: FloatArray
    T: FloatArray
    weights: FloatArray

    @property
    def n_customers(self) -> float:
        return float(self.weights.sum())


def validate_summary(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    allow_broadcast: bool = False,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Check (frequency, recency, T) and return them as float arrays of one shape.

    Raises InputError naming the column for: NaN or infinite values, negative values,
    non-integer frequency, recency > T, recency ≠ 0 when frequency = 0, and length mismatch.
    Fitting requires equal lengths; predictions (``allow_broadcast``) also accept scalars.
    """
    x = as_float_array(frequency, "frequency")
    t_x = as_float_array(recency, "recency")
    age = as_float_array(T, "T")
    if allow_broadcast:
        x, t_x, age = broadcast_columns({"frequency": x, "recency": t_x, "T": age})
    else:
        x, t_x, age = np.atleast_1d(x), np.atleast_1d(t_x), np.atleast_1d(age)
        if not len(x) == len(t_x) == len(age):
            raise InputError(
                f"columns have different lengths: frequency={len(x)}, recency={len(t_x)}, "
                f"T={len(age)}"
            )
    for array, name in ((x, "frequency"), (t_x, "recency"), (age, "T")):
        require_non_negative(array, name)
    require_integer(x, "frequency")
    too_late = t_x > age * (1.0 + _RECENCY_SLACK) + _RECENCY_SLACK
    if too_late.any():
        i = _first(too_late)
        raise InputError(
            f"recency: {int(too_late.sum())} value(s) exceed T, the customer's age "
            f"(first at position {i}: recency={np.atleast_1d(t_x)[i]}, T={np.atleast_1d(age)[i]})"
        )
    t_x = np.minimum(t_x, age)
    orphan = (x == 0) & (t_x != 0)
    if orphan.any():
        raise InputError(
            f"recency: must be 0 for customers without repeat purchases (frequency 0); "
            f"{int(orphan.sum())} are not (first at position {_first(orphan)})"
        )
    return x, t_x, age


def require_repeat_after_first(x: FloatArray, t_x: FloatArray) -> None:
    """Refuse repeat purchases at recency 0 when fitting.

    Under the continuous-time models x > 0 purchases all at age 0 has probability zero, and one
    such row makes the likelihood unbounded (it grows without limit as α → 0). Such rows come
    from summaries that did not merge purchases made in the same period as the first one.
    """
    instant = (x > 0) & (t_x == 0)
    if instant.any():
        raise InputError(
            f"recency: customers with repeat purchases need recency > 0, but "
            f"{int(instant.sum())} have recency 0 (first at position {_first(instant)}); merge "
            "purchases made in the same period (day or week) as the first one when summarising"
        )


def validate_weights(weights: ArrayLike | None, n: int) -> FloatArray:
    """Weights default to 1; otherwise they must be finite, non-negative, one per row, sum > 0."""
    if weights is None:
        return np.ones(n, dtype=np.float64)
    w = np.atleast_1d(as_float_array(weights, "weights"))
    if len(w) != n:
        raise InputError(f"weights: expected {n} values (one per customer row), got {len(w)}")
    require_non_negative(w, "weights")
    if not w.sum() > 0:
        raise InputError("weights: all weights are zero")
    return w


def unique_rows(columns: Sequence[FloatArray]) -> tuple[list[FloatArray], IntArray]:
    """Unique rows of equally long columns, and for each input row the index of its unique row.

    Each column is factorised by hashing (``pandas.factorize``, linear time) and the codes are
    combined into one int64 key, which is far faster than sorting rows with ``np.unique(axis=0)``.
    The order of the unique rows is unspecified.
    """
    factorised = [pd.factorize(np.asarray(column)) for column in columns]
    sizes = [max(len(values), 1) for _, values in factorised]
    if float(np.prod(sizes, dtype=np.float64)) >= 2.0**62:
        # the combined key would overflow int64: fall back to the row-wise unique
        rows, row_inverse = np.unique(np.stack(columns, axis=1), axis=0, return_inverse=True)
        return [rows[:, j].copy() for j in range(rows.shape[1])], row_inverse.reshape(-1)
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for (codes, _), size in zip(factorised, sizes, strict=True):
        key = key * size + codes
    inverse, unique_keys = pd.factorize(key)
    out = []
    remainder = np.asarray(unique_keys, dtype=np.int64)
    for (_, values), size in zip(reversed(factorised), reversed(sizes), strict=True):
        out.append(np.asarray(values, dtype=np.float64)[remainder % size])
        remainder = remainder // size
    return list(reversed(out)), np.asarray(inverse, dtype=np.int64)


def compress_rows(
    columns: Sequence[FloatArray], weights: FloatArray
) -> tuple[list[FloatArray], FloatArray]:
    """Merge identical rows of ``columns``, summing their weights; drop zero-weight rows."""
    keep = weights > 0
    rows, inverse = unique_rows([c[keep] for c in columns])
    summed = np.bincount(inverse, weights=weights[keep], minlength=len(rows[0]))
    return rows, summed.astype(np.float64)


def compress_summary(
    x: FloatArray, t_x: FloatArray, age: FloatArray, weights: FloatArray
) -> Summary:
    """Group identical (frequency, recency, T) rows into weighted unique rows."""
    (cx, ct, cT), w = compress_rows([x, t_x, age], weights)
    return Summary(frequency=cx, recency=ct, T=cT, weights=w)
