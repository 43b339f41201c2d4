"""VIP (A3): the analytics run's flag and CLV, and the cap on what rewards may cost per member."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.loyalty.conftest import T0, make_order, make_score
from vafa.customers.models import Customer
from vafa.loyalty import selectors, services
from vafa.loyalty.errors import SpendCapReached
from vafa.loyalty.models import (
    EarningRule,
    LedgerEntry,
    Member,
    ProgramSettings,
    Reward,
    RewardKind,
    Tier,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def gift(program: ProgramSettings) -> Reward:
    """Costs 50 points = 5,000 Toman at the program's point value of 100."""
    return Reward.objects.create(name="Gift", kind=RewardKind.GIFT, points_cost=50)


@pytest.fixture
def rich(zahra: Customer) -> Customer:
    services.points_adjust(
        customer=zahra, points=1000, reason="seed", actor="test", idempotency_key="seed", now=T0
    )
    return zahra


def redeem(customer: Customer, reward: Reward, key: str) -> None:
    services.reward_redeem(customer=customer, reward=reward, idempotency_key=key, now=T0)


def test_it_refuses_a_reward_past_the_share_of_predicted_clv(rich: Customer, gift: Reward) -> None:
    make_score(rich, 120_000, vip=True)  # cap: 10% of 120,000 = 12,000 Toman = two gifts

    redeem(rich, gift, "r1")
    redeem(rich, gift, "r2")
    with pytest.raises(SpendCapReached) as refused:
        redeem(rich, gift, "r3")

    assert refused.value.code == "spend_cap_reached" and refused.value.status == 409
    assert LedgerEntry.objects.filter(kind="redeem").count() == 2
    vip = selectors.member_vip(customer=rich, now=T0)
    assert vip.vip and vip.spend_cap == Decimal(12_000) and vip.spent == Decimal(10_000)
    assert vip.cap_left == Decimal(2_000)


def test_a_cancelled_redemption_frees_its_share_of_the_cap(rich: Customer, gift: Reward) -> None:
    make_score(rich, 60_000)  # cap 6,000: one gift
    services.reward_redeem(customer=rich, reward=gift, idempotency_key="r1", now=T0)
    first = rich.loyalty.redemptions.get()
    services.redemption_cancel(redemption=first, reason="changed mind", actor="test", now=T0)

    redeem(rich, gift, "r2")

    assert rich.loyalty.redemptions.count() == 2


@pytest.mark.parametrize("clv", [None, "no score"])
def test_without_a_predicted_clv_there_is_no_cap(
    rich: Customer, gift: Reward, clv: str | None
) -> None:
    if clv is None:
        make_score(rich, None)

    for key in ("r1", "r2", "r3"):
        redeem(rich, gift, key)

    assert selectors.member_vip(customer=rich, now=T0).spend_cap is None


def test_an_empty_fraction_switches_the_cap_off(rich: Customer, gift: Reward) -> None:
    ProgramSettings.objects.filter(pk=1).update(retention_spend_fraction=None)
    make_score(rich, 1)

    redeem(rich, gift, "r1")

    assert rich.loyalty.redemptions.count() == 1


def test_vip_members_earn_at_the_vip_multiplier_and_see_their_perks(
    zahra: Customer, omid: Customer, base_rule: EarningRule
) -> None:
    ProgramSettings.objects.filter(pk=1).update(
        vip_earn_multiplier=Decimal("1.5"), vip_free_shipping=True
    )
    make_score(zahra, 90_000_000, vip=True)
    make_score(omid, 1_000_000)
    earned = {}
    for customer in (zahra, omid):
        order = make_order(customer, 1_000_000)  # 100 points at the base rate
        earned[customer.external_id] = sum(
            e.points for e in services.order_sync_points(order=order, now=T0)
        )
    assert earned == {"zahra": 150, "omid": 100}

    perks = selectors.member_vip(customer=zahra, now=T0).perks
    assert perks is not None
    assert (perks.earn_multiplier, perks.free_shipping, perks.early_access) == (
        Decimal("1.5"), True, False)
    assert selectors.member_vip(customer=omid, now=T0).perks is None


def test_a_higher_tier_multiplier_wins_over_the_vip_one(
    zahra: Customer, base_rule: EarningRule
) -> None:
    ProgramSettings.objects.filter(pk=1).update(vip_earn_multiplier=Decimal("1.5"))
    make_score(zahra, 90_000_000, vip=True)
    gold = Tier.objects.create(name="Gold", rank=1, earn_multiplier=Decimal(2))
    services.points_adjust(customer=zahra, points=1, reason="x", actor="t", idempotency_key="k",
                           now=T0)
    Member.objects.filter(customer=zahra).update(tier=gold)
    order = make_order(zahra, 1_000_000)
    assert sum(e.points for e in services.order_sync_points(order=order, now=T0)) == 200
