"""Welcome, order thank-you and shipping updates end to end: shop data arrives through the
REST API, the change feed hands it to the flows, the outbox delivers to a real SMTP server on
loopback (aiosmtpd), and the mailbox is read back."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from tests.flows.conftest import OLIVIA, ZAHRA, Api, order_body, run_flows
from tests.messaging.fakes import SmtpServer
from vafa.customers.models import Change, ChangeKind
from vafa.messaging.flows.models import FlowEnrollment
from vafa.messaging.models import MessageKind, OutboxMessage

pytestmark = pytest.mark.django_db


def html_and_text(message: EmailMessage) -> tuple[str, str]:
    html = message.get_body(preferencelist=("html",))
    text = message.get_body(preferencelist=("plain",))
    assert html is not None and text is not None
    return html.get_content(), text.get_content()


def by_subject(smtp: SmtpServer, address: str, word: str) -> list[EmailMessage]:
    return [m for m in smtp.sink.to(address) if word in str(m["Subject"])]


def test_an_api_order_sends_exactly_one_thank_you_with_its_lines_in_persian(
    api: Api, smtp: SmtpServer
) -> None:
    api.post("/customers", ZAHRA)
    body = order_body()
    api.post("/orders", body, idempotency_key="order-1")

    run_flows()

    [thanks] = by_subject(smtp, "zahra@example.ir", "O-1")
    html, text = html_and_text(thanks)
    assert thanks["Content-Language"] == "fa"
    assert '<html lang="fa" dir="rtl">' in html
    assert "زهرا" in html
    for product in ("چای سبز", "فنجان"):
        assert product in html and product in text
    assert "List-Unsubscribe" not in thanks  # transactional: no marketing unsubscribe header
    message = OutboxMessage.objects.get(source="flow:order-thank-you")
    assert (message.kind, message.occurrence) == (MessageKind.TRANSACTIONAL, "O-1")

    # The shop retries the same request, then sends the unchanged order again: nothing new.
    api.post("/orders", body, idempotency_key="order-1")
    api.post("/orders", body, idempotency_key="order-1-again")
    run_flows()
    run_flows()
    assert len(by_subject(smtp, "zahra@example.ir", "O-1")) == 1
    assert Change.objects.filter(kind=ChangeKind.ORDER_CREATED).count() == 1


def test_a_new_customer_gets_a_welcome_separate_from_the_order_email(
    api: Api, smtp: SmtpServer
) -> None:
    api.post("/customers", OLIVIA)
    api.post("/orders", order_body(customer_id="olivia"))

    run_flows()

    subjects = sorted(str(m["Subject"]) for m in smtp.sink.to("olivia@example.ca"))
    assert subjects == ["Thank you for your order (O-1)", "Welcome, Olivia!"]
    [welcome] = by_subject(smtp, "olivia@example.ca", "Welcome")
    assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"  # marketing
    assert '<html lang="en" dir="ltr">' in html_and_text(welcome)[0]


def test_status_shipped_then_delivered_sends_each_update_once(
    api: Api, smtp: SmtpServer
) -> None:
    api.post("/customers", OLIVIA)
    body = order_body(customer_id="olivia")
    api.post("/orders", body)
    run_flows()

    api.post("/orders", {**body, "status": "shipped"})
    run_flows()
    api.post("/orders", {**body, "status": "shipped"})  # the shop repeats itself
    api.post("/orders", {**body, "status": "paid"})  # a plain update does not undo shipping
    run_flows()
    [shipped] = by_subject(smtp, "olivia@example.ca", "on its way")
    assert "O-1" in html_and_text(shipped)[1]

    api.post("/orders", {**body, "status": "delivered"})
    run_flows()
    assert len(by_subject(smtp, "olivia@example.ca", "delivered")) == 1
    assert len(by_subject(smtp, "olivia@example.ca", "on its way")) == 1
    kinds = list(Change.objects.filter(order__external_id="O-1").values_list(
        "kind", "old_fulfillment", "new_fulfillment"))
    assert kinds == [
        (ChangeKind.ORDER_CREATED, "", ""),
        (ChangeKind.ORDER_STATUS_CHANGED, "", "shipped"),
        (ChangeKind.ORDER_STATUS_CHANGED, "shipped", "delivered"),
    ]


def test_a_cancelled_order_gets_no_thank_you(api: Api, smtp: SmtpServer) -> None:
    api.post("/customers", OLIVIA)
    api.post("/orders", order_body(customer_id="olivia", status="cancelled"))
    run_flows()
    assert by_subject(smtp, "olivia@example.ca", "order") == []
    assert not FlowEnrollment.objects.filter(flow__key="order-thank-you").exists()
