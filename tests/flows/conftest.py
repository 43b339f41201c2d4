"""Shared setup for the flow tests: the messaging test environment (test urlconf, no provider
but a real SMTP server on loopback), a permissive sending policy (no quiet hours, weekend or
cap, no control group unless a test sets one: changes are stamped with the real clock, so the
tests run the flows at the real `now`), an API client, and the default flows as installed by
the data migration.
"""

from __future__ import annotations

import json
from datetime import time
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from tests.messaging.conftest import messaging_setup, smtp  # noqa: F401 (fixtures)
from vafa.core.services import apikey_create
from vafa.customers.changes import changes_dispatch
from vafa.messaging.flows.services import AdvanceResult, flows_advance
from vafa.messaging.models import MessagingSettings
from vafa.messaging.outbox import FlushResult, outbox_flush


@pytest.fixture
def policy(db: None) -> MessagingSettings:
    return MessagingSettings.objects.create(
        pk=1, control_percent=Decimal(0), quiet_start=time(0), quiet_end=time(0),
        weekend_days="", cap_messages=0, track_links=False,
    )


class Api:
    """/api/v1/ with a key; every write carries an Idempotency-Key."""

    def __init__(self) -> None:
        self.client = Client()
        self.key = apikey_create(name="shop backend")[1]
        self.count = 0

    def post(self, path: str, body: Any, *, idempotency_key: str | None = None) -> Any:
        self.count += 1
        response = self.client.post(
            f"/api/v1{path}", json.dumps(body), content_type="application/json",
            headers={"Authorization": f"Bearer {self.key}",
                     "Idempotency-Key": idempotency_key or f"k-{self.count}"},
        )
        assert response.status_code in (200, 201), response.content
        return response


@pytest.fixture
def api(policy: MessagingSettings) -> Api:
    return Api()


def run_flows() -> tuple[AdvanceResult, FlushResult]:
    """What the worker does: dispatch the change feed, advance due steps, flush the outbox."""
    now = timezone.now()
    changes_dispatch(now=now)
    advanced = flows_advance(now=now)
    return advanced, outbox_flush(now=now)


ZAHRA = {"customer_id": "zahra", "first_name": "زهرا", "email": "zahra@example.ir",
         "phone": "+989121234567", "language": "fa", "timezone": "Asia/Tehran",
         "accepts_email": True, "accepts_sms": True}
OLIVIA = {"customer_id": "olivia", "first_name": "Olivia", "email": "olivia@example.ca",
          "language": "en", "timezone": "America/Toronto", "accepts_email": True}


def order_body(order_id: str = "O-1", customer_id: str = "zahra", status: str = "paid",
               **extra: Any) -> dict[str, Any]:
    return {
        "order_id": order_id, "customer_id": customer_id,
        "placed_at": timezone.now().isoformat(), "status": status, "total": "1250000",
        "currency": "IRT",
        "lines": [
            {"product_id": "P-TEA", "name": "چای سبز", "quantity": 2, "unit_price": "400000"},
            {"product_id": "P-CUP", "name": "فنجان", "quantity": 1, "unit_price": "450000"},
        ],
        **extra,
    }
