"""Personas of the member portal tests: a club with three tiers and three rewards, and three
members who write Persian (Zahra), Arabic (Layla) and English (Olivia).

The portal's views read the clock themselves, so the data is laid out around the real `now`
rather than a frozen moment. Links in messages point at `SITE`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from vafa.customers.models import Channel, Customer
from vafa.dashboard.portal import access
from vafa.feedback.models import Survey, SurveyKind
from vafa.feedback.services import invitation_create
from vafa.loyalty.models import (
    Badge,
    BadgeRule,
    Challenge,
    ChallengeMetric,
    EarningRule,
    ExpiryPolicy,
    MemberBadge,
    ProgramSettings,
    Reward,
    RewardKind,
    RuleKind,
    Tier,
)
from vafa.loyalty.services import points_award, tier_recalculate
from vafa.messaging.models import MessagingSettings
from vafa.messaging.services import consent_set

SITE = "https://shop.example"
PROVIDER_VARS = ("VAFA_SMTP_URL", "VAFA_EMAIL_BACKEND", "VAFA_VAPID_PUBLIC_KEY")
VAPID_PUBLIC = (  # a valid P-256 public key (uncompressed point, base64url); never used to send
    "BEl62iUYgUivxIkv69yViEuiBIa-Ib9-SkvMeAtA3LFgDzkrxZJjSgSnfckjBJuBkr3qBUYIHBQFLXYp5Nksh8U"
)


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    """Each test starts with no sign-in requests counted (the limit lives in Django's cache)."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def portal_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROVIDER_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VAFA_SITE_URL", SITE)
    monkeypatch.setenv("VAFA_EMAIL_FROM", "club@shop.example")
    monkeypatch.setenv("VAFA_VAPID_PUBLIC_KEY", VAPID_PUBLIC)


@dataclass
class Club:
    program: ProgramSettings
    tiers: dict[str, Tier]
    rewards: dict[str, Reward]
    members: dict[str, Customer]


def make_member(external_id: str, language: str, **fields: Any) -> Customer:
    customer = Customer.objects.create(
        external_id=external_id, language=language, timezone="Asia/Tehran", **fields
    )
    now = timezone.now()
    for channel in (Channel.EMAIL, Channel.SMS):
        consent_set(customer=customer, channel=channel, granted=True, source="test", now=now)
    return customer


def build_club() -> Club:
    """The club every portal test starts from (about thirty queries)."""
    now = timezone.now()
    MessagingSettings.objects.create(pk=1, control_percent=Decimal(0), shop_name="Golrang")
    program, _ = ProgramSettings.objects.update_or_create(
        pk=1,
        defaults={
            "currency": "IRT",
            "point_value": Decimal(100),
            "return_window_days": 14,
            "expiry_policy": ExpiryPolicy.ROLLING,
            "expiry_months": 1,
            "endowed_points": 200,
            "first_reward_points": 1000,
            "tier_metric": "points",
        },
    )
    tiers = {
        "bronze": Tier.objects.create(name="Bronze", rank=1, min_points=0),
        "silver": Tier.objects.create(
            name="Silver", rank=2, min_points=2000, earn_multiplier=Decimal("1.5")
        ),
        "gold": Tier.objects.create(
            name="Gold", rank=3, min_points=5000, free_shipping=True, exclusive_rewards=True
        ),
    }
    rewards = {
        "coffee": Reward.objects.create(
            name="Free coffee",
            kind=RewardKind.GIFT,
            points_cost=500,
            description="A cup of our house blend",
            coupon_prefix="CAFE-",
            coupon_valid_days=30,
        ),
        "discount": Reward.objects.create(
            name="Ten percent off",
            kind=RewardKind.PERCENT_DISCOUNT,
            points_cost=1500,
            discount_percent=Decimal(10),
        ),
        "box": Reward.objects.create(
            name="Gift box",
            kind=RewardKind.GIFT,
            points_cost=20000,
        ),
    }
    members = {
        "fa": make_member(
            "C-FA", "fa", first_name="زهرا", email="zahra@example.com", phone="+989121234567"
        ),
        "ar": make_member(
            "C-AR", "ar", first_name="ليلى", email="layla@example.com", phone="+971501234567"
        ),
        "en": make_member(
            "C-EN", "en", first_name="Olivia", email="olivia@example.com", phone="+14165550123"
        ),
    }
    EarningRule.objects.create(name="welcome", kind=RuleKind.SIGNUP, active=True, points=2400)
    badge = Badge.objects.create(
        name="First order", slug="first-order", rule=BadgeRule.ORDERS, threshold=1
    )
    Badge.objects.create(name="Reviewer", slug="reviewer", rule=BadgeRule.REVIEWS, threshold=3)
    Challenge.objects.create(
        name="Spring points",
        metric=ChallengeMetric.POINTS_EARNED,
        target=4000,
        reward_points=300,
        starts_at=now - timedelta(days=3),
        ends_at=now + timedelta(days=20),
    )
    survey = Survey.objects.create(
        slug="club-nps",
        kind=SurveyKind.NPS,
        title={"fa": "نظرسنجی رضایت", "ar": "استطلاع الرضا", "en": "How are we doing?"},
    )
    for customer in members.values():
        points_award(
            customer=customer,
            kind=RuleKind.SIGNUP,
            reference=customer.external_id,
            now=now - timedelta(days=2),
        )
        tier_recalculate(customer=customer, now=now)
        MemberBadge.objects.create(
            member=customer.loyalty, badge=badge, awarded_at=now - timedelta(days=1)
        )
        invitation_create(customer=customer, survey=survey, now=now)
    return Club(program=program, tiers=tiers, rewards=rewards, members=members)


@pytest.fixture
def club(db: None) -> Club:
    return build_club()


def signed_in(client: Client, customer: Customer) -> Client:
    """`client` holding `customer`'s member session, opened through a real embed link."""
    expires = timezone.now() + timedelta(minutes=5)
    token = access.link_token(customer_id=customer.pk, expires_at=expires, kind=access.EMBED)
    response = client.get(f"/p/e/{token}/")
    assert response.status_code == 302
    return client
