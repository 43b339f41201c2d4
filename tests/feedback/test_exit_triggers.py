"""Unsubscribe and account deletion lead to one exit-survey invitation (point 4): picked up by
the periodic `survey_invitations_due`, or shown at once through `exit_survey_link`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from vafa.customers.models import Customer, Event
from vafa.feedback.models import SurveyInvitation, Trigger
from vafa.feedback.services import exit_survey_link, response_complete, survey_invitations_due
from vafa.messaging.models import SuppressionReason
from vafa.messaging.services import suppression_add

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, 10, tzinfo=UTC)


def exits(created: list[SurveyInvitation]) -> list[tuple[str, str]]:
    return sorted((i.customer.external_id, i.trigger) for i in created
                  if i.survey.slug == "exit")


def test_an_unsubscribe_and_a_deleted_account_each_get_the_exit_survey_once(
    sara: Customer, john: Customer
) -> None:
    suppression_add(channel="email", reason=SuppressionReason.UNSUBSCRIBED, customer=sara,
                    source="one-click", now=NOW - timedelta(days=1))
    Event.objects.create(customer=john, type="account_deleted",
                         occurred_at=NOW - timedelta(hours=3))
    assert exits(survey_invitations_due(now=NOW)) == [("C-JOHN", Trigger.DELETION),
                                                      ("C-SARA", Trigger.UNSUBSCRIBE)]
    # the next day's run (or a retried one) asks nobody again
    assert exits(survey_invitations_due(now=NOW + timedelta(days=1))) == []
    assert exits(survey_invitations_due(now=NOW + timedelta(days=9))) == []


def test_old_unsubscribes_and_bounces_do_not_trigger_it(sara: Customer, john: Customer) -> None:
    suppression_add(channel="email", reason=SuppressionReason.UNSUBSCRIBED, customer=sara,
                    source="one-click", now=NOW - timedelta(days=30))
    suppression_add(channel="email", reason=SuppressionReason.HARD_BOUNCE, customer=john,
                    source="provider", now=NOW - timedelta(days=1))
    Event.objects.create(customer=john, type="page_view", occurred_at=NOW - timedelta(hours=1))
    assert exits(survey_invitations_due(now=NOW)) == []


def test_the_link_shown_at_once_is_the_same_invitation_and_dies_once_answered(
    sara: Customer,
) -> None:
    now = timezone.now()  # the page judges expiry by the real clock
    url = exit_survey_link(customer=sara, trigger=Trigger.UNSUBSCRIBE, now=now)
    assert url is not None
    assert exit_survey_link(customer=sara, trigger=Trigger.UNSUBSCRIBE, now=now) == url
    page = Client().get(urlsplit(url).path)
    assert page.status_code == 200 and "مهم‌ترین دلیل رفتنتان چه بود؟" in page.content.decode()
    # the periodic run does not invite her a second time for the same trigger
    suppression_add(channel="email", reason=SuppressionReason.UNSUBSCRIBED, customer=sara,
                    source="one-click", now=now)
    assert exits(survey_invitations_due(now=now + timedelta(days=8))) == []
    invitation = SurveyInvitation.objects.get(customer=sara, survey__slug="exit")
    response_complete(invitation=invitation, data={"reason": "messages"}, now=now)
    assert exit_survey_link(customer=sara, trigger=Trigger.UNSUBSCRIBE, now=now) is None
