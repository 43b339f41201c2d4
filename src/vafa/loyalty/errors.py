"""The loyalty club's errors: each has a stable `code` the API renders and clients can rely on."""

from __future__ import annotations

from vafa.core.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)


class InsufficientPoints(ConflictError):
    """A redemption asked for more points than the member can spend now.

    Pending points (still inside the return window), expired points and points owed as debt are
    not spendable, so `available` can be lower than the balance the member remembers.
    """

    code = "insufficient_points"
    status = 409

    def __init__(self, *, requested: int, available: int) -> None:
        super().__init__(
            f"{requested} points requested but only {available} are available", field="points"
        )
        self.requested = requested
        self.available = available


class IdempotencyConflict(ConflictError):
    """An idempotency key was reused for a different request (other points or another action).

    A true replay returns the first result; a key reused with other arguments is a client bug
    that must not silently get the first answer.
    """

    code = "idempotency_conflict"
    status = 409


class InvalidPoints(ValidationError):
    """A point amount that is not a positive (or, for adjustments, non-zero) integer."""

    code = "invalid_points"


class ReasonRequired(ValidationError):
    """A manual adjustment without a reason or without an actor: both are kept for the audit."""

    code = "reason_required"


class SimulationUnsupported(ValidationError):
    """The rule's trigger (a review, a survey, a referral…) has no history to replay yet."""

    code = "simulation_unsupported"


class RewardUnavailable(ConflictError):
    """The reward is switched off or outside its dates."""

    code = "reward_unavailable"
    status = 409


class OutOfStock(ConflictError):
    """No more of this reward is left."""

    code = "out_of_stock"
    status = 409


class RedemptionLimitReached(ConflictError):
    """The member already redeemed this reward as often as a member may."""

    code = "redemption_limit_reached"
    status = 409


class TierRequired(PermissionDeniedError):
    """The reward is reserved for a higher tier (or for tiers with exclusive rewards)."""

    code = "tier_required"
    status = 403


class RedemptionNotCancellable(ConflictError):
    """The coupon was already used at the shop, so its points cannot come back."""

    code = "redemption_used"
    status = 409


class SpendCapReached(ConflictError):
    """The reward would push what the program spends on the member (rewards redeemed in the last
    12 months, at the point value) past their share of predicted CLV (A3)."""

    code = "spend_cap_reached"
    status = 409


class ReferralCodeUnknown(NotFoundError):
    """No member has this referral code."""

    code = "referral_code_unknown"


class SelfReferral(ValidationError):
    """The referee is the referrer (same customer, email or phone number)."""

    code = "self_referral"


class AlreadyReferred(ConflictError):
    """The referee already joined through another code."""

    code = "already_referred"
    status = 409


class NotANewCustomer(ConflictError):
    """The referee had already paid for an order: there is nobody new to reward."""

    code = "not_a_new_customer"
    status = 409
