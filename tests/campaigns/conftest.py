"""Campaign tests reuse the messaging personas and servers (Zahra in Tehran, Layla in Dubai,
Olivia in Toronto; a real SMTP server on loopback) and add a campaign builder."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.messaging.conftest import (  # noqa: F401  (fixtures)
    T0,
    layla,
    make_customer,
    make_template,
    messaging_setup,
    olivia,
    policy,
    smtp,
    templates,
    zahra,
)
from vafa.insights.models import Segment
from vafa.messaging.campaigns.models import Campaign, CampaignVariant


def make_campaign(
    *,
    definition: dict[str, Any] | None = None,
    variants: tuple[tuple[str, int, str], ...] = (("A", 1, "news"),),
    channel_order: str = "email",
    control_percent: Decimal | int | None = 0,
    **fields: Any,
) -> Campaign:
    """A draft to the segment `definition` (default: every customer) with `variants` given as
    (name, weight, template key)."""
    segment, _ = Segment.objects.get_or_create(
        name=f"segment {Segment.objects.count() + 1}", defaults={"definition": definition or {}}
    )
    campaign = Campaign.objects.create(
        name="Spring sale", segment=segment, channel_order=channel_order,
        control_percent=control_percent, created_at=T0, **fields,
    )
    for name, weight, key in variants:
        CampaignVariant.objects.create(campaign=campaign, name=name, weight=weight, template_key=key)
    return campaign
