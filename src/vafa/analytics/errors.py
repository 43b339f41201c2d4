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


class InputFieldError(InputError):
    """One value of the input cannot be used; says where it is and which field holds it.

    The message reads like a compiler's, e.g. ``orders.csv:7: placed_at: cannot parse '2024-13-01'``,
    and the parts are kept as attributes so an API or CLI can render them separately.
    """

    def __init__(self, source: str, location: str, field: str, reason: str) -> None:
        self.source = source
        self.location = location
        self.field = field
        self.reason = reason
        where = f"{source}:{location}" if source else location
        super().__init__(f"{where}: {field}: {reason}")
