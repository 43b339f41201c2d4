"""Holdout comparison of fitted purchase models, as in Fader, Hardie & Lee (2005), Figure 4.

Customers are grouped by their number of repeat purchases in the calibration period (0, 1, …,
``max_bucket``+), and for each group the mean number of purchases predicted for the holdout period
(conditional expectation) is set beside the mean actually observed. Two numbers summarise the fit:

* ``mean_absolute_error``: Σ_k n_k · |predicted_k - actual_k| / Σ_k n_k, the bucket errors
  weighted by the number of customers in each bucket (a bucket of 10 customers should not count
  as much as one of 1,000);
* ``total_predicted`` against ``total_actual``: holdout purchases summed over all customers.

``select_best_model`` picks the model with the smallest weighted mean absolute error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vafa.analytics.errors import InputError

from .base import TransactionFitter
from .inputs import ArrayLike, as_float_array, require_non_negative, validate_summary


@dataclass(frozen=True)
class HoldoutComparison:
    """Predicted against actual holdout purchases, by calibration frequency bucket."""

    #: index: bucket label ("0", "1", …, "7+"); columns: customers, actual_mean, predicted_mean
    table: pd.DataFrame
    mean_absolute_error: float
    total_actual: float
    total_predicted: float

    @property
    def total_relative_error(self) -> float:
        """(total predicted - total actual) / total actual; NaN when nothing was bought."""
        if self.total_actual == 0:
            return float("nan")
        return (self.total_predicted - self.total_actual) / self.total_actual


def holdout_comparison(
    model: TransactionFitter,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    holdout_frequency: ArrayLike,
    holdout_duration: ArrayLike,
    max_bucket: int = 7,
) -> HoldoutComparison:
    """Compare ``model``'s holdout predictions with what customers actually did.

    frequency, recency, T: calibration-period summaries (as given to ``fit``);
    holdout_frequency: purchases each customer made in the holdout period;
    holdout_duration: length of the holdout period (one number, or one per customer), in the
    model's time unit; max_bucket: calibration frequencies ≥ this share the last bucket.
    """
    if not (isinstance(max_bucket, int) and max_bucket >= 0):
        raise InputError(f"max_bucket: must be a whole number ≥ 0, got {max_bucket!r}")
    x, t_x, age = validate_summary(frequency, recency, T)
    actual = np.atleast_1d(as_float_array(holdout_frequency, "holdout_frequency"))
    require_non_negative(actual, "holdout_frequency")
    if len(actual) != len(x):
        raise InputError(
            f"holdout_frequency: expected {len(x)} values (one per customer), got {len(actual)}"
        )
    predicted = model.conditional_expected_number_of_purchases_up_to_time(
        holdout_duration, x, t_x, age
    )
    bucket = np.minimum(x, max_bucket).astype(np.int64)
    labels = [str(k) for k in range(max_bucket)] + [f"{max_bucket}+"]
    counts = np.bincount(bucket, minlength=max_bucket + 1).astype(np.float64)
    actual_sum = np.bincount(bucket, weights=actual, minlength=max_bucket + 1)
    predicted_sum = np.bincount(bucket, weights=predicted, minlength=max_bucket + 1)
    with np.errstate(invalid="ignore"):  # empty buckets: mean is NaN by design
        table = pd.DataFrame(
            {
                "customers": counts.astype(np.int64),
                "actual_mean": actual_sum / counts,
                "predicted_mean": predicted_sum / counts,
            },
            index=pd.Index(labels, name="calibration_frequency"),
        )
    filled = counts > 0
    error = float(
        np.sum(np.abs(predicted_sum[filled] - actual_sum[filled])) / np.sum(counts[filled])
    )
    return HoldoutComparison(
        table=table,
        mean_absolute_error=error,
        total_actual=float(actual.sum()),
        total_predicted=float(predicted.sum()),
    )


def compare_models(
    models: Mapping[str, TransactionFitter],
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    holdout_frequency: ArrayLike,
    holdout_duration: ArrayLike,
    max_bucket: int = 7,
) -> pd.DataFrame:
    """One row per model: log-likelihood, weighted MAE over buckets, totals; best first."""
    if not models:
        raise InputError("models: give at least one fitted model")
    rows = []
    for name, model in models.items():
        result = holdout_comparison(
            model, frequency, recency, T, holdout_frequency, holdout_duration, max_bucket
        )
        rows.append(
            {
                "model": name,
                "log_likelihood": getattr(model, "log_likelihood_", float("nan")),
                "mean_absolute_error": result.mean_absolute_error,
                "total_predicted": result.total_predicted,
                "total_actual": result.total_actual,
                "total_relative_error": result.total_relative_error,
            }
        )
    return pd.DataFrame(rows).sort_values("mean_absolute_error", kind="stable").set_index("model")


def select_best_model(
    models: Mapping[str, TransactionFitter],
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    holdout_frequency: ArrayLike,
    holdout_duration: ArrayLike,
    max_bucket: int = 7,
) -> tuple[str, TransactionFitter]:
    """The (name, model) with the smallest weighted mean absolute holdout error."""
    table = compare_models(
        models, frequency, recency, T, holdout_frequency, holdout_duration, max_bucket
    )
    name = str(table.index[0])
    return name, models[name]
