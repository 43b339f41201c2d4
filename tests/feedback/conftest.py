"""Shared personas for the feedback tests: a Persian-speaking and an English-speaking customer,
a loyalty program whose survey rule gives 50 points, and a real SMTP server on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.db.models import Sum
from django.utils import timezone

from tests.loyalty.conftest import make_program
from vafa.customers.models import Customer
from vafa.feedback.models import Survey, SurveyInvitation
from vafa.feedback.selectors import survey_get
from vafa.feedback.services import invitation_create
from vafa.loyalty.models import EarningRule, EntryKind, LedgerEntry, RuleKind

SURVEY_POINTS = 50


@pytest.fixture
def survey_reward(db: None) -> EarningRule:
    make_program()
    return EarningRule.objects.create(
        name="survey", kind=RuleKind.SURVEY, active=True, points=SURVEY_POINTS
    )


@pytest.fixture
def sara(db: None) -> Customer:
    return Customer.objects.create(external_id="C-SARA", email="sara@example.test",
                                   first_name="سارا", language="fa")


@pytest.fixture
def john(db: None) -> Customer:
    return Customer.objects.create(external_id="C-JOHN", email="john@example.test",
                                   first_name="John", language="en")


def invite(customer: Customer, slug: str = "nps", *, now: datetime | None = None,
           channel: str = "email") -> SurveyInvitation:
    return invitation_create(customer=customer, survey=survey_get(slug=slug), channel=channel,
                             now=now)


def survey_points(customer: Customer) -> int:
    """Points the customer earned from survey bonuses."""
    total = LedgerEntry.objects.filter(
        member__customer=customer, kind=EntryKind.EARN, idempotency_key__startswith="bonus:survey:"
    ).aggregate(total=Sum("points"))["total"]
    return int(total or 0)


def ago(days: float) -> datetime:
    return timezone.now() - timedelta(days=days)


def custom_survey() -> Survey:
    return Survey.objects.create(
        slug="delivery-check", kind="custom", title={"en": "Delivery", "fa": "ارسال"},
        questions=[
            {"id": "speed", "type": "scale", "min": 1, "max": 5, "required": True,
             "label": {"en": "How fast was it?", "fa": "چقدر سریع بود؟"}},
            {"id": "box", "type": "choice", "required": False,
             "label": {"en": "Packaging", "fa": "بسته‌بندی"},
             "choices": [{"value": "good", "label": {"en": "Good", "fa": "خوب"}},
                         {"value": "bad", "label": {"en": "Bad", "fa": "بد"}}]},
            {"id": "note", "type": "text", "label": {"en": "Anything else?", "fa": "نکتهٔ دیگر؟"}},
        ],
    )


@dataclass
class Mailbox:
    """What a real SMTP server on loopback received."""

    host: str
    port: int
    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.original_content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    box = Mailbox("127.0.0.1", port)
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()
