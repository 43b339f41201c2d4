"""Tiers: up at once, down only after the grace period, with history and visible progress."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from tests.loyalty.conftest import T0, make_order, make_program, set_status
from vafa.customers.models import Customer, Order, OrderStatus
from vafa.loyalty import tasks
from vafa.loyalty.models import Member, Tier, TierChange, TierMetric
from vafa.loyalty.selectors import member_tier_progress
from vafa.loyalty.services import order_sync_points, tier_recalculate, tiers_recalculate_all

pytestmark = pytest.mark.usefixtures("base_rule")


@pytest.fixture
def tiers(program: object) -> dict[str, Tier]:
    make_program(tier_metric=TierMetric.POINTS, tier_window_days=365, tier_grace_days=30)
    return {
        "bronze": Tier.objects.create(name="Bronze", rank=0, min_points=0),
        "silver": Tier.objects.create(name="Silver", rank=1, min_points=100),
        "gold": Tier.objects.create(
            name="Gold", rank=2, min_points=300, earn_multiplier=Decimal("1.5"), free_shipping=True
        ),
    }


def buy(customer: Customer, total: int, at: datetime = T0) -> Order:
    order = make_order(customer, total, placed_at=at)
    order_sync_points(order=order, now=at)
    return order


def tier_of(customer: Customer) -> str | None:
    member = Member.objects.select_related("tier").get(customer=customer)
    return member.tier.name if member.tier else None


def test_a_member_moves_up_as_soon_as_an_order_qualifies(
    zahra: Customer, tiers: dict[str, Tier]
) -> None:
    buy(zahra, 500_000)  # 50 points
    assert tier_of(zahra) == "Bronze"
    buy(zahra, 2_500_000, T0 + timedelta(days=1))  # 300 in the window
    assert tier_of(zahra) == "Gold"


def test_the_gold_multiplier_applies_to_later_orders(
    zahra: Customer, tiers: dict[str, Tier]
) -> None:
    buy(zahra, 3_000_000)
    order = make_order(zahra, 1_000_000, placed_at=T0 + timedelta(days=2))
    [entry] = order_sync_points(order=order, now=T0 + timedelta(days=2))
    assert entry.points == 150


def test_a_member_keeps_the_tier_through_the_grace_period_then_drops(
    zahra: Customer, tiers: dict[str, Tier]
) -> None:
    buy(zahra, 3_000_000)
    out_of_window = T0 + timedelta(days=366)
    assert tier_recalculate(customer=zahra, now=out_of_window) is None  # grace starts
    assert tier_of(zahra) == "Gold"
    progress = member_tier_progress(customer=zahra, now=out_of_window)
    assert progress.grace_until == out_of_window + timedelta(days=30)
    assert tier_recalculate(customer=zahra, now=out_of_window + timedelta(days=29)) is None
    change = tier_recalculate(customer=zahra, now=out_of_window + timedelta(days=30))
    assert change is not None
    assert (change.from_tier, change.to_tier) == (tiers["gold"], tiers["bronze"])
    assert tier_of(zahra) == "Bronze"


def test_requalifying_during_the_grace_period_keeps_the_tier(
    zahra: Customer, tiers: dict[str, Tier]
) -> None:
    buy(zahra, 3_000_000)
    tier_recalculate(customer=zahra, now=T0 + timedelta(days=366))
    buy(zahra, 2_000_000, T0 + timedelta(days=380))  # 300 again, with the ×1.5
    assert tier_of(zahra) == "Gold"
    assert Member.objects.get(customer=zahra).tier_below_since is None


def test_a_refund_lowers_the_window_and_can_start_the_grace_period(
    zahra: Customer, tiers: dict[str, Tier]
) -> None:
    order = buy(zahra, 3_000_000)
    set_status(order, OrderStatus.REFUNDED, refunded=3_000_000)
    order_sync_points(order=order, now=T0 + timedelta(days=3))
    member = Member.objects.get(customer=zahra)
    assert (tier_of(zahra), member.tier_below_since) == ("Gold", T0 + timedelta(days=3))


def test_tier_history_records_every_change(zahra: Customer, tiers: dict[str, Tier]) -> None:
    buy(zahra, 1_000_000)
    buy(zahra, 2_000_000, T0 + timedelta(days=1))
    history = list(
        TierChange.objects.order_by("id").values_list(
            "from_tier__name", "to_tier__name", "metric_value"
        )
    )
    assert history == [(None, "Silver", Decimal(100)), ("Silver", "Gold", Decimal(300))]


def test_the_member_sees_the_tier_below_and_above_and_progress_between(
    zahra: Customer, tiers: dict[str, Tier]
) -> None:
    buy(zahra, 1_500_000)  # 150 points: Silver
    progress = member_tier_progress(customer=zahra, now=T0)
    assert (progress.below, progress.current, progress.above) == (
        tiers["bronze"],
        tiers["silver"],
        tiers["gold"],
    )
    assert (progress.value, progress.target, progress.remaining) == (
        Decimal(150),
        Decimal(300),
        Decimal(150),
    )


def test_a_customer_without_a_member_row_is_shown_in_the_entry_tier_with_the_next_ahead(
    omid: Customer, tiers: dict[str, Tier]
) -> None:
    progress = member_tier_progress(customer=omid, now=T0)
    assert (progress.current, progress.above, progress.value) == (
        tiers["bronze"], tiers["silver"], Decimal(0))  # not "0 of 0 to reach Bronze"


def test_without_an_entry_tier_from_zero_the_first_tier_is_ahead(
    omid: Customer, tiers: dict[str, Tier]
) -> None:
    Tier.objects.filter(pk=tiers["bronze"].pk).update(min_points=100)
    progress = member_tier_progress(customer=omid, now=T0)
    assert (progress.current, progress.above, progress.target) == (
        None, tiers["bronze"], Decimal(100))


def test_the_spend_metric_counts_money_paid_net_of_refunds_in_the_program_currency(
    zahra: Customer, tiers: dict[str, Tier]
) -> None:
    make_program(tier_metric=TierMetric.SPEND, tier_window_days=365, tier_grace_days=0)
    Tier.objects.filter(rank=1).update(min_spend=Decimal(5_000_000))
    Tier.objects.filter(rank=2).update(min_spend=Decimal(20_000_000))
    order = buy(zahra, 6_000_000)
    make_order(zahra, 50_000_000, placed_at=T0, currency="USD")  # another currency: not counted
    assert tier_of(zahra) == "Silver"
    set_status(order, OrderStatus.PARTIALLY_REFUNDED, refunded=2_000_000)
    order_sync_points(order=order, now=T0 + timedelta(days=1))
    assert tier_of(zahra) == "Bronze"  # no grace configured


def test_the_periodic_task_recalculates_every_member(
    zahra: Customer, omid: Customer, tiers: dict[str, Tier]
) -> None:
    buy(zahra, 3_000_000)
    buy(omid, 1_000_000)
    make_program(tier_grace_days=0)
    assert tiers_recalculate_all(now=T0 + timedelta(days=400)) == 2
    assert (tier_of(zahra), tier_of(omid)) == ("Bronze", "Bronze")
    assert tasks.recalculate_tiers.call_local() == 0  # a thin wrapper, nothing left to change
