"""A customer's whole way, in Persian and in English: the invitation email through a real SMTP
server on loopback, the one-click score from the received message, the rest of the form, the
reward granted once, and the detractor's follow-up task."""

from __future__ import annotations

import re
from email.message import Message
from urllib.parse import urlsplit

import pytest
from django.core.mail import EmailMultiAlternatives, get_connection
from django.test import Client

from tests.feedback.conftest import SURVEY_POINTS, Mailbox, invite, survey_points
from vafa.customers.models import Customer
from vafa.feedback.invitations import invitation_message
from vafa.feedback.models import FollowUpTask, SurveyResponse, TaskKind
from vafa.loyalty.models import EarningRule

pytestmark = pytest.mark.django_db


def send(customer: Customer, box: Mailbox) -> Message:
    """What messaging will do later: render the invitation and send it by SMTP."""
    message = invitation_message(invitation=invite(customer))
    email = EmailMultiAlternatives(
        subject=message.subject, body=message.text, from_email="shop@example.test",
        to=[customer.email],
        connection=get_connection("django.core.mail.backends.smtp.EmailBackend",
                                  host=box.host, port=box.port, timeout=5),
    )
    email.attach_alternative(message.html, "text/html")
    email.send()
    assert len(box.messages) == 1
    return box.messages[0]


def text_part(received: Message) -> str:
    for part in received.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text part")


@pytest.mark.parametrize(("language", "greeting", "question", "six"), [
    ("fa", "سارا", "چقدر احتمال دارد ما را به دوستان یا آشنایانتان پیشنهاد کنید؟", "۶"),
    ("en", "Sara", "How likely are you to recommend us to a friend or colleague?", "6"),
])
def test_a_detractor_walks_from_email_to_reward_and_follow_up(
    smtp: Mailbox, survey_reward: EarningRule, language: str, greeting: str, question: str,
    six: str,
) -> None:
    first_name = "سارا" if language == "fa" else "Sara"
    customer = Customer.objects.create(external_id=f"C-{language}", email="s@example.test",
                                       first_name=first_name, language=language)
    received = send(customer, smtp)
    body = text_part(received)
    # The greeting's wording is the translators'; the name and the survey's question are ours.
    assert greeting in body and question in body
    # The score 6 line in the message carries its one-click link.
    link = re.search(rf"^{six}: (\S+?)\r?$", body, re.MULTILINE)
    assert link is not None, body
    url = urlsplit(link.group(1))
    assert url.query == "score=6"

    client = Client(enforce_csrf_checks=True)  # as a real browser: the form carries the token
    page = client.get(f"{url.path}?{url.query}")
    assert page.status_code == 200
    assert f'lang="{language}"' in page.content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert csrf is not None
    assert SurveyResponse.objects.get().score == 6
    assert survey_points(customer) == 0  # the reward comes with the completed survey

    comment = "ارسال خیلی دیر رسید" if language == "fa" else "Delivery was very late"
    done = client.post(url.path, {"reason": comment, "csrfmiddlewaretoken": csrf.group(1)})
    assert done.status_code == 200
    assert survey_points(customer) == SURVEY_POINTS

    # Opening the link again from the email: a clear page, no second reward.
    again = client.get(f"{url.path}?score=10")
    assert again.status_code == 410
    assert survey_points(customer) == SURVEY_POINTS

    task = FollowUpTask.objects.get()
    assert (task.kind, task.status, task.customer_id) == (TaskKind.RECOVERY, "open", customer.pk)
    assert task.notes == comment
    response = SurveyResponse.objects.get()
    assert response.language == language and response.channel == "email"
    assert response.completed_at is not None


def test_the_html_invitation_escapes_the_customers_name(smtp: Mailbox) -> None:
    customer = Customer.objects.create(external_id="X", email="x@example.test",
                                       first_name="<b>x</b>", language="en")
    received = send(customer, smtp)
    html = next(p for p in received.walk() if p.get_content_type() == "text/html")
    payload = html.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert "&lt;b&gt;x&lt;/b&gt;" in payload.decode() and "<b>x</b>" not in payload.decode()
