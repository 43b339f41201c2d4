"""Gamification: badges from rules, time-boxed challenges, an opt-in leaderboard of pseudonyms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.loyalty.conftest import T0, make_order, set_status
from vafa.customers.models import Customer, Event, OrderStatus, Product
from vafa.feedback.models import Review
from vafa.feedback.reviews import review_moderate
from vafa.loyalty import selectors, services
from vafa.loyalty.models import (
    Badge,
    BadgeRule,
    Challenge,
    ChallengeMetric,
    EarningRule,
    LedgerEntry,
    ProgramSettings,
)

pytestmark = pytest.mark.django_db


def slugs(customer: Customer) -> set[str]:
    return set(customer.loyalty.badges.values_list("badge__slug", flat=True))


def test_five_paid_orders_earn_the_badge_once(zahra: Customer, program: ProgramSettings) -> None:
    Badge.objects.create(name="5 orders", slug="five-orders", rule=BadgeRule.ORDERS, threshold=5)
    orders = [make_order(zahra, 100_000, placed_at=T0 + timedelta(days=i)) for i in range(5)]
    set_status(orders[0], OrderStatus.REFUNDED, refunded=100_000)  # refunded ones do not count

    before = services.badges_evaluate(customer=zahra, now=T0 + timedelta(days=10))
    make_order(zahra, 100_000, placed_at=T0 + timedelta(days=11))
    won = services.badges_evaluate(customer=zahra, now=T0 + timedelta(days=12))
    again = services.badges_evaluate(customer=zahra, now=T0 + timedelta(days=13))

    assert (len(before), len(won), len(again)) == (0, 1, 0)
    assert slugs(zahra) == {"five-orders"}


def test_a_nowruz_order_and_reviews_earn_their_badges(
    zahra: Customer, program: ProgramSettings
) -> None:
    Badge.objects.create(name="Nowruz", slug="nowruz", rule=BadgeRule.NOWRUZ_BUYER)
    Badge.objects.create(name="Critic", slug="critic", rule=BadgeRule.REVIEWS, threshold=3)
    # 1 Farvardin 1404 = 21 March 2025 (Iran's official calendar); 14 Farvardin is 3 April.
    make_order(zahra, 100_000, placed_at=datetime(2025, 4, 3, 8, 0, tzinfo=UTC))
    for day in range(3):
        Event.objects.create(customer=zahra, type="review", occurred_at=T0 + timedelta(days=day))

    services.badges_evaluate(customer=zahra, now=datetime(2025, 4, 5, tzinfo=UTC))
    assert slugs(zahra) == {"critic"}  # 14 Farvardin is past the holidays

    make_order(zahra, 100_000, placed_at=datetime(2025, 3, 21, 8, 0, tzinfo=UTC))
    services.badges_evaluate(customer=zahra, now=datetime(2025, 4, 5, tzinfo=UTC))
    assert slugs(zahra) == {"critic", "nowruz"}


def test_reviews_published_in_vafa_count_toward_the_reviews_badge(
    zahra: Customer, program: ProgramSettings
) -> None:
    Badge.objects.create(name="Critic", slug="critic", rule=BadgeRule.REVIEWS, threshold=3)
    products = [Product.objects.create(external_id=f"p{i}", name=f"P{i}") for i in range(3)]
    reviews = [
        review_moderate(
            review=Review.objects.create(customer=zahra, product=product, stars=5),
            publish=True, now=T0 + timedelta(days=i),
        )
        for i, product in enumerate(products[:2])
    ]
    Review.objects.create(customer=zahra, product=products[2], stars=4)  # not moderated yet

    services.badges_evaluate(customer=zahra, now=T0 + timedelta(days=5))
    assert slugs(zahra) == set()  # two published, one waiting
    Event.objects.create(customer=zahra, type="review", occurred_at=T0)  # one on the shop's site
    services.badges_evaluate(customer=zahra, now=T0 + timedelta(days=5))
    assert slugs(zahra) == {"critic"} and len(reviews) == 2


def test_a_challenge_counts_only_inside_its_dates_and_pays_once(
    zahra: Customer, base_rule: EarningRule
) -> None:
    challenge = Challenge.objects.create(
        name="Two orders in March", metric=ChallengeMetric.ORDERS, target=2, reward_points=50,
        starts_at=T0, ends_at=T0 + timedelta(days=30),
    )
    make_order(zahra, 100_000, placed_at=T0 - timedelta(days=1))  # before the challenge
    make_order(zahra, 100_000, placed_at=T0 + timedelta(days=1))
    assert services.challenges_evaluate(customer=zahra, now=T0 + timedelta(days=2)) == []

    make_order(zahra, 100_000, placed_at=T0 + timedelta(days=3))
    done = services.challenges_evaluate(customer=zahra, now=T0 + timedelta(days=4))
    again = services.challenges_evaluate(customer=zahra, now=T0 + timedelta(days=5))

    assert [c.challenge_id for c in done] == [challenge.pk] and again == []
    entry = LedgerEntry.objects.get(reason="challenge")
    assert entry.points == 50 and zahra.loyalty.balance == 50


def test_an_ended_challenge_completes_nobody(zahra: Customer, program: ProgramSettings) -> None:
    Challenge.objects.create(
        name="Old", metric=ChallengeMetric.ORDERS, target=1, starts_at=T0,
        ends_at=T0 + timedelta(days=1),
    )
    make_order(zahra, 100_000, placed_at=T0)

    assert services.challenges_evaluate(customer=zahra, now=T0 + timedelta(days=2)) == []


def test_the_leaderboard_shows_only_opted_in_members_and_only_pseudonyms(
    zahra: Customer, omid: Customer, base_rule: EarningRule
) -> None:
    sara = Customer.objects.create(external_id="sara", first_name="سارا")
    for customer, total in ((zahra, 3_000_000), (omid, 1_000_000), (sara, 5_000_000)):
        services.order_sync_points(order=make_order(customer, total), now=T0)
    joined_z = services.leaderboard_join(customer=zahra, now=T0)
    services.leaderboard_join(customer=omid, now=T0)
    assert services.leaderboard_join(customer=zahra, now=T0) == joined_z

    board = selectors.leaderboard(now=T0 + timedelta(days=1))

    assert [(r.rank, r.points) for r in board] == [(1, 300), (2, 100)]
    assert board[0].pseudonym == joined_z.pseudonym
    assert all(r.pseudonym.startswith("Member-") for r in board)
    assert not any(name in r.pseudonym for r in board for name in ("zahra", "omid", "sara"))

    services.leaderboard_leave(customer=zahra)
    assert [r.points for r in selectors.leaderboard(now=T0 + timedelta(days=1))] == [100]


def test_the_nightly_run_evaluates_recently_active_members(
    zahra: Customer, base_rule: EarningRule
) -> None:
    Badge.objects.create(name="First", slug="first", rule=BadgeRule.ORDERS, threshold=1)
    services.order_sync_points(order=make_order(zahra, 100_000), now=T0)

    assert services.gamification_run(now=T0 + timedelta(hours=1)) == 1
    assert services.gamification_run(now=T0 + timedelta(hours=2)) == 0
