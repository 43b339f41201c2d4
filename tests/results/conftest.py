"""Personas and data for the results pages: the dashboard's team, and a campaign that ran."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.dashboard.conftest import (
    STAFF_PASSWORD,
    analyst,
    make_member,
    marketer,
    staff,
    support_agent,
)
from vafa.customers.models import Customer, Order, OrderStatus
from vafa.messaging.campaigns.models import Campaign
from vafa.messaging.models import MessageKind, OutboxMessage, Status

__all__ = [
    "STAFF_PASSWORD",
    "analyst",
    "make_member",
    "make_sent_campaign",
    "marketer",
    "sent_campaign",
    "staff",
    "support_agent",
]


def make_sent_campaign() -> Campaign:
    """A campaign sent 20 days ago: variants A and B with 3 treated and 3 held-out customers
    each. A's treated all bought (100 each, a day later), B's nobody; one held-out customer of
    each variant bought 40 two days later. The first treated customer of each opened."""
    from vafa.insights.segments import segment_save

    at = timezone.now() - timedelta(days=20)
    segment = segment_save(name="All", definition={}, now=at)
    campaign = Campaign.objects.create(name="Spring sale", segment=segment)
    source = f"campaign:{campaign.pk}"
    serial = 0

    def one(variant: str, status: str, bought: str | None, when: datetime,
            opened: bool = False) -> None:
        nonlocal serial
        serial += 1
        who = Customer.objects.create(external_id=f"r{serial}", first_name=f"R{serial}")
        OutboxMessage.objects.create(
            customer=who, channel="email", kind=MessageKind.MARKETING, language="fa",
            source=source, variant=variant, dedupe_key=f"{source}:{who.pk}", status=status,
            due_at=at, sent_at=at if status == Status.SENT else None,
            opened_at=at + timedelta(hours=1) if opened else None, data={"variant": variant})
        if bought:
            Order.objects.create(external_id=f"o{serial}", customer=who, placed_at=when,
                                 status=OrderStatus.PAID, total=Decimal(bought), currency="IRR")

    for variant in ("A", "B"):
        for index in range(3):
            one(variant, Status.SENT, "100" if variant == "A" else None, at + timedelta(days=1),
                opened=index == 0)
        for index in range(3):
            one(variant, Status.HELD_OUT, "40" if index == 0 else None, at + timedelta(days=2))
    return campaign


@pytest.fixture
def sent_campaign(db: None) -> Campaign:
    return make_sent_campaign()
