"""The one seam through which points events leave the loyalty club.

Services call `publish(event)` inside the transaction that made the change. It does two things:

1. **Webhook outbox**: for each active `WebhookEndpoint` that wants the event (the ones in
   `models.WebhookEvent`), it writes a `WebhookDelivery` row *in the same transaction*, so a
   delivery exists exactly when the change it reports was committed: never lost if the process
   dies after the commit, never sent for a change that was rolled back. `webhooks.webhooks_deliver`
   sends them later, signed and retried.
2. **In-process subscribers**: every callback registered with `subscribe(callback)` is called
   with the event *after the commit* (`transaction.on_commit`), so a subscriber never acts on a
   rolled-back change. The messaging app hooks in here (e.g. in its `AppConfig.ready`) to start
   its flows; a subscriber's exception is logged and does not reach the member's request.

Events (`LoyaltyEvent.name`):

- `points.changed`: a write booked entries (earn, redeem, expire, reverse, adjust, restore);
  data: balance, debt, the entries.
- `tier.changed`: data: from/to tier, `direction` ("up" or "down"). Messaging's "tier up" flow
  listens for direction "up".
- `reward.redeemed`: data: reward, coupon code, points, code expiry. This is how unique coupon
  codes reach the shop by webhook.
- `reward.available`: the member's available points crossed the cost of the cheapest reward open
  to everyone (only on writes that add points; points becoming available when the return window
  ends are not noticed). Subscribers only.
- `points.expiring`: from the periodic scan `services.points_expiring_notify` (default 14 days
  ahead), once per lot. Subscribers only.

Replays of an idempotent write publish nothing: only writes that book something publish.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction

from vafa.loyalty.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

logger = logging.getLogger(__name__)

POINTS_CHANGED = WebhookEvent.POINTS_CHANGED.value
TIER_CHANGED = WebhookEvent.TIER_CHANGED.value
REWARD_REDEEMED = WebhookEvent.REWARD_REDEEMED.value
REWARD_AVAILABLE = "reward.available"
POINTS_EXPIRING = "points.expiring"
WEBHOOK_EVENTS = frozenset(e.value for e in WebhookEvent)

Subscriber = Callable[["LoyaltyEvent"], None]
_subscribers: list[Subscriber] = []


@dataclass(frozen=True)
class LoyaltyEvent:
    """Something that happened to a member. `data` holds plain JSON values only."""

    name: str
    customer_id: str  # the shop's id (`Customer.external_id`)
    occurred_at: datetime
    data: dict[str, Any] = field(default_factory=dict)

    def as_payload(self) -> dict[str, Any]:
        return {
            "event": self.name,
            "customer_id": self.customer_id,
            "occurred_at": self.occurred_at.isoformat(),
            "data": self.data,
        }


def subscribe(callback: Subscriber) -> Subscriber:
    """Call `callback(event)` after the commit of every published event (usable as a
    decorator). Subscribing the same callback twice has no effect."""
    if callback not in _subscribers:
        _subscribers.append(callback)
    return callback


def unsubscribe(callback: Subscriber) -> None:
    if callback in _subscribers:
        _subscribers.remove(callback)


def _notify(event: LoyaltyEvent) -> None:
    for callback in list(_subscribers):
        try:
            callback(event)
        except Exception:  # a subscriber's bug must not fail the member's request
            logger.exception("loyalty event subscriber %r failed on %s", callback, event.name)


def publish(event: LoyaltyEvent) -> list[WebhookDelivery]:
    """Record `event` for the webhooks (now, in the caller's transaction) and hand it to the
    subscribers once that transaction commits. Returns the deliveries written."""
    deliveries: list[WebhookDelivery] = []
    if event.name in WEBHOOK_EVENTS:
        endpoints = [e for e in WebhookEndpoint.objects.filter(active=True) if e.wants(event.name)]
        deliveries = WebhookDelivery.objects.bulk_create(
            WebhookDelivery(
                endpoint=endpoint,
                event=event.name,
                payload=event.as_payload(),
                created_at=event.occurred_at,
                next_attempt_at=event.occurred_at,
            )
            for endpoint in endpoints
        )
    if _subscribers:
        transaction.on_commit(lambda: _notify(event))
    return deliveries


def has_subscribers() -> bool:
    """Whether anyone listens in-process (lets services skip work only subscribers need)."""
    return bool(_subscribers)
