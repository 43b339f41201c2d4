"""The "you are unsubscribed" page asks a person (not a mail client) why they left, through the
feedback app's exit survey, in the customer's language."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.test import Client

from tests.messaging.test_views import email_consent, unsubscribe_path
from vafa.customers.models import Customer
from vafa.feedback.models import Survey, SurveyInvitation

pytestmark = pytest.mark.django_db

LINK = re.compile(r'<a href="([^"]+)">[^<]*</a>\s*</p>\s*</section>')


def press_the_unsubscribe_button(customer: Customer) -> str:
    """Open the link from the email (a GET shows the page), then press its button."""
    client = Client()
    page = client.get(unsubscribe_path(customer)).content.decode()
    assert 'name="from_page" value="1"' in page
    response = client.post(
        unsubscribe_path(customer), {"List-Unsubscribe": "One-Click", "from_page": "1"}
    )
    assert response.status_code == 200 and "Location" not in response
    return response.content.decode()


@pytest.mark.parametrize(("persona", "lang", "direction"), [("zahra", "fa", "rtl"),
                                                           ("olivia", "en", "ltr")])
def test_a_person_who_unsubscribes_on_the_page_is_offered_the_exit_survey(
    persona: str, lang: str, direction: str, request: pytest.FixtureRequest
) -> None:
    customer: Customer = request.getfixturevalue(persona)
    body = press_the_unsubscribe_button(customer)
    assert f'lang="{lang}"' in body and f'dir="{direction}"' in body
    assert not email_consent(customer)
    invitation = SurveyInvitation.objects.get(customer=customer, survey__slug="exit")
    assert invitation.reference == "unsubscribe"
    found = LINK.search(body)
    assert found is not None, body
    survey = Client().get(urlsplit(found.group(1)).path)
    assert survey.status_code == 200
    assert f'lang="{lang}"' in survey.content.decode()


def test_a_mail_clients_one_click_post_gets_a_quick_200_and_uses_up_no_invitation(
    zahra: Customer,
) -> None:
    response = Client().post(unsubscribe_path(zahra), "List-Unsubscribe=One-Click",
                             content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200 and "Location" not in response
    assert not email_consent(zahra)
    # The feedback app asks this customer later by message; nobody reads this page.
    assert not SurveyInvitation.objects.filter(customer=zahra).exists()
    assert "exit-survey" not in response.content.decode()


def test_no_survey_is_offered_when_the_exit_survey_is_switched_off(olivia: Customer) -> None:
    Survey.objects.filter(slug="exit").update(active=False)
    body = press_the_unsubscribe_button(olivia)
    assert "exit-survey" not in body and not email_consent(olivia)


def test_a_customer_who_already_answered_is_not_asked_again(olivia: Customer) -> None:
    press_the_unsubscribe_button(olivia)
    SurveyInvitation.objects.filter(customer=olivia).update(used_at="2025-03-05T15:00:00Z")
    assert "exit-survey" not in press_the_unsubscribe_button(olivia)
