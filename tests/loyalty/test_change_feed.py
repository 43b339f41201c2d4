"""Orders reach the ledger through the shop's change feed: an order paid through the REST API
earns (pending) points, each partial refund reverses its share, a cancellation cancels what is
left, and replays of the same data book nothing more."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from tests.loyalty.conftest import make_base_rule, make_program
from vafa.core.services import apikey_create
from vafa.customers.changes import changes_dispatch
from vafa.customers.models import Customer
from vafa.loyalty.models import EarningRule, EntryKind, LedgerEntry, Member, RuleKind
from vafa.loyalty.selectors import member_balance

pytestmark = pytest.mark.django_db


class Shop:
    """The shop's backend talking to /api/v1/ with a key."""

    def __init__(self) -> None:
        self.client = Client()
        self.key = apikey_create(name="shop")[1]
        self.placed_at = timezone.now().isoformat()

    def order(self, status: str, key: str, **extra: Any) -> None:
        body = {"order_id": "O-1", "customer_id": "zahra", "placed_at": self.placed_at,
                "status": status, "total": "1000000", "currency": "IRT", **extra}
        response = self.client.post(
            "/api/v1/orders", json.dumps(body), content_type="application/json",
            headers={"Authorization": f"Bearer {self.key}", "Idempotency-Key": key},
        )
        assert response.status_code in (200, 201), response.content
        changes_dispatch(now=timezone.now())

    def customers(self, rows: list[dict[str, Any]], *, key: str) -> None:
        response = self.client.post(
            "/api/v1/customers", json.dumps(rows), content_type="application/json",
            headers={"Authorization": f"Bearer {self.key}", "Idempotency-Key": key},
        )
        assert response.status_code in (200, 201), response.content
        changes_dispatch(now=timezone.now())


def kinds() -> list[tuple[str, int]]:
    return list(LedgerEntry.objects.order_by("id").values_list("kind", "points"))


def test_an_api_order_earns_and_each_partial_refund_reverses_its_share() -> None:
    make_program()
    make_base_rule()  # 1 point per 10,000 Toman: the order of 1,000,000 earns 100
    Customer.objects.create(external_id="zahra", first_name="زهرا")
    shop = Shop()

    shop.order("paid", "k1")
    assert kinds() == [(EntryKind.EARN, 100)]
    balance = member_balance(customer=Customer.objects.get(), now=timezone.now())
    assert (balance.available, balance.pending) == (0, 100)  # inside the return window

    shop.order("paid", "k1")  # the shop retries the request
    shop.order("paid", "k2")  # and sends the same order again
    assert kinds() == [(EntryKind.EARN, 100)]

    shop.order("partially_refunded", "k3", refunded_amount="250000")
    # the status stays "partially_refunded" but the refunded amount grows: still a change
    shop.order("partially_refunded", "k4", refunded_amount="400000")
    assert kinds() == [(EntryKind.EARN, 100), (EntryKind.REVERSE, -25), (EntryKind.REVERSE, -15)]

    shop.order("cancelled", "k5")
    assert sum(points for _, points in kinds()) == 0
    assert member_balance(customer=Customer.objects.get(), now=timezone.now()).balance == 0


def test_a_customer_who_just_signed_up_gets_the_signup_bonus_once() -> None:
    make_program()
    EarningRule.objects.create(name="welcome", kind=RuleKind.SIGNUP, points=50, active=True)
    shop = Shop()
    now = timezone.now()
    long_ago = (now - timedelta(days=400)).isoformat()
    shop.customers([{"customer_id": "new", "signup_at": now.isoformat()},
                    {"customer_id": "unknown-signup"},
                    {"customer_id": "imported", "signup_at": long_ago}],
                   key="c1")
    earned = dict(LedgerEntry.objects.values_list("member__customer__external_id", "points"))
    assert earned == {"new": 50, "unknown-signup": 50}  # not the customer of long ago
    assert LedgerEntry.objects.get(member__customer__external_id="new").reason == "signup"
    shop.customers([{"customer_id": "new", "first_name": "Sara"}], key="c2")  # an update
    changes_dispatch(now=timezone.now())  # and the feed delivered again
    assert LedgerEntry.objects.count() == 2


def test_without_a_signup_rule_new_customers_get_no_member_row() -> None:
    make_program()
    Shop().customers([{"customer_id": "new", "signup_at": timezone.now().isoformat()}], key="c1")
    assert not Member.objects.exists()
