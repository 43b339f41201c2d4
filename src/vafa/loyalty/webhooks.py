"""Sending the outgoing webhooks that `events.publish` wrote to the outbox.

Each delivery is a `POST` of JSON to the endpoint's URL with these headers:

- `X-Vafa-Event`: the event name; `X-Vafa-Delivery`: the delivery id (the same on retries, so the
  receiver can drop duplicates: delivery is at least once);
- `X-Vafa-Timestamp`: Unix seconds when this attempt was signed;
- `X-Vafa-Signature: sha256=<hex>`: HMAC-SHA256 with the endpoint's secret over
  `"<timestamp>.<raw body>"`. Signing the timestamp lets the receiver refuse old captured
  requests (a replay) by checking the timestamp is recent; `signature_for` is the reference.

A 2xx answer marks the delivery delivered. Anything else (another status, a timeout, a refused
connection) schedules a retry with exponential back-off: 1, 2, 4, 8 … minutes, at most 6 hours
apart, and after `MAX_ATTEMPTS` the delivery is marked failed (visible in the admin's delivery
log). Deliveries are claimed by pushing `next_attempt_at` a lease ahead in a short transaction
before sending, so two workers never send the same delivery at once and no database
transaction stays open during a slow HTTP call.

A switched-off endpoint (`active` false) is **paused**, not forgotten: its deliveries keep being
written (see `events.publish`) but are not claimed, attempted or counted as failures; once it is
switched on again the next run sends them, oldest first, with their attempts as they were.
Deleting the endpoint is how to stop its deliveries for good.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from vafa.loyalty.models import DeliveryStatus, WebhookDelivery

MAX_ATTEMPTS = 10
FIRST_RETRY = timedelta(minutes=1)
MAX_RETRY = timedelta(hours=6)
LEASE = timedelta(minutes=5)
TIMEOUT_SECONDS = 10.0
BATCH = 100
USER_AGENT = "Vafa-Webhooks/1"


def signature_for(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Vafa-Signature` value for a body sent at `timestamp`."""
    signed = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def delivery_body(delivery: WebhookDelivery) -> bytes:
    """The raw JSON body: the same bytes on every attempt."""
    document = {"id": delivery.pk, **delivery.payload}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def retry_delay(attempts: int) -> timedelta:
    """Back-off after `attempts` failed attempts: 1, 2, 4 … minutes, capped at 6 hours."""
    return min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), MAX_RETRY)


@dataclass(frozen=True)
class DeliveryRun:
    """What one `webhooks_deliver` run did."""

    attempted: int
    delivered: int
    retrying: int
    failed: int


def _claim(now: datetime) -> list[WebhookDelivery]:
    with transaction.atomic():
        due = WebhookDelivery.objects.select_related("endpoint").filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=now, endpoint__active=True
        )
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True, of=("self",))
        claimed = list(due.order_by("next_attempt_at", "id")[:BATCH])
        WebhookDelivery.objects.filter(pk__in=[d.pk for d in claimed]).update(
            next_attempt_at=now + LEASE
        )
    return claimed


def _send(delivery: WebhookDelivery, now: datetime) -> tuple[int | None, str]:
    """POST the delivery; return the HTTP status (None without an answer) and an error text."""
    body = delivery_body(delivery)
    timestamp = int(now.timestamp())
    request = urllib.request.Request(
        delivery.endpoint.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Vafa-Event": delivery.event,
            "X-Vafa-Delivery": str(delivery.pk),
            "X-Vafa-Timestamp": str(timestamp),
            "X-Vafa-Signature": signature_for(delivery.endpoint.secret, timestamp, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return int(response.status), ""
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, str(getattr(exc, "reason", exc))[:500]


def webhooks_deliver(*, now: datetime | None = None) -> DeliveryRun:
    """Send every pending delivery that is due at `now` (a periodic task runs this)."""
    now = now or timezone.now()
    delivered = retrying = failed = 0
    claimed = _claim(now)
    for delivery in claimed:
        status_code, error = _send(delivery, now)
        delivery.attempts += 1
        delivery.last_status_code = status_code
        if status_code is not None and 200 <= status_code < 300:
            delivery.status = DeliveryStatus.DELIVERED
            delivery.delivered_at = now
            delivery.next_attempt_at = None
            delivery.last_error = ""
            delivered += 1
        elif delivery.attempts >= MAX_ATTEMPTS:
            delivery.status = DeliveryStatus.FAILED
            delivery.next_attempt_at = None
            delivery.last_error = error
            failed += 1
        else:
            delivery.next_attempt_at = now + retry_delay(delivery.attempts)
            delivery.last_error = error
            retrying += 1
        delivery.save(
            update_fields=[
                "attempts", "last_status_code", "status", "delivered_at", "next_attempt_at",
                "last_error",
            ]
        )
    return DeliveryRun(
        attempted=len(claimed), delivered=delivered, retrying=retrying, failed=failed
    )
