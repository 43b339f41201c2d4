"""Exceptions and warnings raised by the analytics library."""


class AnalyticsError(Exception):
    """Base class of every error the analytics library raises on purpose."""

    code = "analytics_error"


class InputError(AnalyticsError, ValueError):
    """The transactions or summary table is unusable (missing column, bad value, empty)."""

    code = "invalid_input"


class NotFittedError(AnalyticsError, AttributeError):
    """A model was asked for predictions before `fit()`."""

    code = "not_fitted"


class ConvergenceError(AnalyticsError, RuntimeError):
    """The optimiser did not reach an optimum."""

    code = "convergence"


class IdentificationError(AnalyticsError, ValueError):
    """The data cannot identify the model (e.g. no repeat buyers for a repeat-purchase model)."""

    code = "not_identifiable"


class StatisticalWarning(UserWarning):
    """A fit or metric succeeded but its result deserves caution."""
