"""The one seam through which points events leave the loyalty club.

Services call `publish(event)` inside the transaction that made the change. It does two things:

1. **Webhook outbox**: for each `WebhookEndpoint` that wants the event (the ones in
   `models.WebhookEvent`), it writes a `WebhookDelivery` row *in the same transaction*, so a
   delivery exists exactly when the change it reports was committed: never lost if the process
   dies after the commit, never sent for a change that was rolled back. `webhooks.webhooks_deliver`
   sends them later, signed and retried. Switched-off endpoints get their rows too: they are
   paused, and receive everything they missed once switched on again.
2. **In-process subscribers**: every callback registered with `subscribe(callback)` is called
   with the event *after the commit* (`transaction.on_commit`), so a subscriber never acts on a
   rolled-back change. The messaging app hooks in here (e.g. in its `AppConfig.ready`) to start
   its flows; a subscriber's exception is logged and does not reach the member's request.
   A subscriber that names the events it wants (`subscribe(callback, names=[...])`) costs the
   other writes nothing; one without names runs after every write (`points.changed`).

Events (`LoyaltyEvent.name`):

- `points.changed`: a write booked entries (earn, redeem, expire, reverse, adjust, restore);
  data: balance, debt, the entries.
- `tier.changed`: data: from/to tier, `direction` ("up" or "down"). Messaging's "tier up" flow
  listens for direction "up".
- `reward.redeemed`: data: reward, coupon code, points, code expiry. This is how unique coupon
  codes reach the shop by webhook.
- `reward.available`: the member's available points crossed the cost of the cheapest reward open
  to everyone, either on a write that adds points or when pending points become available at
  the end of the return window (the periodic scan `services.rewards_available_notify`, once per
  crossing). Subscribers only.
- `points.expiring`: from the periodic scan `services.points_expiring_notify` (default 14 days
  ahead), once per lot. Subscribers only.

Replays of an idempotent write publish nothing: only writes that book something publish.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from vafa.core import batch
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
# The event names a subscriber asked for (absent: all of them), so that a write does not run a
# subscriber's code for events it ignores (`points.changed` comes with every write).
_wanted: dict[Subscriber, frozenset[str]] = {}


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


def subscribe(callback: Subscriber, *, names: Iterable[str] | None = None) -> Subscriber:
    """Call `callback(event)` after the commit of every published event, or only of the events
    named in `names` (cheaper: the others cost the writer nothing). Subscribing the same
    callback again replaces its `names`. Usable as a plain decorator."""
    if callback not in _subscribers:
        _subscribers.append(callback)
    if names is None:
        _wanted.pop(callback, None)
    else:
        _wanted[callback] = frozenset(names)
    return callback


def unsubscribe(callback: Subscriber) -> None:
    if callback in _subscribers:
        _subscribers.remove(callback)
    _wanted.pop(callback, None)


def _listeners(name: str) -> list[Subscriber]:
    return [c for c in _subscribers if c not in _wanted or name in _wanted[c]]


def _notify(event: LoyaltyEvent) -> None:
    for callback in _listeners(event.name):
        try:
            callback(event)
        except Exception:  # a subscriber's bug must not fail the member's request
            logger.exception("loyalty event subscriber %r failed on %s", callback, event.name)


def publish(
    event: LoyaltyEvent,
    *,
    webhooks: bool = True,
    endpoints: list[tuple[int, list[str]]] | None = None,
) -> list[WebhookDelivery]:
    """Record `event` for the webhooks (now, in the caller's transaction) and hand it to the
    subscribers once that transaction commits. Returns the deliveries written (none when a
    write batch holds them: they go out with the write's own statement, `vafa.core.batch`).

    `webhooks=False` is the caller saying it already knows there is no endpoint, and
    `endpoints` ((id, wanted event names) of every endpoint) that it already read them (the
    ledger reads either with the member's lots): both save the endpoints query."""
    deliveries: list[WebhookDelivery] = []
    if webhooks and event.name in WEBHOOK_EVENTS:
        if endpoints is None:
            endpoints = [(e.pk, e.events) for e in WebhookEndpoint.objects.all()]
        wanted = [pk for pk, names in endpoints if WebhookEndpoint.wanted_by(names, event.name)]
        rows = [
            WebhookDelivery(
                endpoint_id=pk,
                event=event.name,
                payload=event.as_payload(),
                created_at=event.occurred_at,
                next_attempt_at=event.occurred_at,
            )
            for pk in wanted
        ]
        held = batch.active()
        if held is not None:
            for row in rows:
                held.insert_instance(row)
        elif rows:
            deliveries = WebhookDelivery.objects.bulk_create(rows)
    if _listeners(event.name):
        batch.on_commit(lambda: _notify(event))  # transaction.on_commit, or after the batch
    return deliveries


def has_subscribers(name: str | None = None) -> bool:
    """Whether anyone listens in-process (to `name`, when given): lets services skip work only
    subscribers need."""
    return bool(_subscribers if name is None else _listeners(name))
