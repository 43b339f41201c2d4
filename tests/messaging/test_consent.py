"""Consent history, suppressions and the send-time check, through the services."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.messaging.conftest import T0, make_customer
from vafa.core.errors import ValidationError
from vafa.customers.models import Channel, Consent, Customer
from vafa.messaging.models import (
    AppendOnlyError,
    ConsentChange,
    MessageKind,
    Suppression,
    SuppressionReason,
)
from vafa.messaging.selectors import can_send
from vafa.messaging.services import (
    consent_set,
    preferences_update,
    suppression_add,
    suppression_lift,
)

MARKETING, TRANSACTIONAL = MessageKind.MARKETING, MessageKind.TRANSACTIONAL


def test_a_consent_change_updates_the_current_state_and_appends_history(zahra: Customer) -> None:
    later = T0 + timedelta(hours=1)
    change = consent_set(
        customer=zahra, channel=Channel.EMAIL, granted=False, source="checkout", now=later
    )
    assert change is not None and change.changed_at == later
    current = Consent.objects.get(customer=zahra, channel=Channel.EMAIL)
    assert (current.granted, current.source, current.changed_at) == (False, "checkout", later)
    history = ConsentChange.objects.filter(customer=zahra, channel=Channel.EMAIL)
    assert [c.granted for c in history.order_by("changed_at")] == [True, False]


def test_setting_the_same_consent_again_records_nothing(zahra: Customer) -> None:
    assert consent_set(
        customer=zahra, channel=Channel.EMAIL, granted=True, source="api", now=T0
    ) is None
    assert ConsentChange.objects.filter(customer=zahra, channel=Channel.EMAIL).count() == 1


def test_consent_history_cannot_be_edited_or_deleted(zahra: Customer) -> None:
    change = ConsentChange.objects.filter(customer=zahra).first()
    assert change is not None
    change.granted = False
    with pytest.raises(AppendOnlyError):
        change.save()
    with pytest.raises(AppendOnlyError):
        change.delete()


def test_marketing_needs_consent_but_transactional_does_not(policy: object) -> None:
    customer = Customer.objects.create(external_id="new", email="new@example.com")
    assert can_send(customer=customer, channel=Channel.EMAIL, kind=MARKETING, now=T0).reason == (
        "no_consent"
    )
    assert can_send(customer=customer, channel=Channel.EMAIL, kind=TRANSACTIONAL, now=T0).allowed


def test_nothing_goes_to_a_customer_without_an_address_on_the_channel(zahra: Customer) -> None:
    decision = can_send(customer=zahra, channel=Channel.TELEGRAM, kind=TRANSACTIONAL, now=T0)
    assert (decision.allowed, decision.reason) == (False, "no_address")


def test_an_unsubscribe_stops_marketing_but_not_order_updates(zahra: Customer) -> None:
    suppression_add(
        channel=Channel.EMAIL, reason=SuppressionReason.UNSUBSCRIBED, customer=zahra, now=T0
    )
    assert can_send(customer=zahra, channel=Channel.EMAIL, kind=MARKETING, now=T0).reason == (
        "suppressed:unsubscribed"
    )
    assert can_send(customer=zahra, channel=Channel.EMAIL, kind=TRANSACTIONAL, now=T0).allowed


@pytest.mark.parametrize(
    "reason", [SuppressionReason.HARD_BOUNCE, SuppressionReason.MANUAL, SuppressionReason.BLOCKED_BOT]
)
def test_a_bad_address_stops_even_transactional_messages(zahra: Customer, reason: str) -> None:
    suppression_add(channel=Channel.EMAIL, reason=reason, customer=zahra, now=T0)
    decision = can_send(customer=zahra, channel=Channel.EMAIL, kind=TRANSACTIONAL, now=T0)
    assert (decision.allowed, decision.reason) == (False, f"suppressed:{reason}")


def test_an_address_suppression_follows_the_address_to_a_reimported_customer(
    policy: object,
) -> None:
    suppression_add(
        channel=Channel.EMAIL, reason=SuppressionReason.COMPLAINT, address=" Old@Example.COM ",
        now=T0,
    )
    again = make_customer("reimported", email="old@example.com")
    assert can_send(customer=again, channel=Channel.EMAIL, kind=MARKETING, now=T0).reason == (
        "suppressed:complaint"
    )
    # A complaint is about marketing: the order confirmation still goes.
    assert can_send(customer=again, channel=Channel.EMAIL, kind=TRANSACTIONAL, now=T0).allowed


def test_adding_the_same_suppression_twice_keeps_one_row(zahra: Customer) -> None:
    first = suppression_add(channel=Channel.SMS, reason="manual", customer=zahra, now=T0)
    second = suppression_add(channel=Channel.SMS, reason="manual", customer=zahra, now=T0)
    assert first.pk == second.pk
    assert first.address == "+989121234567"  # the customer's phone, so it follows the number


def test_opting_in_again_lifts_an_unsubscribe_but_not_a_bounce(zahra: Customer) -> None:
    consent_set(customer=zahra, channel=Channel.EMAIL, granted=False, source="link", now=T0)
    suppression_add(channel=Channel.EMAIL, reason="unsubscribed", customer=zahra, now=T0)
    bounce = suppression_add(channel=Channel.EMAIL, reason="hard_bounce", customer=zahra, now=T0)
    consent_set(customer=zahra, channel=Channel.EMAIL, granted=True, source="preferences", now=T0)
    active = Suppression.objects.filter(customer=zahra, lifted_at__isnull=True)
    assert [s.reason for s in active] == ["hard_bounce"]
    suppression_lift(suppression=bounce, now=T0)
    assert can_send(customer=zahra, channel=Channel.EMAIL, kind=MARKETING, now=T0).allowed


def test_a_suppression_needs_a_customer_or_an_address(policy: object) -> None:
    with pytest.raises(ValidationError):
        suppression_add(channel=Channel.EMAIL, reason="manual", now=T0)
    with pytest.raises(ValidationError):
        suppression_add(channel=Channel.EMAIL, reason="because", address="a@b.c", now=T0)


def test_a_paused_customer_gets_no_marketing_until_the_pause_ends(zahra: Customer) -> None:
    preferences_update(customer=zahra, now=T0, source="test", pause=True)
    assert can_send(customer=zahra, channel=Channel.SMS, kind=MARKETING, now=T0).reason == "paused"
    assert can_send(customer=zahra, channel=Channel.SMS, kind=TRANSACTIONAL, now=T0).allowed
    after = T0 + timedelta(days=31)
    assert can_send(customer=zahra, channel=Channel.SMS, kind=MARKETING, now=after).allowed


def test_a_topic_switched_off_stops_only_that_topic(zahra: Customer) -> None:
    preferences_update(customer=zahra, now=T0, source="test", topics_off=["offers"])
    offers = can_send(customer=zahra, channel=Channel.EMAIL, kind=MARKETING, now=T0, topic="offers")
    news = can_send(customer=zahra, channel=Channel.EMAIL, kind=MARKETING, now=T0, topic="news")
    assert (offers.reason, news.allowed) == ("topic_off", True)
