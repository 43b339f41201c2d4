"""REST endpoints of the loyalty club (thin: parse, authorise, call one service, render).

Members are addressed by the shop's own customer id (`Customer.external_id`), like the customers
endpoints. Every write needs an `Idempotency-Key` header (`vafa.core.idempotency`): a replay gets
the first response and writes nothing. The same key is also handed to the ledger service, scoped
to the API key (`api:<key id>:<Idempotency-Key>`), so the ledger's own unique (member, key)
constraint guards the write a second time. The actor of a write is the API key
(`api_key:<prefix>`). Points are integers; money is a decimal string; times are ISO 8601 UTC.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Field, Query, Router, Schema
from pydantic import ConfigDict

from vafa.core.auth import ApiKeyAuth, request_api_key
from vafa.core.errors import NotFoundError, ValidationError
from vafa.core.idempotency import HEADER, idempotent_response
from vafa.core.models import ApiKey
from vafa.customers.selectors import MAX_PAGE, customer_get
from vafa.loyalty import selectors, services
from vafa.loyalty.models import EntryKind, LedgerEntry, Redemption, Reward, Tier

router = Router(auth=ApiKeyAuth(), tags=["loyalty"])


class _In(Schema):
    model_config = ConfigDict(extra="forbid")


class AdjustmentIn(_In):
    points: int = Field(..., description="Points to add (positive) or remove (negative).")
    reason: str = Field(..., min_length=1, max_length=500, description="Kept for the audit.")


class RedemptionIn(_In):
    points: int | None = Field(None, description="Spend this many points (no reward).")
    reward_id: int | None = Field(None, description="Buy this reward; a coupon code is issued.")


class CancelIn(_In):
    reason: str = Field("cancelled through the API", max_length=500)


class ExpiringOut(Schema):
    expires_at: datetime
    points: int


class BalanceOut(Schema):
    available: int
    pending: int
    debt: int
    balance: int
    next_available_at: datetime | None
    expiring_30: int
    expiring_60: int
    expiring_90: int
    expiring_soon: list[ExpiringOut] = Field(description="Within 90 days, by date.")


class TierOut(Schema):
    id: int
    name: str
    rank: int
    min_points: int
    min_spend: str
    earn_multiplier: str
    free_shipping: bool
    early_access: bool
    exclusive_rewards: bool


class TierStandingOut(Schema):
    metric: str = Field(description="points or spend")
    current: TierOut | None
    below: TierOut | None
    above: TierOut | None
    value: str = Field(description="x of `progress`, over the rolling window.")
    target: str | None = Field(description="y: the threshold of the tier above.")
    remaining: str | None
    grace_until: datetime | None


class RewardProgressOut(Schema):
    current: int
    goal: int
    head_start: int = Field(description="Endowed progress: shown, never credited.")
    ready: bool


class VipPerksOut(Schema):
    earn_multiplier: str = Field(description="Points on orders (Vafa books it), or the tier's.")
    free_shipping: bool = Field(description="For the shop to give at checkout.")
    early_access: bool = Field(description="For the shop to give (sales, new products).")


class VipOut(Schema):
    vip: bool = Field(description="Flagged by the latest analysis run (top by predicted CLV).")
    predicted_clv: str | None
    spend_cap: str | None = Field(description="What rewards may cost in 12 months; null: no cap.")
    spent: str
    currency: str
    perks: VipPerksOut | None = Field(description="The program's VIP perks; null: not a VIP.")


class BadgeOut(Schema):
    slug: str
    name: str
    awarded_at: datetime


class ChallengeOut(Schema):
    id: int
    name: str
    description: str
    metric: str = Field(description="orders or points_earned, counted between the dates.")
    progress: int = Field(description="x of `target` (capped at the target).")
    target: int
    reward_points: int
    starts_at: datetime
    ends_at: datetime
    completed: bool
    completed_at: datetime | None


class MemberOut(Schema):
    customer_id: str
    joined_at: datetime | None
    balance: BalanceOut
    tier: TierStandingOut
    reward_progress: RewardProgressOut
    vip: VipOut
    badges: list[BadgeOut]
    challenges: list[ChallengeOut] = Field(description="Running challenges, soonest-ending first.")
    leaderboard_pseudonym: str | None = Field(description="Set while the member is opted in.")


class LeaderboardIn(_In):
    opt_in: bool


class LeaderboardOptOut(Schema):
    pseudonym: str | None


class LeaderboardRowOut(Schema):
    rank: int
    pseudonym: str
    points: int


class ReferralCodeOut(Schema):
    code: str
    link: str


class ReferralIn(_In):
    code: str = Field(..., min_length=1, max_length=20, description="The referrer's code.")


class ReferralOut(Schema):
    referrer_id: str
    referee_id: str
    code: str
    status: str
    created_at: datetime


class ReferralRateOut(Schema):
    start: datetime
    end: datetime
    new_customers: int
    referred: int
    rate: str | None


class EntryOut(Schema):
    id: int
    kind: str
    points: int
    balance_after: int
    occurred_at: datetime
    created_at: datetime
    order_id: str | None
    reason: str
    actor: str


class HistoryPage(Schema):
    items: list[EntryOut]
    next_cursor: str | None


class RedemptionOut(Schema):
    id: int = Field(description="The redeem entry's id: cancel with POST /redemptions/{id}/cancel.")
    entry: EntryOut
    reward_id: int | None
    code: str | None = Field(description="The unique coupon code when a reward was bought.")
    status: str
    code_expires_at: datetime | None
    cancel_entry: EntryOut | None


class RewardOut(Schema):
    id: int
    name: str
    description: str
    kind: str
    points_cost: int
    discount_amount: str | None
    discount_percent: str | None
    currency: str
    stock: int | None
    per_member_limit: int | None
    min_tier_id: int | None
    exclusive: bool
    ends_at: datetime | None


class LiabilityMonthOut(Schema):
    month: str
    earned: int
    redeemed: int
    returned: int
    expired: int
    reversed: int
    adjusted: int


class LiabilityOut(Schema):
    as_of: datetime
    currency: str
    point_value: str
    outstanding_points: int
    available_points: int
    pending_points: int
    outstanding_cost: str
    debt_points: int
    expiring_30: int
    expiring_60: int
    expiring_90: int
    breakage_rate: str | None
    months: list[LiabilityMonthOut]


# ---------------------------------------------------------------------------------------------
# Rendering: plain JSON values, so a write's body can be stored for replay as it was sent.


def _plain(body: Any) -> Any:
    """Decimals as strings, datetimes as ISO 8601: what the idempotency store can keep."""
    return json.loads(json.dumps(body, cls=DjangoJSONEncoder))


def _tier_out(tier: Tier | None) -> dict[str, Any] | None:
    if tier is None:
        return None
    return {
        "id": tier.pk, "name": tier.name, "rank": tier.rank, "min_points": tier.min_points,
        "min_spend": str(tier.min_spend), "earn_multiplier": str(tier.earn_multiplier),
        "free_shipping": tier.free_shipping, "early_access": tier.early_access,
        "exclusive_rewards": tier.exclusive_rewards,
    }


def _entry_out(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "id": entry.pk, "kind": entry.kind, "points": entry.points,
        "balance_after": entry.balance_after, "occurred_at": entry.occurred_at,
        "created_at": entry.created_at,
        "order_id": entry.order.external_id if entry.order is not None else None,
        "reason": entry.reason, "actor": entry.actor,
    }


def _redemption_out(
    entry: LedgerEntry, redemption: Redemption | None, *, fresh: bool = False
) -> dict[str, Any]:
    """A redemption as the API shows it; `fresh` when `entry` was booked by this very request
    (then nothing can have cancelled it yet, and the lookup of a return entry is skipped)."""
    if redemption is not None:
        restore = redemption.cancel_entry
    elif fresh:
        restore = None
    else:
        restore = LedgerEntry.objects.filter(related_entry=entry, kind=EntryKind.RESTORE).first()
    if redemption is not None:
        status = redemption.status
    else:
        status = "cancelled" if restore is not None else "issued"
    return {
        "id": entry.pk, "entry": _entry_out(entry),
        "reward_id": redemption.reward_id if redemption else None,
        "code": redemption.code if redemption else None,
        "status": status,
        "code_expires_at": redemption.expires_at if redemption else None,
        "cancel_entry": _entry_out(restore) if restore is not None else None,
    }


def _reward_out(reward: Reward) -> dict[str, Any]:
    return {
        "id": reward.pk, "name": reward.name, "description": reward.description,
        "kind": reward.kind, "points_cost": reward.points_cost,
        "discount_amount": None if reward.discount_amount is None else str(reward.discount_amount),
        "discount_percent": None if reward.discount_percent is None
        else str(reward.discount_percent),
        "currency": reward.currency, "stock": reward.stock,
        "per_member_limit": reward.per_member_limit, "min_tier_id": reward.min_tier_id,
        "exclusive": reward.exclusive, "ends_at": reward.ends_at,
    }


def _ledger_key(request: HttpRequest, api_key: ApiKey) -> str:
    """The ledger's idempotency key for this API write, scoped to the API key."""
    raw = request.headers.get(HEADER, "").strip()
    key = f"api:{api_key.pk}:{raw}"
    if len(key) > services.MAX_KEY_LENGTH:
        key = f"api:{api_key.pk}:sha256:{hashlib.sha256(raw.encode()).hexdigest()}"
    return key


def _redeem_entry(entry_id: int) -> LedgerEntry:
    entry = (
        LedgerEntry.objects.select_related("order", "member__customer")
        .filter(pk=entry_id, kind=EntryKind.REDEEM)
        .first()
    )
    if entry is None:
        raise NotFoundError(f"no redemption {entry_id}")
    return entry


# ---------------------------------------------------------------------------------------------
# Reads.


@router.get("/members/{customer_id}", response=MemberOut, summary="A member's standing")
def member_detail(request: HttpRequest, customer_id: str) -> dict[str, Any]:
    """Balance (available, pending, owed, expiring soon with dates), tier with the tiers below
    and above and the progress "value of target", and endowed progress toward the next reward.
    A customer who never earned anything is a member with zero points."""
    customer = customer_get(external_id=customer_id)
    now = timezone.now()
    balance = selectors.member_balance(customer=customer, now=now)
    standing = selectors.member_tier_progress(customer=customer, now=now)
    progress = selectors.member_reward_progress(customer=customer, now=now)
    member = getattr(customer, "loyalty", None)
    vip = selectors.member_vip(customer=customer, now=now)
    badges = member.badges.select_related("badge").order_by("awarded_at") if member else []
    board = getattr(member, "leaderboard", None) if member is not None else None
    challenges = selectors.member_challenges(customer=customer, now=now)
    return {
        "customer_id": customer.external_id,
        "joined_at": member.joined_at if member is not None else None,
        "balance": {
            "available": balance.available, "pending": balance.pending, "debt": balance.debt,
            "balance": balance.balance, "next_available_at": balance.next_available_at,
            "expiring_30": balance.expiring_30, "expiring_60": balance.expiring_60,
            "expiring_90": balance.expiring_90,
            "expiring_soon": [
                {"expires_at": e.expires_at, "points": e.points} for e in balance.expiring
            ],
        },
        "tier": {
            "metric": standing.metric, "current": _tier_out(standing.current),
            "below": _tier_out(standing.below), "above": _tier_out(standing.above),
            "value": str(standing.value),
            "target": None if standing.target is None else str(standing.target),
            "remaining": None if standing.remaining is None else str(standing.remaining),
            "grace_until": standing.grace_until,
        },
        "reward_progress": {
            "current": progress.current, "goal": progress.goal,
            "head_start": progress.head_start, "ready": progress.ready,
        },
        "vip": {
            "vip": vip.vip, "predicted_clv": _text(vip.predicted_clv),
            "spend_cap": _text(vip.spend_cap), "spent": str(vip.spent), "currency": vip.currency,
            "perks": None if vip.perks is None else {
                "earn_multiplier": str(vip.perks.earn_multiplier),
                "free_shipping": vip.perks.free_shipping,
                "early_access": vip.perks.early_access,
            },
        },
        "badges": [
            {"slug": b.badge.slug, "name": b.badge.name, "awarded_at": b.awarded_at}
            for b in badges
        ],
        "challenges": [
            {
                "id": c.challenge.pk, "name": c.challenge.name,
                "description": c.challenge.description, "metric": c.challenge.metric,
                "progress": c.progress, "target": c.challenge.target,
                "reward_points": c.challenge.reward_points, "starts_at": c.challenge.starts_at,
                "ends_at": c.challenge.ends_at, "completed": c.completed,
                "completed_at": c.completed_at,
            }
            for c in challenges
        ],
        "leaderboard_pseudonym": board.pseudonym if board is not None else None,
    }


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class PageQuery(Schema):
    cursor: str | None = None
    limit: int = Field(50, ge=1, le=MAX_PAGE)


@router.get("/members/{customer_id}/history", response=HistoryPage, summary="A member's ledger")
def member_history(
    request: HttpRequest, customer_id: str, query: Query[PageQuery]
) -> dict[str, Any]:
    """Ledger entries newest first; pass `next_cursor` back as `cursor` for the next page."""
    customer = customer_get(external_id=customer_id)
    rows, next_cursor = selectors.member_history_page(
        customer=customer, cursor=query.cursor, limit=query.limit
    )
    return {"items": [_entry_out(e) for e in rows], "next_cursor": next_cursor}


class CatalogueQuery(Schema):
    customer_id: str | None = Field(None, description="Only what this member's tier may redeem.")


@router.get("/rewards", response=list[RewardOut], summary="The rewards catalogue")
def rewards_list(request: HttpRequest, query: Query[CatalogueQuery]) -> list[dict[str, Any]]:
    """Rewards in force and in stock, cheapest first."""
    customer = customer_get(external_id=query.customer_id) if query.customer_id else None
    rewards = selectors.rewards_catalogue(now=timezone.now(), customer=customer)
    return [_reward_out(r) for r in rewards]


class LiabilityQuery(Schema):
    months: int = Field(12, ge=1, le=120)


@router.get("/loyalty/liability", response=LiabilityOut, summary="The program's liability")
def liability(request: HttpRequest, query: Query[LiabilityQuery]) -> dict[str, Any]:
    """Outstanding points and their cost, points expiring in 30/60/90 days, breakage, and the
    points earned and redeemed per month."""
    report = selectors.liability_report(now=timezone.now(), months=query.months)
    return {
        "as_of": report.as_of, "currency": report.currency,
        "point_value": str(report.point_value),
        "outstanding_points": report.outstanding_points,
        "available_points": report.available_points, "pending_points": report.pending_points,
        "outstanding_cost": str(report.outstanding_cost), "debt_points": report.debt_points,
        "expiring_30": report.expiring_30, "expiring_60": report.expiring_60,
        "expiring_90": report.expiring_90,
        "breakage_rate": None if report.breakage_rate is None else str(report.breakage_rate),
        "months": [
            {"month": f.month.isoformat(), "earned": f.earned, "redeemed": f.redeemed,
             "returned": f.returned, "expired": f.expired, "reversed": f.reversed,
             "adjusted": f.adjusted}
            for f in report.months
        ],
    }


# ---------------------------------------------------------------------------------------------
# Writes.


@router.post(
    "/members/{customer_id}/adjustments", response={201: EntryOut}, summary="Adjust points"
)
def member_adjust(request: HttpRequest, customer_id: str, payload: AdjustmentIn) -> HttpResponse:
    """Add or remove points by hand, with a reason; the API key is recorded as who did it.
    Removing more than the member has leaves a debt that later earnings pay first."""
    api_key = request_api_key(request)
    # Looked up by the ledger's member-lock statement (an unknown customer is a 404 from there).
    customer = services.ShopCustomer(customer_id)

    def perform() -> tuple[int, Any]:
        entry = services.points_adjust(
            customer=customer, points=payload.points, reason=payload.reason,
            actor=services.actor_api_key(api_key), idempotency_key=_ledger_key(request, api_key),
        )
        return 201, _plain(_entry_out(entry))

    return idempotent_response(request, api_key=api_key, perform=perform, optimistic=True)


@router.post(
    "/members/{customer_id}/redemptions", response={201: RedemptionOut}, summary="Redeem points"
)
def member_redeem(request: HttpRequest, customer_id: str, payload: RedemptionIn) -> HttpResponse:
    """Spend `points`, or buy the reward `reward_id` (its coupon code is in the answer). 409
    `insufficient_points` when fewer points are available (pending and owed ones do not count);
    409 `spend_cap_reached` when the reward would push what the program spends on the member
    past their share of predicted CLV."""
    api_key = request_api_key(request)
    if (payload.points is None) == (payload.reward_id is None):
        raise ValidationError("send either points or reward_id", field="points")
    reward, customer = None, None
    if payload.reward_id is not None:
        customer = selectors.customer_for_write(external_id=customer_id)
        reward = Reward.objects.filter(pk=payload.reward_id).first()
        if reward is None:
            raise NotFoundError(f"no reward {payload.reward_id}", field="reward_id")

    def perform() -> tuple[int, Any]:
        actor, key = services.actor_api_key(api_key), _ledger_key(request, api_key)
        if reward is not None and customer is not None:
            redemption = services.reward_redeem(
                customer=customer, reward=reward, idempotency_key=key, actor=actor
            )
            entry = LedgerEntry.objects.select_related("order").get(pk=redemption.entry_id)
            return 201, _plain(_redemption_out(entry, redemption))
        now = timezone.now()
        entry = services.points_redeem(
            # Looked up by the ledger's member-lock statement (unknown: a 404 from there).
            customer=services.ShopCustomer(customer_id), points=payload.points or 0,
            idempotency_key=key, actor=actor, now=now,
        )
        # An entry booked at `now` is this request's own; an older one is a ledger replay.
        return 201, _plain(_redemption_out(entry, None, fresh=entry.created_at == now))

    # Points (not a reward, whose stock and coupon need the locked path) try the optimistic one.
    return idempotent_response(
        request, api_key=api_key, perform=perform, optimistic=reward is None
    )


@router.post("/redemptions/{entry_id}/cancel", response={200: RedemptionOut},
             summary="Cancel a redemption")
def redemption_cancel(request: HttpRequest, entry_id: int, payload: CancelIn) -> HttpResponse:
    """Give a redemption's points back (with their original expiry) and, for a reward, its
    stock. A coupon the shop already used cannot be cancelled (409 `redemption_used`)."""
    api_key = request_api_key(request)
    entry = _redeem_entry(entry_id)

    def perform() -> tuple[int, Any]:
        actor = services.actor_api_key(api_key)
        redemption = Redemption.objects.filter(entry=entry).first()
        if redemption is not None:
            redemption = services.redemption_cancel(
                redemption=redemption, reason=payload.reason, actor=actor
            )
        else:
            services.points_redeem_cancel(
                customer=entry.member.customer_id, idempotency_key=entry.idempotency_key,
                reason=payload.reason, actor=actor,
            )
        return 200, _plain(_redemption_out(entry, redemption))

    return idempotent_response(request, api_key=api_key, perform=perform)


@router.post("/coupons/{code}/use", response={200: RedemptionOut}, summary="Mark a coupon used")
def coupon_use(request: HttpRequest, code: str) -> HttpResponse:
    """The shop accepted this coupon code at checkout; from now on it cannot be cancelled."""
    api_key = request_api_key(request)

    def perform() -> tuple[int, Any]:
        redemption = services.redemption_use(code=code)
        entry = LedgerEntry.objects.select_related("order").get(pk=redemption.entry_id)
        return 200, _plain(_redemption_out(entry, redemption))

    return idempotent_response(request, api_key=api_key, perform=perform)


@router.post(
    "/members/{customer_id}/referral-code", response={200: ReferralCodeOut},
    summary="The member's referral code and link",
)
def member_referral_code(request: HttpRequest, customer_id: str) -> HttpResponse:
    """The member's code to share (created on the first call; the same code after)."""
    api_key = request_api_key(request)
    customer = customer_get(external_id=customer_id)

    def perform() -> tuple[int, Any]:
        code = services.referral_code_get(customer=customer).code
        return 200, {"code": code, "link": selectors.referral_link(code)}

    return idempotent_response(request, api_key=api_key, perform=perform)


@router.post(
    "/members/{customer_id}/referral", response={201: ReferralOut},
    summary="Record that a new customer came through a referral code",
)
def member_referral_attach(
    request: HttpRequest, customer_id: str, payload: ReferralIn
) -> HttpResponse:
    """Both sides are rewarded once this customer's first paid order is past the return window.
    Refused: `self_referral` (same customer, email or phone), `not_a_new_customer`,
    `already_referred`, `referral_code_unknown`."""
    api_key = request_api_key(request)
    customer = customer_get(external_id=customer_id)

    def perform() -> tuple[int, Any]:
        referral = services.referral_attach(referee=customer, code=payload.code)
        referrer = referral.referrer.customer.external_id
        return 201, _plain({
            "referrer_id": referrer, "referee_id": customer.external_id,
            "code": referral.code, "status": referral.status, "created_at": referral.created_at,
        })

    return idempotent_response(request, api_key=api_key, perform=perform)


class PeriodQuery(Schema):
    start: datetime
    end: datetime


@router.get("/loyalty/referral-rate", response=ReferralRateOut, summary="Referral rate (KPI)")
def referral_rate(request: HttpRequest, query: Query[PeriodQuery]) -> dict[str, Any]:
    """Of the customers whose first paid order fell in [start, end), the share who came through
    a referral."""
    if timezone.is_naive(query.start) or timezone.is_naive(query.end):
        raise ValidationError("start and end need a UTC offset", field="start")
    rate = selectors.referral_rate(start=query.start, end=query.end)
    return {
        "start": rate.start, "end": rate.end, "new_customers": rate.new_customers,
        "referred": rate.referred, "rate": _text(rate.rate),
    }


@router.post(
    "/members/{customer_id}/leaderboard", response={200: LeaderboardOptOut},
    summary="Opt in to (or out of) the leaderboard",
)
def member_leaderboard(
    request: HttpRequest, customer_id: str, payload: LeaderboardIn
) -> HttpResponse:
    """Opted-in members appear under a random pseudonym, never their name."""
    api_key = request_api_key(request)
    customer = customer_get(external_id=customer_id)

    def perform() -> tuple[int, Any]:
        if payload.opt_in:
            return 200, {"pseudonym": services.leaderboard_join(customer=customer).pseudonym}
        services.leaderboard_leave(customer=customer)
        return 200, {"pseudonym": None}

    return idempotent_response(request, api_key=api_key, perform=perform)


class BoardQuery(Schema):
    days: int = Field(30, ge=1, le=366)
    limit: int = Field(10, ge=1, le=100)


@router.get("/loyalty/leaderboard", response=list[LeaderboardRowOut], summary="The leaderboard")
def leaderboard(request: HttpRequest, query: Query[BoardQuery]) -> list[dict[str, Any]]:
    """Opted-in members by points earned in the last `days`; pseudonyms only."""
    rows = selectors.leaderboard(now=timezone.now(), days=query.days, limit=query.limit)
    return [{"rank": r.rank, "pseudonym": r.pseudonym, "points": r.points} for r in rows]
