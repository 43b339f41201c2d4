"""Outgoing webhooks and the events seam: written with the change (an outbox), signed, retried.

Deliveries go to a real HTTP server on 127.0.0.1 that checks the signature the way a shop would.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import transaction

from tests.loyalty.conftest import T0, make_order
from vafa.customers.models import Customer
from vafa.loyalty import events, services
from vafa.loyalty.models import (
    DeliveryStatus,
    EarningRule,
    Lot,
    ProgramSettings,
    Reward,
    RewardKind,
    Tier,
    WebhookDelivery,
    WebhookEndpoint,
)
from vafa.loyalty.webhooks import MAX_ATTEMPTS, retry_delay, signature_for, webhooks_deliver

SECRET = "s3cret-shared-with-the-shop"


@dataclass
class Receiver:
    """What the shop's endpoint answered and received; `statuses` are answered in turn."""

    url: str
    statuses: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            stamp = self.headers["X-Vafa-Timestamp"]
            expected = "sha256=" + hmac.new(
                SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256
            ).hexdigest()
            if not hmac.compare_digest(expected, self.headers["X-Vafa-Signature"]):
                state.bad_signatures += 1
                status = 401
            else:
                state.received.append(
                    {"event": self.headers["X-Vafa-Event"], "body": json.loads(body)}
                )
                status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks: Any) -> Any:
    """Run `transaction.on_commit` callbacks (the test's own transaction never commits)."""
    return django_capture_on_commit_callbacks


@pytest.fixture
def endpoint(receiver: Receiver, program: ProgramSettings) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(url=receiver.url, secret=SECRET)


def give(customer: Customer, points: int, key: str = "seed") -> None:
    services.points_adjust(
        customer=customer, points=points, reason="seed", actor="test", idempotency_key=key, now=T0
    )


def test_a_points_change_is_delivered_signed(
    receiver: Receiver, endpoint: WebhookEndpoint, zahra: Customer
) -> None:
    give(zahra, 40)

    run = webhooks_deliver(now=T0)

    assert run.delivered == 1 and receiver.bad_signatures == 0
    [hit] = receiver.received
    assert hit["event"] == "points.changed"
    assert hit["body"]["customer_id"] == "zahra"
    assert hit["body"]["data"]["balance"] == 40
    assert [e["points"] for e in hit["body"]["data"]["entries"]] == [40]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)


def test_a_500_is_retried_with_back_off_until_a_200(
    receiver: Receiver, endpoint: WebhookEndpoint, zahra: Customer
) -> None:
    receiver.statuses = [500]
    give(zahra, 40)

    first = webhooks_deliver(now=T0)
    too_soon = webhooks_deliver(now=T0 + retry_delay(1) - timedelta(seconds=1))
    retried = webhooks_deliver(now=T0 + retry_delay(1))

    assert (first.retrying, too_soon.attempted, retried.delivered) == (1, 0, 1)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 2
    assert len(receiver.received) == 2
    assert receiver.received[0]["body"] == receiver.received[1]["body"]  # the same delivery id


def test_back_off_doubles_and_gives_up_after_the_last_attempt(
    receiver: Receiver, endpoint: WebhookEndpoint, zahra: Customer
) -> None:
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3)] == [60, 120, 240]
    endpoint.url = "http://127.0.0.1:9/closed"  # discard port: connection refused
    endpoint.save()
    give(zahra, 40)
    WebhookDelivery.objects.update(attempts=MAX_ATTEMPTS - 1)

    run = webhooks_deliver(now=T0)

    delivery = WebhookDelivery.objects.get()
    assert run.failed == 1 and delivery.status == DeliveryStatus.FAILED
    assert delivery.last_status_code is None and delivery.last_error


def test_a_wrong_secret_fails_the_receivers_check(
    receiver: Receiver, endpoint: WebhookEndpoint, zahra: Customer
) -> None:
    WebhookEndpoint.objects.update(secret="not-the-shared-one")
    give(zahra, 40)

    webhooks_deliver(now=T0)

    assert receiver.bad_signatures == 1
    assert WebhookDelivery.objects.get().last_status_code == 401


def test_the_timestamp_is_part_of_the_signature() -> None:
    body = b'{"a":1}'

    assert signature_for(SECRET, 1000, body) != signature_for(SECRET, 1001, body)


def test_deliveries_are_written_in_the_changes_transaction(
    endpoint: WebhookEndpoint, zahra: Customer
) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        give(zahra, 40)
        assert WebhookDelivery.objects.count() == 1
        raise RuntimeError("the process dies before the commit")

    assert WebhookDelivery.objects.count() == 0


def test_a_replayed_write_publishes_nothing(endpoint: WebhookEndpoint, zahra: Customer) -> None:
    give(zahra, 40, key="k")
    give(zahra, 40, key="k")

    assert WebhookDelivery.objects.count() == 1


def test_an_endpoint_gets_only_the_events_it_asked_for(
    receiver: Receiver, endpoint: WebhookEndpoint, zahra: Customer
) -> None:
    WebhookEndpoint.objects.update(events=["reward.redeemed"])
    give(zahra, 100)
    reward = Reward.objects.create(
        name="Gift", kind=RewardKind.GIFT, points_cost=30, coupon_prefix="G-"
    )

    redemption = services.reward_redeem(
        customer=zahra, reward=reward, idempotency_key="r", now=T0
    )
    webhooks_deliver(now=T0)

    assert [r["event"] for r in receiver.received] == ["reward.redeemed"]
    assert receiver.received[0]["body"]["data"]["code"] == redemption.code


def test_a_tier_up_is_published_to_webhooks_and_subscribers(
    endpoint: WebhookEndpoint, zahra: Customer, base_rule: EarningRule, on_commit: Any
) -> None:
    Tier.objects.create(name="Gold", rank=0, min_points=100)
    seen: list[events.LoyaltyEvent] = []
    events.subscribe(seen.append)
    try:
        with on_commit(execute=True):
            services.order_sync_points(order=make_order(zahra, 2_000_000), now=T0)
            assert seen == []  # subscribers hear only after the commit
    finally:
        events.unsubscribe(seen.append)

    assert [e.name for e in seen] == ["points.changed", "tier.changed"]
    assert seen[1].data["direction"] == "up" and seen[1].data["to"]["name"] == "Gold"
    assert set(WebhookDelivery.objects.values_list("event", flat=True)) == {
        "points.changed", "tier.changed",
    }


def test_subscribers_hear_when_a_reward_becomes_affordable(
    program: ProgramSettings, zahra: Customer, on_commit: Any
) -> None:
    Reward.objects.create(name="Gift", kind=RewardKind.GIFT, points_cost=50)
    seen: list[events.LoyaltyEvent] = []
    events.subscribe(seen.append)
    try:
        with on_commit(execute=True):
            give(zahra, 30, key="a")
            give(zahra, 30, key="b")  # 60 ≥ 50: crosses
            give(zahra, 30, key="c")  # already across: silent
    finally:
        events.unsubscribe(seen.append)

    crossed = [e for e in seen if e.name == events.REWARD_AVAILABLE]
    assert len(crossed) == 1 and crossed[0].data["available"] == 60


def test_a_failing_subscriber_does_not_fail_the_write(
    program: ProgramSettings, zahra: Customer, on_commit: Any
) -> None:
    def broken(event: events.LoyaltyEvent) -> None:
        raise ValueError("bug in a subscriber")

    events.subscribe(broken)
    try:
        with on_commit(execute=True) as callbacks:
            give(zahra, 30)
        assert len(callbacks) == 1
    finally:
        events.unsubscribe(broken)

    assert zahra.loyalty.balance == 30


def test_members_hear_once_that_points_expire_soon(
    program: ProgramSettings, zahra: Customer, on_commit: Any
) -> None:
    give(zahra, 30)  # expires 12 months after T0
    expires = Lot.objects.get().expires_at
    assert expires is not None
    seen: list[events.LoyaltyEvent] = []
    events.subscribe(seen.append)
    try:
        with on_commit(execute=True):
            early = services.points_expiring_notify(now=expires - timedelta(days=15))
            due = services.points_expiring_notify(now=expires - timedelta(days=14))
            again = services.points_expiring_notify(now=expires - timedelta(days=13))
    finally:
        events.unsubscribe(seen.append)

    assert (early, due, again) == (0, 1, 0)
    assert [(e.name, e.data["points"]) for e in seen] == [("points.expiring", 30)]


def test_a_switched_off_endpoint_pauses_its_deliveries_and_resumes_when_switched_on(
    receiver: Receiver, endpoint: WebhookEndpoint, zahra: Customer
) -> None:
    give(zahra, 40, key="before")  # queued while the endpoint is on
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=False)
    give(zahra, 5, key="while-off")  # happens while it is off: still recorded

    paused = [webhooks_deliver(now=T0 + timedelta(hours=h)) for h in (0, 1, 48)]

    assert [run.attempted for run in paused] == [0, 0, 0]
    assert receiver.received == []
    assert list(WebhookDelivery.objects.values_list("status", "attempts")) == [
        ("pending", 0), ("pending", 0)
    ]

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=True)
    resumed = webhooks_deliver(now=T0 + timedelta(days=3))

    assert resumed.delivered == 2
    assert [hit["body"]["data"]["balance"] for hit in receiver.received] == [40, 45]


def test_subscribers_hear_once_when_maturing_points_make_a_reward_affordable(
    base_rule: EarningRule, zahra: Customer, omid: Customer, on_commit: Any
) -> None:
    Reward.objects.create(name="Gift", kind=RewardKind.GIFT, points_cost=50)
    give(zahra, 20)  # available at once
    give(omid, 80)  # already across: a maturing order tells him nothing new
    for customer in (zahra, omid):  # 40 points each, pending for the 14-day return window
        services.order_sync_points(order=make_order(customer, 400_000, placed_at=T0), now=T0)
    seen: list[events.LoyaltyEvent] = []
    events.subscribe(seen.append)
    try:
        with on_commit(execute=True):
            early = services.rewards_available_notify(now=T0 + timedelta(days=13))
            matured = services.rewards_available_notify(now=T0 + timedelta(days=14))
            again = services.rewards_available_notify(now=T0 + timedelta(days=15))
    finally:
        events.unsubscribe(seen.append)

    assert (early, matured, again) == (0, 1, 0)
    [event] = [e for e in seen if e.name == events.REWARD_AVAILABLE]
    assert event.customer_id == "zahra"
    assert event.data == {"available": 60, "cheapest_reward_points": 50, "matured_points": 40}


def test_a_write_that_announced_the_crossing_leaves_the_scan_nothing_to_repeat(
    base_rule: EarningRule, zahra: Customer, on_commit: Any
) -> None:
    Reward.objects.create(name="Gift", kind=RewardKind.GIFT, points_cost=50)
    services.order_sync_points(order=make_order(zahra, 400_000, placed_at=T0), now=T0)  # 40
    seen: list[events.LoyaltyEvent] = []
    events.subscribe(seen.append)
    try:
        with on_commit(execute=True):
            # The window is over but the scan has not run yet when 15 more points arrive.
            services.points_adjust(
                customer=zahra, points=15, reason="gift", actor="test", idempotency_key="late",
                now=T0 + timedelta(days=20),
            )
            told = services.rewards_available_notify(now=T0 + timedelta(days=21))
    finally:
        events.unsubscribe(seen.append)

    crossed = [e for e in seen if e.name == events.REWARD_AVAILABLE]
    assert told == 0 and [e.data["available"] for e in crossed] == [55]


def test_a_subscriber_that_names_its_events_hears_only_those(
    program: ProgramSettings, zahra: Customer, on_commit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "_subscribers", [])  # without other apps' subscribers
    monkeypatch.setattr(events, "_wanted", {})
    everything: list[events.LoyaltyEvent] = []
    expiring: list[events.LoyaltyEvent] = []
    events.subscribe(everything.append)
    events.subscribe(expiring.append, names=[events.POINTS_EXPIRING])
    try:
        assert events.has_subscribers(events.POINTS_EXPIRING)
        with on_commit(execute=True) as callbacks:
            give(zahra, 30)
        events.unsubscribe(everything.append)
        assert not events.has_subscribers(events.POINTS_CHANGED)
        with on_commit(execute=True) as quiet:
            give(zahra, 5, key="second")  # nobody listens to points.changed now
    finally:
        events.unsubscribe(everything.append)
        events.unsubscribe(expiring.append)

    assert [e.name for e in everything] == ["points.changed"] and expiring == []
    assert len(callbacks) == 1 and len(quiet) == 0
