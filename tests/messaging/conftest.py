"""Shared personas and servers for the messaging tests.

Three customers in three time zones (Zahra in Tehran writing Persian, Layla in Dubai writing
Arabic, Olivia in Toronto writing English), each with email and SMS consent. Time is frozen by
passing `now=`: at `T0` (a Wednesday, 14:30 UTC) it is 18:00 in Tehran, 18:30 in Dubai and
09:30 in Toronto, outside everyone's quiet hours. The messaging URLs are mounted by a test
urlconf, and providers are real servers on loopback (`fakes.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tests.messaging import fakes
from vafa.customers.models import Channel, Customer
from vafa.messaging.models import MessageKind, MessageTemplate, MessagingSettings, OutboxMessage
from vafa.messaging.services import consent_set, message_enqueue

T0 = datetime(2025, 3, 5, 14, 30, tzinfo=UTC)
SITE = "https://shop.example"
PROVIDER_VARS = (
    "VAFA_SMTP_URL", "VAFA_EMAIL_BACKEND", "VAFA_EMAIL_FROM", "VAFA_UNSUBSCRIBE_MAILTO",
    "VAFA_SMS_PROVIDER", "VAFA_KAVENEGAR_API_KEY", "VAFA_KAVENEGAR_SENDER",
    "VAFA_KAVENEGAR_BASE_URL", "VAFA_TWILIO_ACCOUNT_SID", "VAFA_TWILIO_AUTH_TOKEN",
    "VAFA_TWILIO_FROM", "VAFA_TWILIO_BASE_URL", "VAFA_SMS_INBOUND_SECRET",
    "VAFA_TELEGRAM_BOT_TOKEN", "VAFA_TELEGRAM_BOT_USERNAME", "VAFA_TELEGRAM_BASE_URL",
    "VAFA_TELEGRAM_WEBHOOK_SECRET", "VAFA_VAPID_PRIVATE_KEY", "VAFA_VAPID_PUBLIC_KEY",
    "VAFA_VAPID_SUBJECT", "VAFA_HOLDOUT_KEY", "VAFA_TELEGRAM_RATE", "VAFA_SMS_RATE",
    "VAFA_EMAIL_RATE", "VAFA_PUSH_RATE",
)


@pytest.fixture(autouse=True)
def messaging_setup(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mount the messaging URLs and start from an environment without any provider."""
    settings.ROOT_URLCONF = "tests.messaging.urls"
    for name in PROVIDER_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VAFA_SITE_URL", SITE)
    monkeypatch.setenv("VAFA_EMAIL_FROM", "shop@shop.example")


@pytest.fixture
def policy(db: None) -> MessagingSettings:
    """The shop's policy: 22:00–09:00 quiet, 3 marketing messages per 7 days, no control
    group (tests that measure set their own)."""
    return MessagingSettings.objects.create(pk=1, control_percent=Decimal(0), weekend_days="5")


def make_customer(external_id: str, **fields: Any) -> Customer:
    customer = Customer.objects.create(external_id=external_id, **fields)
    for channel in (Channel.EMAIL, Channel.SMS):
        consent_set(customer=customer, channel=channel, granted=True, source="test", now=T0)
    return customer


@pytest.fixture
def zahra(policy: MessagingSettings) -> Customer:
    return make_customer(
        "zahra", first_name="زهرا", last_name="احمدی", email="zahra@example.ir",
        phone="+989121234567", language="fa", timezone="Asia/Tehran",
    )


@pytest.fixture
def layla(policy: MessagingSettings) -> Customer:
    return make_customer(
        "layla", first_name="ليلى", email="layla@example.ae", phone="+971501234567",
        language="ar", timezone="Asia/Dubai",
    )


@pytest.fixture
def olivia(policy: MessagingSettings) -> Customer:
    return make_customer(
        "olivia", first_name="Olivia", email="olivia@example.ca", phone="+14165550123",
        language="en", timezone="America/Toronto",
    )


def make_template(
    key: str = "news", channel: str = Channel.EMAIL, language: str = "en", **parts: str
) -> MessageTemplate:
    defaults = {
        "subject": "Hello {{ customer.first_name }}",
        "body_html": "<p>Hi {{ customer.first_name }}, you have {{ points }} points.</p>",
        "body_text": "Hi {{ customer.first_name }}, you have {{ points }} points.",
    }
    return MessageTemplate.objects.create(
        key=key, channel=channel, language=language, **{**defaults, **parts}
    )


@pytest.fixture
def templates(policy: MessagingSettings) -> dict[str, MessageTemplate]:
    """The `news` email and SMS in fa, ar and en."""
    made: dict[str, MessageTemplate] = {}
    greetings = {"fa": "سلام", "ar": "مرحبا", "en": "Hello"}
    for language, hello in greetings.items():
        made[f"email-{language}"] = make_template(
            language=language,
            subject=f"{hello} {{{{ customer.first_name }}}}",
            body_html=f"<p>{hello} {{{{ customer.first_name }}}}، {{{{ points }}}}</p>"
            '<p><a href="https://shop.example/sale">sale</a></p>',
            body_text=f"{hello} {{{{ customer.first_name }}}} {{{{ points }}}}",
        )
        made[f"sms-{language}"] = make_template(
            channel=Channel.SMS, language=language, subject="", body_html="",
            body_text=f"{hello} {{{{ customer.first_name }}}}",
        )
    return made


def enqueue(
    customer: Customer,
    *,
    channel: str = Channel.EMAIL,
    kind: str = MessageKind.MARKETING,
    source: str = "campaign:1",
    step: str = "",
    now: datetime = T0,
    **options: Any,
) -> OutboxMessage:
    return message_enqueue(
        customer=customer, channel=channel, kind=kind, source=source, step=step,
        template_key=options.pop("template_key", "news"), now=now, **options,
    ).message


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[fakes.SmtpServer]:
    """A real SMTP server on loopback, configured through `VAFA_SMTP_URL`."""
    with fakes.smtp_server() as server:
        monkeypatch.setenv("VAFA_SMTP_URL", server.url)
        yield server


@pytest.fixture
def http() -> Iterator[fakes.FakeHttp]:
    with fakes.http_server() as server:
        yield server
