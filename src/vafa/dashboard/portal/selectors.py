"""Reads of the member portal: who an email or phone belongs to, everything the portal page
shows, and the member's data export. Nothing here writes."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

from django.urls import reverse

from vafa.core.text import PhoneError, normalize_phone
from vafa.customers.models import Channel, Consent, Customer, Event, Order
from vafa.dashboard.portal.models import DataRequest, DataRequestKind, DataRequestStatus
from vafa.feedback.links import survey_url
from vafa.feedback.models import SurveyInvitation, SurveyResponse, pick_language
from vafa.loyalty import selectors as loyalty
from vafa.loyalty.models import (
    Badge,
    Challenge,
    ChallengeCompletion,
    LeaderboardEntry,
    LedgerEntry,
    Member,
    MemberBadge,
    Redemption,
    ReferralCode,
    Reward,
    Tier,
)
from vafa.messaging.conf import load_env
from vafa.messaging.models import Preference, PushSubscription
from vafa.messaging.policy import customer_zone
from vafa.messaging.selectors import messaging_config
from vafa.messaging.tokens import recipient_token

RECENT_REDEMPTIONS = 10
LEADERBOARD_SIZE = 10


def customer_by_identifier(identifier: str) -> tuple[Customer | None, str]:
    """The customer with this email address (case-insensitive) or phone number (any common
    writing, Persian digits included), and the channel to reach them on; (None, "") when no
    single customer matches."""
    text = identifier.strip()
    if not text:
        return None, ""
    if "@" in text:
        matches = list(Customer.objects.filter(email__iexact=text)[:2])
        channel = Channel.EMAIL
    else:
        try:
            phone = normalize_phone(text)
        except PhoneError:
            return None, ""
        matches = list(Customer.objects.filter(phone=phone)[:2])
        channel = Channel.SMS
    # Two customers sharing an address: sending either one's link could hand an account to
    # the wrong person, so neither gets one.
    if len(matches) != 1:
        return None, ""
    return matches[0], channel


def absolute_url(path_or_url: str) -> str:
    """`path_or_url` made absolute with the shop's public address (`VAFA_SITE_URL`)."""
    if path_or_url.startswith(("https://", "http://")):
        return path_or_url
    return f"{messaging_config().site_url}{path_or_url}"


@dataclass(frozen=True)
class RewardOffer:
    """A reward the member may redeem, and the idempotency key of its redeem form (fresh on
    every page view, so a resubmitted form redeems once and a new visit can redeem again)."""

    reward: Reward
    affordable: bool
    missing: int
    form_key: str


@dataclass(frozen=True)
class BadgeView:
    badge: Badge
    awarded_at: datetime | None


@dataclass(frozen=True)
class ChallengeView:
    challenge: Challenge
    progress: int
    done: bool
    ends_at: datetime

    @property
    def percent(self) -> int:
        target = max(self.challenge.target, 1)
        return 100 if self.done else min(100, self.progress * 100 // target)


@dataclass(frozen=True)
class Referral:
    code: str
    link: str
    telegram: str
    whatsapp: str


@dataclass(frozen=True)
class SurveyLink:
    title: str
    url: str
    expires_at: datetime


@dataclass(frozen=True)
class ExpiringView:
    points: int
    expires_at: datetime


@dataclass
class PortalPage:
    """Everything the portal page shows for one member; datetimes are in the member's zone."""

    customer: Customer
    language: str
    currency: str
    balance: loyalty.MemberBalance
    expiring: list[ExpiringView]
    tier: loyalty.TierProgress
    tiers: list[Tier]
    tier_percent: int
    vip: loyalty.VipPerks | None  # the program's VIP perks, when the member is a VIP
    reward_progress: loyalty.RewardProgress
    rewards: list[RewardOffer]
    redemptions: list[Redemption]
    badges: list[BadgeView]
    challenges: list[ChallengeView]
    referral: Referral | None
    surveys: list[SurveyLink]
    preferences_url: str
    vapid_public_key: str
    push_subscribed: bool
    delete_requested_at: datetime | None
    pseudonym: str = ""
    leaderboard: list[loyalty.LeaderboardRow] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def _share_text(language: str) -> str:
    from django.utils.translation import gettext, override

    with override(language):
        return gettext("Join me in this shop's club and we both get points:")


def referral_for(code: str, language: str) -> Referral:
    """The member's invite link with ready-made Telegram and WhatsApp share links."""
    link = absolute_url(loyalty.referral_link(code))
    text = _share_text(language)
    return Referral(
        code=code,
        link=link,
        telegram="https://t.me/share/url?" + urlencode({"url": link, "text": text}),
        whatsapp="https://wa.me/?text=" + quote(f"{text} {link}", safe=""),
    )


def _preference_channel(customer: Customer) -> str:
    if customer.email:
        return Channel.EMAIL
    if customer.phone:
        return Channel.SMS
    return Channel.PUSH


def portal_page(*, customer: Customer, now: datetime, language: str) -> PortalPage:
    """Points, tier, rewards, badges, challenges, referral, surveys and settings of a member."""
    zone = customer_zone(customer.timezone)
    program = loyalty.program_settings()
    member = Member.objects.filter(customer=customer).first()
    balance = loyalty.member_balance(customer=customer, now=now)
    spendable = balance.available - balance.debt
    tier = loyalty.member_tier_progress(customer=customer, now=now)
    if tier.target:
        floor = loyalty.tier_threshold(tier.current, tier.metric) if tier.current else Decimal(0)
        span = tier.target - floor
        share = (tier.value - floor) * 100 / span if span > 0 else Decimal(100)
        tier_percent = int(min(Decimal(100), max(Decimal(0), share)))
    else:
        tier_percent = 100
    rewards = [
        RewardOffer(
            r,
            r.points_cost <= spendable,
            max(0, r.points_cost - spendable),
            secrets.token_urlsafe(16),
        )
        for r in loyalty.rewards_catalogue(now=now, customer=customer)
    ]
    redemptions: list[Redemption] = []
    badges: list[BadgeView] = []
    challenges: list[ChallengeView] = []
    referral = None
    held: dict[int, datetime] = {}
    completed: set[int] = set()
    if member is not None:
        redemptions = list(
            Redemption.objects.filter(member=member)
            .select_related("reward")
            .order_by("-created_at")[:RECENT_REDEMPTIONS]
        )
        held = dict(MemberBadge.objects.filter(member=member).values_list("badge_id", "awarded_at"))
        completed = set(
            ChallengeCompletion.objects.filter(member=member).values_list("challenge_id", flat=True)
        )
        code = ReferralCode.objects.filter(member=member).values_list("code", flat=True).first()
        if code:
            referral = referral_for(code, language)
    for badge in Badge.objects.filter(active=True).order_by("name"):
        at = held.get(badge.pk)
        badges.append(BadgeView(badge, at.astimezone(zone) if at else None))
    running = Challenge.objects.filter(active=True, starts_at__lte=now, ends_at__gt=now)
    for challenge in running.order_by("ends_at"):
        done = challenge.pk in completed
        progress = (
            challenge.target
            if done
            else loyalty.challenge_progress(challenge=challenge, customer=customer, now=now)
        )
        challenges.append(
            ChallengeView(
                challenge, min(progress, challenge.target), done, challenge.ends_at.astimezone(zone)
            )
        )
    surveys = [
        SurveyLink(
            title=pick_language(inv.survey.title, language),
            url=survey_url(inv.token),
            expires_at=inv.expires_at.astimezone(zone),
        )
        for inv in SurveyInvitation.objects.filter(
            customer=customer, used_at__isnull=True, expires_at__gt=now, survey__active=True
        )
        .select_related("survey")
        .order_by("expires_at")[:5]
    ]
    pseudonym = ""
    if member is not None:
        pseudonym = (
            LeaderboardEntry.objects.filter(member=member)
            .values_list("pseudonym", flat=True)
            .first()
            or ""
        )
    token = recipient_token(customer_id=customer.pk, channel=_preference_channel(customer))
    delete_request = DataRequest.objects.filter(
        customer=customer, kind=DataRequestKind.DELETE, status=DataRequestStatus.OPEN
    ).first()
    return PortalPage(
        customer=customer,
        language=language,
        currency=program.currency,
        balance=balance,
        expiring=[ExpiringView(e.points, e.expires_at.astimezone(zone)) for e in balance.expiring],
        tier=tier,
        tiers=sorted(Tier.objects.all(), key=lambda t: t.rank),
        tier_percent=tier_percent,
        vip=loyalty.VipPerks.of(program) if loyalty.customer_is_vip(customer.pk) else None,
        reward_progress=loyalty.member_reward_progress(customer=customer, now=now),
        rewards=rewards,
        redemptions=redemptions,
        badges=badges,
        challenges=challenges,
        referral=referral,
        surveys=surveys,
        preferences_url=reverse("messaging:preferences", args=[token]),
        vapid_public_key=load_env().vapid_public_key,
        push_subscribed=PushSubscription.objects.filter(customer=customer).exists(),
        pseudonym=pseudonym,
        leaderboard=loyalty.leaderboard(now=now, limit=LEADERBOARD_SIZE) if pseudonym else [],
        delete_requested_at=(
            delete_request.created_at.astimezone(zone) if delete_request else None
        ),
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def member_data_export(*, customer: Customer, now: datetime) -> dict[str, Any]:
    """Everything the shop holds about the member, as JSON-ready data (money as strings)."""
    member = Member.objects.select_related("tier").filter(customer=customer).first()
    balance = loyalty.member_balance(customer=customer, now=now)
    orders = [
        {
            "order_id": o.external_id,
            "placed_at": _iso(o.placed_at),
            "status": o.status,
            "total": str(o.total),
            "currency": o.currency,
        }
        for o in Order.objects.filter(customer=customer).order_by("placed_at")
    ]
    entries = (
        LedgerEntry.objects.filter(member=member).order_by("pk")
        if member
        else LedgerEntry.objects.none()
    )
    preference = Preference.objects.filter(customer=customer).first()
    return {
        "exported_at": now.isoformat(),
        "customer": {
            "customer_id": customer.external_id,
            "email": customer.email,
            "phone": customer.phone,
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "gender": customer.gender,
            "birth_date": customer.birth_date.isoformat() if customer.birth_date else None,
            "city": customer.city,
            "country": customer.country,
            "language": customer.language,
            "timezone": customer.timezone,
            "signup_at": _iso(customer.signup_at),
            "acquisition_source": customer.acquisition_source,
            "attributes": customer.attributes,
        },
        "orders": orders,
        "events": [
            {"type": e.type, "occurred_at": _iso(e.occurred_at), "properties": e.properties}
            for e in Event.objects.filter(customer=customer).order_by("occurred_at")
        ],
        "loyalty": {
            "member": member is not None,
            "tier": member.tier.name if member and member.tier else None,
            "points_available": balance.available,
            "points_pending": balance.pending,
            "points_owed": balance.debt,
            "ledger": [
                {
                    "kind": e.kind,
                    "points": e.points,
                    "balance_after": e.balance_after,
                    "occurred_at": _iso(e.occurred_at),
                    "reason": e.reason,
                }
                for e in entries
            ],
            "redemptions": [
                {
                    "reward": r.reward.name,
                    "code": r.code,
                    "status": r.status,
                    "created_at": _iso(r.created_at),
                }
                for r in Redemption.objects.filter(member=member).select_related("reward")
            ]
            if member
            else [],
        },
        "consents": [
            {
                "channel": c.channel,
                "granted": c.granted,
                "changed_at": _iso(c.changed_at),
                "source": c.source,
            }
            for c in Consent.objects.filter(customer=customer).order_by("channel")
        ],
        "preferences": {
            "topics_off": list(preference.topics_off),
            "frequency": preference.frequency,
            "paused_until": _iso(preference.paused_until),
        }
        if preference
        else None,
        "survey_responses": [
            {
                "survey": r.survey.slug,
                "score": r.score,
                "answers": r.answers,
                "comment": r.text,
                "answered_at": _iso(r.answered_at),
            }
            for r in SurveyResponse.objects.filter(customer=customer).select_related("survey")
        ],
        "data_requests": [
            {"kind": d.kind, "status": d.status, "created_at": _iso(d.created_at)}
            for d in DataRequest.objects.filter(customer=customer).order_by("created_at")
        ],
    }
