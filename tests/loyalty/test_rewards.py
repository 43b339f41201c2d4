"""The rewards catalogue: buying a reward with points, its coupon code, limits, cancelling."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from tests.loyalty.conftest import T0, make_program
from vafa.customers.models import Customer
from vafa.loyalty.errors import (
    IdempotencyConflict,
    InsufficientPoints,
    OutOfStock,
    RedemptionLimitReached,
    RedemptionNotCancellable,
    RewardUnavailable,
    TierRequired,
)
from vafa.loyalty.models import (
    EntryKind,
    ExpiryPolicy,
    LedgerEntry,
    Lot,
    Member,
    RedemptionStatus,
    Reward,
    RewardKind,
    Tier,
)
from vafa.loyalty.selectors import ledger_reconcile, member_balance
from vafa.loyalty.services import (
    points_adjust,
    points_redeem,
    points_redeem_cancel,
    redemption_cancel,
    redemption_use,
    reward_redeem,
    tier_recalculate,
)


@pytest.fixture
def coupon(program: object) -> Reward:
    return Reward.objects.create(
        name="50,000 Toman off",
        kind=RewardKind.FIXED_DISCOUNT,
        points_cost=300,
        discount_amount=Decimal(50_000),
        currency="IRT",
        coupon_prefix="VF-",
        coupon_valid_days=30,
    )


def give(customer: Customer, points: int, key: str = "g", at: datetime = T0) -> None:
    points_adjust(
        customer=customer, points=points, reason="gift", actor="user:1", idempotency_key=key, now=at
    )


def test_a_reward_costs_its_points_and_issues_a_unique_code(
    zahra: Customer, coupon: Reward
) -> None:
    give(zahra, 1000)
    first = reward_redeem(customer=zahra, reward=coupon, idempotency_key="r1", now=T0)
    second = reward_redeem(customer=zahra, reward=coupon, idempotency_key="r2", now=T0)
    assert first.code.startswith("VF-") and len(first.code) == 13
    assert first.code != second.code
    assert first.expires_at == T0 + timedelta(days=30)
    assert (first.entry.kind, first.entry.points) == (EntryKind.REDEEM, -300)
    assert member_balance(customer=zahra, now=T0).available == 400


def test_a_replayed_reward_redemption_returns_the_first(zahra: Customer, coupon: Reward) -> None:
    give(zahra, 1000)
    first = reward_redeem(customer=zahra, reward=coupon, idempotency_key="r1", now=T0)
    again = reward_redeem(customer=zahra, reward=coupon, idempotency_key="r1", now=T0)
    assert again.pk == first.pk
    assert member_balance(customer=zahra, now=T0).available == 700
    points_redeem(customer=zahra, points=300, idempotency_key="plain", now=T0)
    with pytest.raises(IdempotencyConflict):  # that key paid for points, not for this reward
        reward_redeem(customer=zahra, reward=coupon, idempotency_key="plain", now=T0)


def test_a_reward_needs_enough_available_points(zahra: Customer, coupon: Reward) -> None:
    give(zahra, 299)
    with pytest.raises(InsufficientPoints):
        reward_redeem(customer=zahra, reward=coupon, idempotency_key="r", now=T0)


def test_a_cancelled_redemption_returns_its_points_with_their_original_expiry(
    zahra: Customer, coupon: Reward
) -> None:
    make_program(expiry_policy=ExpiryPolicy.ROLLING, expiry_months=1)
    Reward.objects.filter(pk=coupon.pk).update(stock=3)
    give(zahra, 200, "old", T0)
    give(zahra, 200, "new", T0 + timedelta(days=20))
    redemption = reward_redeem(
        customer=zahra, reward=coupon, idempotency_key="r", now=T0 + timedelta(days=20)
    )
    assert Reward.objects.get(pk=coupon.pk).stock == 2
    cancelled = redemption_cancel(
        redemption=redemption, reason="order cancelled", actor="user:3", now=T0 + timedelta(days=21)
    )
    assert cancelled.status == RedemptionStatus.CANCELLED
    assert cancelled.cancel_entry is not None
    assert (cancelled.cancel_entry.kind, cancelled.cancel_entry.points) == (EntryKind.RESTORE, 300)
    assert Reward.objects.get(pk=coupon.pk).stock == 3
    returned = Lot.objects.filter(entry=cancelled.cancel_entry).order_by("expires_at")
    # 200 came from the lot expiring 1 April, 100 from the one expiring 21 April.
    assert [(lot.points, lot.expires_at) for lot in returned] == [
        (200, T0 + timedelta(days=31)),
        (100, T0 + timedelta(days=51)),
    ]
    assert member_balance(customer=zahra, now=T0 + timedelta(days=21)).available == 400
    # Cancelling twice is harmless.
    again = redemption_cancel(
        redemption=redemption, reason="again", actor="user:3", now=T0 + timedelta(days=22)
    )
    assert again.cancel_entry_id == cancelled.cancel_entry_id
    assert ledger_reconcile() == []


def test_returned_points_that_already_expired_expire_at_once(
    zahra: Customer, coupon: Reward
) -> None:
    make_program(expiry_policy=ExpiryPolicy.ROLLING, expiry_months=1)
    give(zahra, 300)
    redemption = reward_redeem(customer=zahra, reward=coupon, idempotency_key="r", now=T0)
    redemption_cancel(
        redemption=redemption, reason="late", actor="user:3", now=T0 + timedelta(days=40)
    )
    assert member_balance(customer=zahra, now=T0 + timedelta(days=40)).available == 0
    assert Member.objects.get(customer=zahra).balance == 0
    assert LedgerEntry.objects.filter(kind=EntryKind.EXPIRE).count() == 1


def test_a_used_coupon_cannot_be_cancelled(zahra: Customer, coupon: Reward) -> None:
    give(zahra, 300)
    redemption = reward_redeem(customer=zahra, reward=coupon, idempotency_key="r", now=T0)
    redemption_use(code=redemption.code, now=T0)
    with pytest.raises(RedemptionNotCancellable) as info:
        redemption_cancel(redemption=redemption, reason="x", actor="user:1", now=T0)
    assert info.value.code == "redemption_used"


def test_stock_and_the_per_member_limit_are_enforced(
    zahra: Customer, omid: Customer, coupon: Reward
) -> None:
    Reward.objects.filter(pk=coupon.pk).update(stock=1, per_member_limit=1)
    give(zahra, 1000)
    give(omid, 1000)
    reward_redeem(customer=zahra, reward=coupon, idempotency_key="z1", now=T0)
    with pytest.raises(OutOfStock):
        reward_redeem(customer=omid, reward=coupon, idempotency_key="o1", now=T0)
    Reward.objects.filter(pk=coupon.pk).update(stock=10)
    with pytest.raises(RedemptionLimitReached):
        reward_redeem(customer=zahra, reward=coupon, idempotency_key="z2", now=T0)
    assert member_balance(customer=omid, now=T0).available == 1000  # the refusal cost nothing


def test_a_switched_off_or_expired_reward_cannot_be_redeemed(
    zahra: Customer, coupon: Reward
) -> None:
    give(zahra, 1000)
    Reward.objects.filter(pk=coupon.pk).update(ends_at=T0)
    with pytest.raises(RewardUnavailable):
        reward_redeem(customer=zahra, reward=coupon, idempotency_key="r", now=T0)
    Reward.objects.filter(pk=coupon.pk).update(ends_at=None, active=False)
    with pytest.raises(RewardUnavailable):
        reward_redeem(customer=zahra, reward=coupon, idempotency_key="r", now=T0)


def test_tier_restricted_rewards_refuse_lower_tiers(zahra: Customer, coupon: Reward) -> None:
    make_program(tier_metric="points")
    Tier.objects.create(name="Bronze", rank=0, min_points=0)
    gold = Tier.objects.create(name="Gold", rank=1, min_points=5000, exclusive_rewards=True)
    Reward.objects.filter(pk=coupon.pk).update(min_tier=gold)
    give(zahra, 1000)
    tier_recalculate(customer=zahra, now=T0)
    with pytest.raises(TierRequired) as info:
        reward_redeem(customer=zahra, reward=coupon, idempotency_key="r", now=T0)
    assert (info.value.code, info.value.status) == ("tier_required", 403)
    Reward.objects.filter(pk=coupon.pk).update(min_tier=None, exclusive=True)
    with pytest.raises(TierRequired):
        reward_redeem(customer=zahra, reward=coupon, idempotency_key="r", now=T0)
    Member.objects.filter(customer=zahra).update(tier=gold)
    assert reward_redeem(customer=zahra, reward=coupon, idempotency_key="r", now=T0).code


def test_a_plain_points_redemption_can_be_cancelled_once(zahra: Customer, program: object) -> None:
    give(zahra, 100)
    points_redeem(customer=zahra, points=60, idempotency_key="checkout-1", now=T0)
    first = points_redeem_cancel(
        customer=zahra,
        idempotency_key="checkout-1",
        reason="checkout failed",
        actor="api_key:vafa_x",
        now=T0,
    )
    again = points_redeem_cancel(
        customer=zahra,
        idempotency_key="checkout-1",
        reason="checkout failed",
        actor="api_key:vafa_x",
        now=T0,
    )
    assert first.pk == again.pk and first.points == 60
    assert member_balance(customer=zahra, now=T0).available == 100
