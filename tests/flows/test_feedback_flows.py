"""Survey invitations sent through messaging (the invitation's own one-click links, in the
customer's language), and closing the loop: an apology to a detractor, a review/referral ask to
a promoter."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.messaging.fakes import SmtpServer
from vafa.customers.models import Channel, Customer, Order, OrderStatus
from vafa.feedback.links import survey_url
from vafa.feedback.models import Survey, SurveyInvitation
from vafa.feedback.services import invitation_create, response_score_record
from vafa.messaging.flows.models import Flow
from vafa.messaging.flows.services import flows_advance
from vafa.messaging.flows.triggers import scan_follow_ups, scan_surveys
from vafa.messaging.models import MessagingSettings, OutboxMessage
from vafa.messaging.outbox import outbox_flush
from vafa.messaging.services import consent_set

pytestmark = pytest.mark.django_db


def buyer(external_id: str, language: str) -> Customer:
    person = Customer.objects.create(
        external_id=external_id, email=f"{external_id}@example.com", language=language,
        first_name=external_id.title(), timezone="Asia/Tehran",
    )
    consent_set(customer=person, channel=Channel.EMAIL, granted=True, source="test",
                now=timezone.now())
    return person


def test_due_survey_invitations_go_out_with_their_one_click_links(
    policy: MessagingSettings, smtp: SmtpServer
) -> None:
    now = timezone.now()
    Flow.objects.filter(key="survey-invitation").update(enabled=True)
    person = buyer("sara", "fa")
    Order.objects.create(external_id="S1", customer=person, placed_at=now - timedelta(days=6),
                         status=OrderStatus.PAID, total=Decimal(10), currency="IRT")

    assert scan_surveys(now=now) == 1
    assert scan_surveys(now=now) == 0  # nothing new is due
    flows_advance(now=now)
    outbox_flush(now=now)

    invitation = SurveyInvitation.objects.get(customer=person)
    [mail] = smtp.sink.to("sara@example.com")
    html = mail.get_body(preferencelist=("html",))
    assert html is not None
    content = html.get_content()
    for score in range(1, 6):  # one signed link per CSAT score, inside the email
        assert f'href="{survey_url(invitation.token, score=score)}"' in content
    assert "&lt;a" not in content  # the invitation's links are links, not escaped text
    assert '<html lang="fa" dir="rtl">' in content


def test_a_detractor_gets_an_apology_and_a_promoter_an_ask(policy: MessagingSettings) -> None:
    now = timezone.now()
    Flow.objects.filter(key__in=["apology", "promoter-ask"]).update(enabled=True)
    nps = Survey.objects.get(slug="nps")
    unhappy, happy = buyer("unhappy", "en"), buyer("happy", "ar")
    for person, score in ((unhappy, 3), (happy, 10)):
        invitation = invitation_create(customer=person, survey=nps, now=now)
        response_score_record(invitation=invitation, score=score, now=now)

    assert scan_follow_ups(now=now) == 2
    assert scan_follow_ups(now=now) == 0
    flows_advance(now=now)
    sent = dict(OutboxMessage.objects.values_list("customer__external_id", "source"))
    assert sent == {"unhappy": "flow:apology", "happy": "flow:promoter-ask"}
    assert OutboxMessage.objects.get(customer=happy).language == "ar"
