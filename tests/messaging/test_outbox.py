"""The outbox: a message is created once, claimed once, marked sent only after the provider
accepted it, and survives interrupted and concurrent flushes without going twice."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from tests.messaging.conftest import T0, enqueue, make_customer
from tests.messaging.fakes import SmtpServer
from vafa.customers.models import Channel, Customer
from vafa.messaging.channels.base import Delivery, Recipient
from vafa.messaging.channels.email import EmailChannel
from vafa.messaging.conf import load_env
from vafa.messaging.measurement import control_bucket, holdout_key, is_held_out
from vafa.messaging.models import (
    DeliveryLog,
    MessageKind,
    MessagingSettings,
    OutboxMessage,
    Status,
)
from vafa.messaging.outbox import CLAIM_LEASE, outbox_claim, outbox_flush
from vafa.messaging.services import dedupe_key_for, message_enqueue, message_resend

pytestmark = pytest.mark.usefixtures("templates")


class Killed(BaseException):
    """What a SIGTERM or Ctrl-C looks like to the flush: not an `Exception`."""


class DiesAfter:
    """An email channel whose worker dies right after the provider accepted `n` messages
    (the worst moment: after the send, before the outcome is saved)."""

    name = "email"

    def __init__(self, inner: EmailChannel, n: int) -> None:
        self.inner, self.left = inner, n

    def open(self) -> None:
        self.inner.open()

    def close(self) -> None:
        self.inner.close()

    def send(self, message: OutboxMessage, recipient: Recipient) -> Delivery:
        if self.left == 0:
            raise Killed()
        self.left -= 1
        return self.inner.send(message, recipient)


def many_customers(count: int) -> list[Customer]:
    return [
        make_customer(f"c{i}", email=f"c{i}@example.com", language="en", timezone="UTC")
        for i in range(count)
    ]


def test_enqueueing_the_same_message_twice_creates_one_row(zahra: Customer) -> None:
    first = message_enqueue(
        customer=zahra, channel=Channel.EMAIL, kind=MessageKind.MARKETING,
        source="flow:welcome", step="1", occurrence="signup", template_key="news", now=T0,
    )
    again = message_enqueue(
        customer=zahra, channel=Channel.EMAIL, kind=MessageKind.MARKETING,
        source="flow:welcome", step="1", occurrence="signup", template_key="news",
        now=T0 + timedelta(hours=1),
    )
    assert first.created and not again.created
    assert again.message.pk == first.message.pk
    assert OutboxMessage.objects.count() == 1
    assert first.message.dedupe_key == f"{zahra.pk}:flow:welcome:1:signup"


def test_a_very_long_key_is_hashed_to_fit_and_stays_stable() -> None:
    key = dedupe_key_for(customer_id=7, source="campaign:x", occurrence="o" * 400)
    assert len(key) <= 255 and key == dedupe_key_for(
        customer_id=7, source="campaign:x", occurrence="o" * 400
    )


def test_a_flush_killed_midway_and_run_again_sends_each_message_exactly_once(
    smtp: SmtpServer, policy: MessagingSettings
) -> None:
    customers = many_customers(30)
    for customer in customers:
        enqueue(customer)
    with pytest.raises(Killed):
        outbox_flush(now=T0, batch_size=8, channels={"email": DiesAfter(EmailChannel(load_env()), 11)})
    assert len(smtp.sink.received) == 11
    # The flush gave back what it had claimed but not finished.
    assert OutboxMessage.objects.filter(status=Status.SENDING).count() == 0
    assert DeliveryLog.objects.filter(event="released").count() == 5  # 16 claimed − 11 sent
    result = outbox_flush(now=T0 + timedelta(seconds=5))
    assert result.sent == 19
    received = sorted(str(m["To"]) for m in smtp.sink.received)
    assert received == sorted(c.email for c in customers)  # 30 mails, each address once
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {Status.SENT}


def test_rows_claimed_by_a_worker_that_vanished_are_sent_once_its_lease_expires(
    smtp: SmtpServer, policy: MessagingSettings
) -> None:
    for customer in many_customers(6):
        enqueue(customer)
    assert len(outbox_claim(now=T0, size=4, token="dead-worker")) == 4  # then SIGKILL
    assert outbox_flush(now=T0 + timedelta(minutes=1)).sent == 2
    assert OutboxMessage.objects.filter(status=Status.SENDING).count() == 4
    later = T0 + CLAIM_LEASE + timedelta(minutes=1)
    assert outbox_flush(now=later).sent == 4
    assert len(smtp.sink.received) == 6
    assert len({str(m["To"]) for m in smtp.sink.received}) == 6


def test_a_worker_whose_lease_expired_cannot_overwrite_the_new_owner(
    smtp: SmtpServer, olivia: Customer
) -> None:
    message = enqueue(olivia)
    outbox_claim(now=T0, size=1, token="slow-worker")
    outbox_flush(now=T0 + CLAIM_LEASE + timedelta(seconds=1))  # takes the row over and sends
    updated = OutboxMessage.objects.filter(pk=message.pk, claim_token="slow-worker").update(
        status=Status.FAILED
    )
    assert updated == 0
    message.refresh_from_db()
    assert message.status == Status.SENT


def test_a_flush_honours_its_limit_and_leaves_the_rest_queued(
    smtp: SmtpServer, policy: MessagingSettings
) -> None:
    for customer in many_customers(5):
        enqueue(customer)
    assert outbox_flush(now=T0, limit=2).sent == 2
    assert OutboxMessage.objects.filter(status=Status.QUEUED).count() == 3


def test_a_message_due_later_waits(smtp: SmtpServer, olivia: Customer) -> None:
    message = enqueue(olivia, due_at=T0 + timedelta(hours=2))
    assert outbox_flush(now=T0).claimed == 0
    assert outbox_flush(now=T0 + timedelta(hours=2)).sent == 1
    message.refresh_from_db()
    assert message.sent_at is not None and message.sent_at >= T0 + timedelta(hours=2)


def test_an_expired_message_is_dropped_not_sent(smtp: SmtpServer, olivia: Customer) -> None:
    message = enqueue(olivia, expires_at=T0 + timedelta(hours=1))
    outbox_flush(now=T0 + timedelta(hours=2))
    message.refresh_from_db()
    assert (message.status, message.status_reason) == (Status.DROPPED, "expired")
    assert smtp.sink.received == []


def test_a_failed_message_can_be_sent_again_but_a_sent_one_cannot(
    smtp: SmtpServer, olivia: Customer
) -> None:
    smtp.sink.refuse.add("olivia@example.ca")
    message = enqueue(olivia, kind=MessageKind.TRANSACTIONAL, source="flow:order_thank_you")
    outbox_flush(now=T0)
    message.refresh_from_db()
    assert message.status == Status.BOUNCED
    smtp.sink.refuse.clear()
    from vafa.messaging.models import Suppression

    Suppression.objects.update(lifted_at=T0)  # the merchant fixed the address
    message_resend(message=message, now=T0 + timedelta(minutes=5))
    outbox_flush(now=T0 + timedelta(minutes=5))
    message.refresh_from_db()
    assert message.status == Status.SENT
    from vafa.core.errors import ValidationError

    with pytest.raises(ValidationError):
        message_resend(message=message, now=T0 + timedelta(minutes=6))
    assert len(smtp.sink.received) == 1


def test_held_out_customers_are_logged_as_would_have_sent_and_never_sent(
    smtp: SmtpServer, policy: MessagingSettings
) -> None:
    customers = many_customers(40)
    for customer in customers:
        enqueue(customer, control_percent=Decimal(25), source="campaign:spring")
    key = holdout_key(load_env().holdout_key)
    held = {
        c.pk for c in customers
        if is_held_out(customer_id=c.pk, salt="campaign:spring", percent=25, key=key)
    }
    assert 0 < len(held) < 40
    rows = OutboxMessage.objects.filter(status=Status.HELD_OUT)
    assert set(rows.values_list("customer_id", flat=True)) == held
    assert rows.first() is not None and "would have sent" in rows.first().status_reason  # type: ignore[union-attr]
    outbox_flush(now=T0)
    assert len(smtp.sink.received) == 40 - len(held)
    transactional = enqueue(customers[0], kind=MessageKind.TRANSACTIONAL, source="campaign:spring",
                            step="receipt", control_percent=Decimal(100))
    assert transactional.status == Status.QUEUED  # transactional messages are never held out


def test_the_control_bucket_is_stable_keyed_and_independent_per_flow() -> None:
    key = b"k" * 32
    assert control_bucket(customer_id=42, salt="flow:a", key=key) == control_bucket(
        customer_id=42, salt="flow:a", key=key
    )
    buckets = [control_bucket(customer_id=i, salt="flow:a", key=key) for i in range(20_000)]
    assert all(0 <= b < 10_000 for b in buckets)
    share = sum(b < 1_000 for b in buckets) / len(buckets)
    assert abs(share - 0.10) < 0.01  # binomial sd ≈ 0.0021 at n = 20,000: ±4.7 sd
    other_flow = [control_bucket(customer_id=i, salt="flow:b", key=key) for i in range(20_000)]
    both = sum(a < 1_000 and b < 1_000 for a, b in zip(buckets, other_flow, strict=True))
    assert abs(both / 20_000 - 0.01) < 0.004  # independent: 10% × 10%
    other_key = [control_bucket(customer_id=i, salt="flow:a", key=b"x" * 32) for i in range(50)]
    assert other_key != buckets[:50]


@pytest.mark.django_db(transaction=True)
def test_parallel_flushes_on_postgresql_send_each_message_once(smtp: SmtpServer) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks with SKIP LOCKED need PostgreSQL (the PostgreSQL pass runs this)")
    customers = many_customers(120)
    for customer in customers:
        enqueue(customer)
    barrier = threading.Barrier(3)
    results: list[Any] = []

    def work() -> None:
        try:
            barrier.wait()
            results.append(outbox_flush(now=T0, batch_size=10))
        except BaseException as exc:
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(not isinstance(r, BaseException) for r in results), results
    assert sum(r.sent for r in results) == 120
    assert sum(r.sent > 0 for r in results) >= 2  # the work was really shared
    addresses = [str(m["To"]) for m in smtp.sink.received]
    assert len(addresses) == 120 and len(set(addresses)) == 120


class Exploding:
    """A channel with a bug: its error text carries a secret, as a URL with a key would."""

    name = "email"

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def send(self, message: OutboxMessage, recipient: Recipient) -> Delivery:
        raise RuntimeError("boom at https://api.example/v1/super-secret-key-42/send")


def test_an_unexpected_error_is_retried_and_logged_without_secrets(
    olivia: Customer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("VAFA_KAVENEGAR_API_KEY", "super-secret-key-42")
    message = enqueue(olivia)
    result = outbox_flush(now=T0, channels={"email": Exploding()})
    message.refresh_from_db()
    assert (result.retried, message.status) == (1, Status.DEFERRED)
    assert "RuntimeError" in message.status_reason
    assert "boom at" in caplog.text and "super-secret-key-42" not in caplog.text
