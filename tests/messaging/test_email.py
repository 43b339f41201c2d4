"""Email end to end: real messages through a real SMTP server on loopback (aiosmtpd), read back
from its mailbox."""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import EmailMessage
from urllib.parse import urlsplit

import pytest
from django.test import Client

from tests.messaging.conftest import SITE, T0, enqueue
from tests.messaging.fakes import SmtpServer
from vafa.customers.models import Channel, Customer
from vafa.messaging.models import MessageKind, MessageTemplate, OutboxMessage, Status, Suppression
from vafa.messaging.outbox import outbox_flush

pytestmark = pytest.mark.usefixtures("templates")


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def test_each_mailbox_gets_its_language_direction_headers_and_name(
    smtp: SmtpServer, zahra: Customer, layla: Customer, olivia: Customer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VAFA_UNSUBSCRIBE_MAILTO", "unsubscribe@shop.example")
    for customer in (zahra, layla, olivia):
        enqueue(customer)
    result = outbox_flush(now=T0)
    assert result.sent == 3
    expected = {
        "zahra@example.ir": ("fa", "rtl", "سلام زهرا"),
        "layla@example.ae": ("ar", "rtl", "مرحبا ليلى"),
        "olivia@example.ca": ("en", "ltr", "Hello Olivia"),
    }
    for address, (language, direction, greeting) in expected.items():
        [message] = smtp.sink.to(address)
        assert message["Content-Language"] == language
        assert message["Subject"] == greeting
        assert message["From"] == "shop@shop.example"
        text, html = parts(message)
        assert f'<html lang="{language}" dir="{direction}">' in html
        assert f'<body dir="{direction}"' in html
        assert greeting in html and greeting in text
        unsubscribe = str(message["List-Unsubscribe"]).strip()
        assert re.fullmatch(
            rf"<{SITE}/m/unsubscribe/[^>]+/>, <mailto:unsubscribe@shop\.example\?subject=[^>]+>",
            unsubscribe,
        )
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        https_url = unsubscribe.split(">")[0][1:]
        assert https_url in html and https_url in text  # the visible link, in both parts
        assert address not in unsubscribe  # the token is opaque: no address in the URL
    zahra_text, _ = parts(smtp.sink.to("zahra@example.ir")[0])
    assert "۰" in zahra_text  # her points in Persian digits


def test_a_transactional_email_carries_no_unsubscribe_headers_or_footer(
    smtp: SmtpServer, olivia: Customer
) -> None:
    enqueue(olivia, kind=MessageKind.TRANSACTIONAL, source="flow:order_thank_you")
    outbox_flush(now=T0)
    [message] = smtp.sink.to("olivia@example.ca")
    assert message["List-Unsubscribe"] is None and message["List-Unsubscribe-Post"] is None
    text, _ = parts(message)
    assert "/m/unsubscribe/" not in text


def test_links_are_tracked_and_the_click_goes_where_the_merchant_linked(
    smtp: SmtpServer, olivia: Customer, client: Client
) -> None:
    message = enqueue(olivia)
    outbox_flush(now=T0)
    _, html = parts(smtp.sink.to("olivia@example.ca")[0])
    tracked = re.search(rf'href="({SITE}/m/c/[^"]+)"', html)
    assert tracked is not None
    response = client.get(urlsplit(tracked.group(1)).path)
    assert response.status_code == 302 and response["Location"] == "https://shop.example/sale"
    message.refresh_from_db()
    assert message.clicked_at is not None and message.opened_at is not None


def test_an_unsubscribe_takes_effect_before_the_next_flush(
    smtp: SmtpServer, olivia: Customer, client: Client
) -> None:
    enqueue(olivia, step="1")
    second = enqueue(olivia, step="2", due_at=T0 + timedelta(days=1))
    outbox_flush(now=T0)
    [first_email] = smtp.sink.to("olivia@example.ca")
    url = str(first_email["List-Unsubscribe"]).strip().split(">")[0][1:]
    # What a mailbox provider does for RFC 8058: a POST with no cookies, no redirect followed.
    response = Client(enforce_csrf_checks=True).post(
        urlsplit(url).path, {"List-Unsubscribe": "One-Click"}
    )
    assert response.status_code == 200
    outbox_flush(now=T0 + timedelta(days=1, hours=1))
    second.refresh_from_db()
    assert (second.status, second.status_reason) == (Status.SUPPRESSED, "suppressed:unsubscribed")
    assert len(smtp.sink.to("olivia@example.ca")) == 1


def test_a_refused_recipient_is_a_hard_bounce_and_suppresses_the_address(
    smtp: SmtpServer, olivia: Customer
) -> None:
    smtp.sink.refuse.add("olivia@example.ca")
    message = enqueue(olivia)
    outbox_flush(now=T0)
    message.refresh_from_db()
    assert message.status == Status.BOUNCED and message.status_reason.startswith("SMTP 550")
    assert Suppression.objects.filter(
        channel=Channel.EMAIL, address="olivia@example.ca", reason="hard_bounce"
    ).exists()
    receipt = enqueue(olivia, kind=MessageKind.TRANSACTIONAL, source="flow:order_thank_you")
    outbox_flush(now=T0 + timedelta(minutes=1))
    receipt.refresh_from_db()
    assert receipt.status == Status.SUPPRESSED  # never again to an invalid address


def test_a_temporary_refusal_retries_with_back_off_then_sends(
    smtp: SmtpServer, olivia: Customer
) -> None:
    smtp.sink.fail_data_with = "451 4.3.0 try again later"
    message = enqueue(olivia)
    outbox_flush(now=T0)
    message.refresh_from_db()
    assert (message.status, message.attempts) == (Status.DEFERRED, 1)
    assert timedelta(seconds=60) <= message.due_at - T0 <= timedelta(seconds=67)
    assert outbox_flush(now=T0 + timedelta(seconds=30)).claimed == 0  # not due yet
    smtp.sink.fail_data_with = None
    outbox_flush(now=T0 + timedelta(minutes=2))
    message.refresh_from_db()
    assert (message.status, message.attempts) == (Status.SENT, 2)
    assert [row.event for row in message.log.all()] == ["retry", "sent"]
    assert len(smtp.sink.to("olivia@example.ca")) == 1


def test_a_message_that_keeps_failing_gives_up_after_the_attempt_limit(
    smtp: SmtpServer, olivia: Customer
) -> None:
    smtp.sink.fail_data_with = "451 4.3.0 try again later"
    message = enqueue(olivia)
    moment = T0
    for _ in range(6):
        outbox_flush(now=moment)
        moment += timedelta(days=1)
    message.refresh_from_db()
    assert (message.status, message.attempts) == (Status.FAILED, 6)
    assert message.status_reason.startswith("gave up: SMTP 451")


def test_email_waits_when_no_server_is_configured(olivia: Customer) -> None:
    message = enqueue(olivia)
    result = outbox_flush(now=T0)
    message.refresh_from_db()
    assert (result.retried, message.status) == (1, Status.DEFERRED)
    assert "not configured" in message.status_reason


def test_html_only_templates_get_a_plain_text_part(smtp: SmtpServer, olivia: Customer) -> None:
    MessageTemplate.objects.filter(key="news", language="en", channel="email").update(
        body_text="", body_html='<h1>Spring</h1><p>See <a href="https://shop.example/x">new</a>.</p>'
    )
    enqueue(olivia)
    outbox_flush(now=T0)
    text, _ = parts(smtp.sink.to("olivia@example.ca")[0])
    assert "Spring" in text and "new (" in text
    assert OutboxMessage.objects.get().status == Status.SENT
