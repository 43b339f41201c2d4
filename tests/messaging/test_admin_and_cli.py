"""The admin's template check and preview, provider events arriving through anymail's signal,
and the `vafa outbox` commands."""

from __future__ import annotations

from datetime import timedelta

import pytest
from anymail.signals import AnymailTrackingEvent, tracking
from django.test import Client
from typer.testing import CliRunner

from tests.messaging.conftest import T0, enqueue, make_template
from tests.messaging.fakes import SmtpServer
from vafa.commands.outbox import app
from vafa.customers.models import Channel, Customer
from vafa.messaging.admin import MessageTemplateForm
from vafa.messaging.models import MessageKind, OutboxMessage, Status, Suppression
from vafa.messaging.outbox import outbox_flush

runner = CliRunner()


def test_the_admin_refuses_to_save_a_template_that_does_not_render(policy: object) -> None:
    form = MessageTemplateForm(data={
        "key": "welcome", "channel": Channel.EMAIL, "language": "fa",
        "subject": "سلام {{ customer.first_name }}",
        "body_html": "<p>{{ customer.__class__ }}</p>", "body_text": "{{ custmer }}",
    })
    assert not form.is_valid()
    assert "body_html" in form.errors or "body_text" in form.errors
    good = MessageTemplateForm(data={
        "key": "welcome", "channel": Channel.EMAIL, "language": "fa",
        "subject": "سلام {{ customer.first_name }}",
        "body_html": "<p>{{ last_order.total }}</p>", "body_text": "{{ points }}",
    })
    assert good.is_valid(), good.errors


def test_the_admin_preview_renders_for_a_real_customer_or_shows_the_error(
    admin_client: Client, zahra: Customer
) -> None:
    template = make_template(channel=Channel.SMS, language="fa", body_text="سلام {{ customer.first_name }}")
    page = admin_client.get(f"/admin/messaging/messagetemplate/{template.pk}/preview/?customer=zahra")
    assert page.status_code == 200
    assert "سلام زهرا" in page.content.decode() and "UCS-2" in page.content.decode()
    broken = make_template(key="broken", channel=Channel.SMS, language="fa", body_text="{{ nope }}")
    page = admin_client.get(f"/admin/messaging/messagetemplate/{broken.pk}/preview/?customer=zahra")
    assert "nope" in page.content.decode() and "errornote" in page.content.decode()


def test_provider_events_mark_delivery_and_suppress_bounces_and_complaints(
    smtp: SmtpServer, zahra: Customer, olivia: Customer, templates: object
) -> None:
    delivered, bounced = enqueue(zahra), enqueue(olivia)
    outbox_flush(now=T0)
    for message in (delivered, bounced):
        message.refresh_from_db()

    def send(event_type: str, message: OutboxMessage, **extra: str) -> None:
        event = AnymailTrackingEvent(
            event_type=event_type, message_id=message.provider_message_id,
            recipient=message.to_address, timestamp=T0 + timedelta(minutes=5), **extra,
        )
        tracking.send(sender=object, event=event, esp_name="Test")

    send("delivered", delivered)
    send("bounced", bounced, description="550 mailbox full forever")
    send("complained", delivered)
    delivered.refresh_from_db()
    bounced.refresh_from_db()
    assert delivered.status == Status.DELIVERED and delivered.delivered_at is not None
    assert bounced.status == Status.BOUNCED
    assert set(Suppression.objects.values_list("address", "reason")) == {
        ("olivia@example.ca", "hard_bounce"), ("zahra@example.ir", "complaint"),
    }
    assert [e.event for e in delivered.log.all()] == ["sent", "delivered", "complained"]


def test_vafa_outbox_flush_sends_what_is_due_and_status_counts_it(
    smtp: SmtpServer, olivia: Customer, templates: object
) -> None:
    # Transactional, so the real clock's hour cannot put it in quiet hours.
    enqueue(olivia, kind=MessageKind.TRANSACTIONAL, source="flow:order_thank_you")
    result = runner.invoke(app, ["flush"])
    assert result.exit_code == 0, result.output
    assert "sent 1" in result.output
    assert len(smtp.sink.received) == 1
    again = runner.invoke(app, ["flush"])
    assert "nothing was due" in again.output
    status = runner.invoke(app, ["status"])
    assert status.exit_code == 0 and "sent\t1" in status.output


@pytest.mark.django_db
def test_vafa_outbox_status_on_an_empty_outbox() -> None:
    assert "empty" in runner.invoke(app, ["status"]).output
