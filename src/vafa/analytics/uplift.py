"""Uplift of a message against its control group, with confidence intervals.

Two outcomes per recipient are compared between the treated group (messaged) and the control
group (held out):

- **conversion**, a yes/no: the difference of two independent proportions, with Newcombe's
  hybrid score interval (Newcombe 1998, "Interval estimation for the difference between
  independent proportions", Statistics in Medicine 17:873–890, method 10), built from the Wilson
  score interval of each proportion (Wilson 1927). It stays inside [−1, 1], behaves at 0 and at
  small counts, where the normal (Wald) interval collapses to a point or overshoots.
- **revenue per recipient**, a mean of a skewed amount that is zero for most recipients: the
  difference of two means with Welch's unequal-variance t interval and the Welch–Satterthwaite
  degrees of freedom (Welch 1947). With many recipients it is the normal interval; it is only
  approximate for very skewed revenue in small groups, and says so by being wide.

Groups are given by sufficient statistics (counts, sum and sum of squares), so a database can
aggregate millions of recipients without handing every row to Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from vafa.analytics.errors import InputError

DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A point estimate with its two-sided confidence interval."""

    estimate: float
    low: float
    high: float
    confidence: float

    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly on one side of zero (a "significant" difference)."""
        return self.low > 0 or self.high < 0


@dataclass(frozen=True)
class GroupOutcome:
    """What one group (treated or control) did: recipients, how many converted, and the sum
    and sum of squares of revenue per recipient (zero for those who did not buy)."""

    recipients: int
    conversions: int
    revenue: float = 0.0
    revenue_squares: float = 0.0

    def __post_init__(self) -> None:
        if self.recipients < 0 or self.conversions < 0:
            raise InputError("counts cannot be negative")
        if self.conversions > self.recipients:
            raise InputError("more conversions than recipients")
        if self.revenue_squares < 0:
            raise InputError("a sum of squares cannot be negative")

    @property
    def conversion_rate(self) -> float | None:
        return self.conversions / self.recipients if self.recipients else None

    @property
    def revenue_per_recipient(self) -> float | None:
        return self.revenue / self.recipients if self.recipients else None

    @property
    def revenue_variance(self) -> float | None:
        """The sample variance (n − 1 denominator) of revenue per recipient."""
        n = self.recipients
        if n < 2:
            return None
        mean = self.revenue / n
        return max(0.0, (self.revenue_squares - n * mean * mean) / (n - 1))


@dataclass(frozen=True)
class Uplift:
    """Treated minus control: conversion rate and revenue per recipient, each with an interval
    (`None` when a group is too small for one)."""

    treated: GroupOutcome
    control: GroupOutcome
    conversion: Interval | None
    revenue: Interval | None
    method: str = ("conversion: Newcombe hybrid score interval (Wilson); "
                   "revenue per recipient: Welch t interval")


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise InputError("confidence must be between 0 and 1")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(successes: int, trials: int,
                    confidence: float = DEFAULT_CONFIDENCE) -> Interval:
    """Wilson's score interval for a proportion (Wilson 1927; Newcombe 1998 method 3 for a
    single proportion): the p whose score test at `confidence` does not reject."""
    if trials <= 0:
        raise InputError("a proportion needs at least one trial")
    if not 0 <= successes <= trials:
        raise InputError("successes must lie between 0 and the number of trials")
    z = _z(confidence)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    # At 0 or n successes the bound is exactly 0 or 1; clip rounding noise.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return Interval(p, low, high, confidence)


def newcombe_difference(successes_1: int, trials_1: int, successes_2: int, trials_2: int,
                        confidence: float = DEFAULT_CONFIDENCE) -> Interval:
    """Interval for p1 − p2 from two independent samples (Newcombe 1998, method 10):
    δ − √((p1 − l1)² + (u2 − p2)²) to δ + √((u1 − p1)² + (p2 − l2)²), with (l, u) the Wilson
    limits of each proportion."""
    first = wilson_interval(successes_1, trials_1, confidence)
    second = wilson_interval(successes_2, trials_2, confidence)
    p1, p2 = first.estimate, second.estimate
    delta = p1 - p2
    low = delta - math.sqrt((p1 - first.low) ** 2 + (second.high - p2) ** 2)
    high = delta + math.sqrt((first.high - p1) ** 2 + (p2 - second.low) ** 2)
    return Interval(delta, low, high, confidence)


def welch_difference(mean_1: float, variance_1: float, n_1: int,
                     mean_2: float, variance_2: float, n_2: int,
                     confidence: float = DEFAULT_CONFIDENCE) -> Interval | None:
    """Welch's interval for μ1 − μ2 with unequal variances: (x̄1 − x̄2) ± t·SE, with
    SE² = s1²/n1 + s2²/n2 and Welch–Satterthwaite degrees of freedom
    ν = SE⁴ / ((s1²/n1)²/(n1 − 1) + (s2²/n2)²/(n2 − 1)).

    `None` when either group has fewer than two members; when both variances are zero the
    interval is the point itself (no spread was observed)."""
    if n_1 < 2 or n_2 < 2:
        return None
    if variance_1 < 0 or variance_2 < 0:
        raise InputError("a variance cannot be negative")
    _z(confidence)  # validates confidence
    delta = mean_1 - mean_2
    a, b = variance_1 / n_1, variance_2 / n_2
    se_squared = a + b
    if se_squared == 0:
        return Interval(delta, delta, delta, confidence)
    dof = se_squared**2 / (a * a / (n_1 - 1) + b * b / (n_2 - 1))
    from scipy import stats  # imported when needed: scipy.stats is slow to import

    t = float(stats.t.ppf(0.5 + confidence / 2, dof))
    half = t * math.sqrt(se_squared)
    return Interval(delta, delta - half, delta + half, confidence)


def measure_uplift(treated: GroupOutcome, control: GroupOutcome,
                   confidence: float = DEFAULT_CONFIDENCE) -> Uplift:
    """Treated minus control on conversion rate and revenue per recipient. An interval is
    `None` when a group is empty (conversion) or has fewer than two recipients (revenue)."""
    conversion = None
    if treated.recipients and control.recipients:
        conversion = newcombe_difference(treated.conversions, treated.recipients,
                                         control.conversions, control.recipients, confidence)
    revenue = None
    treated_variance, control_variance = treated.revenue_variance, control.revenue_variance
    if treated_variance is not None and control_variance is not None:
        revenue = welch_difference(
            treated.revenue / treated.recipients, treated_variance, treated.recipients,
            control.revenue / control.recipients, control_variance, control.recipients,
            confidence)
    return Uplift(treated, control, conversion, revenue)
