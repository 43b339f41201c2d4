"""Bounces and complaints reach the outbox through a real HTTP POST to anymail's Postmark
tracking webhook, in the payload shapes Postmark documents
(https://postmarkapp.com/developer/webhooks/bounce-webhook and .../spam-complaint-webhook).

The email itself goes out through anymail's Postmark backend to a local server speaking
Postmark's `POST /email`, so the `MessageID` in the webhook is the one the provider returned.
"""

from __future__ import annotations

import base64
import itertools
import json
from typing import Any

import pytest
from django.test import Client

from tests.messaging.conftest import T0, enqueue
from tests.messaging.fakes import FakeHttp, Request, json_reply
from vafa.customers.models import Channel, Customer
from vafa.messaging.models import (
    ChannelSettings,
    MessageKind,
    OutboxMessage,
    Status,
    Suppression,
)
from vafa.messaging.outbox import outbox_flush

pytestmark = pytest.mark.django_db

WEBHOOK = "/anymail/postmark/tracking/"
BASIC = "Basic " + base64.b64encode(b"postmark:hook-secret-123").decode()


@pytest.fixture
def postmark(
    http: FakeHttp, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> FakeHttp:
    """Email goes through Postmark (chosen in the admin), whose API is a local server."""
    settings.ROOT_URLCONF = "tests.messaging.webhook_urls"
    settings.ANYMAIL = {"WEBHOOK_SECRET": "postmark:hook-secret-123"}
    monkeypatch.setenv("VAFA_POSTMARK_SERVER_TOKEN", "pm-server-token-1")
    monkeypatch.setenv("VAFA_POSTMARK_API_URL", http.url + "/")
    ChannelSettings.objects.update_or_create(channel="email", defaults={"provider": "postmark"})
    ids = (f"00000000-0000-4000-8000-{n:012d}" for n in itertools.count(1))

    def answer(request: Request) -> tuple[int, dict[str, str], bytes]:
        return json_reply(200, {"To": request.json()["To"], "SubmittedAt": "2025-03-05T14:30:00Z",
                                "MessageID": next(ids), "ErrorCode": 0, "Message": "OK"})

    http.respond = answer
    return http


def post_event(payload: dict[str, Any], authorization: str = BASIC) -> int:
    response = Client().post(WEBHOOK, json.dumps(payload), content_type="application/json",
                             HTTP_AUTHORIZATION=authorization)
    return response.status_code


def hard_bounce(message: OutboxMessage) -> dict[str, Any]:
    """Postmark's bounce webhook body (fields as documented)."""
    return {
        "RecordType": "Bounce", "ID": 4323372036854775807, "Type": "HardBounce", "TypeCode": 1,
        "Name": "Hard bounce", "Tag": "", "MessageID": message.provider_message_id,
        "Metadata": {}, "ServerID": 23, "MessageStream": "outbound",
        "Description": "The server was unable to deliver your message (ex: unknown user, "
                       "mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": message.to_address, "From": "shop@shop.example",
        "BouncedAt": "2025-03-05T14:35:00Z", "DumpAvailable": True, "Inactive": True,
        "CanActivate": True, "Subject": message.subject, "Content": "", "Origin": "Recipient",
    }


def test_a_hard_bounce_posted_by_postmark_suppresses_the_address_for_email(
    postmark: FakeHttp, olivia: Customer, templates: object
) -> None:
    first = enqueue(olivia, kind=MessageKind.TRANSACTIONAL, source="flow:shipping")
    assert outbox_flush(now=T0).sent == 1
    first.refresh_from_db()
    assert first.provider == "postmark" and first.provider_message_id.startswith("00000000-")
    [sent] = postmark.requests
    assert sent.headers["x-postmark-server-token"] == "pm-server-token-1"

    assert post_event(hard_bounce(first)) == 200
    first.refresh_from_db()
    assert first.status == Status.BOUNCED
    assert [e.event for e in first.log.all()] == ["sent", "bounced"]
    suppression = Suppression.objects.get(channel=Channel.EMAIL, lifted_at=None)
    assert (suppression.address, suppression.reason) == ("olivia@example.ca", "hard_bounce")

    # The next email, even a transactional one, is never sent to the dead address; SMS is free.
    later = enqueue(olivia, kind=MessageKind.TRANSACTIONAL, source="flow:shipping", step="2")
    outbox_flush(now=T0)
    later.refresh_from_db()
    assert later.status == Status.SUPPRESSED and len(postmark.requests) == 1
    assert not Suppression.objects.filter(channel=Channel.SMS).exists()


def test_a_soft_bounce_suppresses_nothing(
    postmark: FakeHttp, olivia: Customer, templates: object
) -> None:
    first = enqueue(olivia, kind=MessageKind.TRANSACTIONAL, source="flow:shipping")
    outbox_flush(now=T0)
    first.refresh_from_db()
    soft = {**hard_bounce(first), "Type": "SoftBounce", "TypeCode": 4096, "Name": "Soft bounce",
            "Details": "smtp;452 4.2.2 Mailbox full", "Inactive": False}

    assert post_event(soft) == 200
    first.refresh_from_db()
    assert first.status == Status.SENT
    assert not Suppression.objects.exists()


def test_a_spam_complaint_stops_marketing_only(
    postmark: FakeHttp, zahra: Customer, templates: object
) -> None:
    message = enqueue(zahra)
    outbox_flush(now=T0)
    message.refresh_from_db()
    assert message.status == Status.SENT
    complaint = {
        "RecordType": "SpamComplaint", "ID": 42, "Type": "SpamComplaint", "TypeCode": 512,
        "Name": "Spam complaint", "Tag": "", "MessageID": message.provider_message_id,
        "Metadata": {}, "ServerID": 1234, "MessageStream": "outbound", "Description": "",
        "Details": "Test spam complaint details", "Email": "zahra@example.ir",
        "From": "shop@shop.example", "BouncedAt": "2025-03-05T14:40:00Z",
        "DumpAvailable": True, "Inactive": True, "CanActivate": False,
        "Subject": message.subject, "Content": "", "Origin": "Recipient",
    }
    assert post_event(complaint) == 200
    suppression = Suppression.objects.get(channel=Channel.EMAIL)
    assert suppression.reason == "complaint"
    marketing = enqueue(zahra, source="campaign:2")
    receipt = enqueue(zahra, kind=MessageKind.TRANSACTIONAL, source="flow:order_thank_you")
    outbox_flush(now=T0)
    marketing.refresh_from_db()
    receipt.refresh_from_db()
    assert (marketing.status, receipt.status) == (Status.SUPPRESSED, Status.SENT)


def test_a_webhook_without_the_shared_secret_is_refused_and_changes_nothing(
    postmark: FakeHttp, olivia: Customer, templates: object
) -> None:
    message = enqueue(olivia, kind=MessageKind.TRANSACTIONAL, source="flow:shipping")
    outbox_flush(now=T0)
    message.refresh_from_db()
    forged = "Basic " + base64.b64encode(b"postmark:guess").decode()
    assert post_event(hard_bounce(message), authorization=forged) == 400
    message.refresh_from_db()
    assert message.status == Status.SENT and not Suppression.objects.exists()
