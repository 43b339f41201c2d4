"""The campaign admin: actions go through the services (and show their refusals), the SMS cost
of a Persian campaign is estimated from real recipients before sending, and the change page
shows the status counts."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.test import Client

from tests.campaigns.conftest import T0, make_campaign
from vafa.customers.models import Channel, Customer
from vafa.messaging.campaigns.models import Campaign, CampaignEvent, CampaignStatus
from vafa.messaging.campaigns.selectors import campaign_sms_estimate
from vafa.messaging.campaigns.services import campaign_enqueue, campaign_start
from vafa.messaging.services import consent_set

pytestmark = pytest.mark.usefixtures("templates")
CHANGELIST = "/admin/campaigns/campaign/"


def act(client: Client, action: str, campaign: Campaign) -> str:
    response = client.post(CHANGELIST, {"action": action, "_selected_action": [campaign.pk]},
                           follow=True)
    assert response.status_code == 200
    return response.content.decode()


def test_the_merchant_schedules_pauses_and_resumes_from_the_admin(
    admin_client: Client, zahra: Customer, olivia: Customer
) -> None:
    campaign = make_campaign()
    act(admin_client, "schedule", campaign)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SCHEDULED
    page = act(admin_client, "resume", campaign)  # not paused: refused with the reason
    assert "cannot be resumed" in page
    campaign = campaign_start(campaign=campaign, now=campaign.send_at or T0)
    campaign_enqueue(campaign=campaign, now=T0)
    act(admin_client, "pause", campaign)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.PAUSED
    events = CampaignEvent.objects.filter(campaign=campaign, event="paused")
    assert events.get().actor == "admin"
    change = admin_client.get(f"{CHANGELIST}{campaign.pk}/change/").content.decode()
    assert "paused: 2" in change
    act(admin_client, "resume", campaign)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENDING


def test_the_sms_cost_of_a_persian_campaign_is_estimated_from_its_recipients(
    admin_client: Client, zahra: Customer, olivia: Customer
) -> None:
    for customer in (zahra, olivia):
        consent_set(customer=customer, channel=Channel.EMAIL, granted=False, source="t", now=T0)
    campaign = make_campaign(channel_order="sms", control_percent=Decimal(0))
    estimate = campaign_sms_estimate(campaign, now=T0, price_per_segment=Decimal(120),
                                     currency="IRT")
    # Zahra's Persian SMS with the operators' opt-out keyword is UCS-2 (70 characters a
    # segment); Olivia's English one is GSM-7. One segment each here.
    assert estimate.encodings == {"ucs2": 1, "gsm7": 1}
    assert (estimate.recipients, estimate.total_segments, estimate.cost) == (2, 2, Decimal(240))
    page = admin_client.get(
        f"{CHANGELIST}{campaign.pk}/sms-cost/", {"price": "120", "currency": "IRT"}
    ).content.decode()
    assert re.search(r"240\s+IRT", page) and "ucs2: 1" in page


def test_the_merchant_writes_a_draft_with_two_variants_in_the_admin(
    admin_client: Client, olivia: Customer
) -> None:
    from vafa.insights.models import Segment

    segment = Segment.objects.create(name="everyone", definition={})
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 200
    form = {
        "name": "Nowruz", "segment": segment.pk, "channel_order": "email,sms", "topic": "offers",
        "control_percent": "10", "max_bounce_percent": "5", "max_complaint_percent": "0.3",
        "min_sample": "200",
        "variants-TOTAL_FORMS": "2", "variants-INITIAL_FORMS": "0",
        "variants-MIN_NUM_FORMS": "0", "variants-MAX_NUM_FORMS": "1000",
        "variants-0-name": "A", "variants-0-weight": "1", "variants-0-template_key": "news",
        "variants-1-name": "B", "variants-1-weight": "3", "variants-1-template_key": "news",
        "events-TOTAL_FORMS": "0", "events-INITIAL_FORMS": "0",
        "events-MIN_NUM_FORMS": "0", "events-MAX_NUM_FORMS": "1000",
    }
    response = admin_client.post(f"{CHANGELIST}add/", form)
    assert response.status_code == 302, response.content.decode()[-3000:]
    campaign = Campaign.objects.get(name="Nowruz")
    assert campaign.status == CampaignStatus.DRAFT and campaign.created_by == "admin"
    assert sorted(campaign.variants.values_list("name", "weight")) == [("A", 1), ("B", 3)]
