"""Shared personas for the loyalty tests: one program, one shop rule, a few customers.

Time is frozen by passing `now=` everywhere; `T0` is the moment the stories start.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from itertools import count
from typing import Any

import pytest
from django.test import Client

from vafa.core.services import apikey_create
from vafa.customers.models import Customer, Order, OrderStatus
from vafa.insights.models import AnalysisRun, CustomerScore
from vafa.loyalty.models import EarningRule, ExpiryPolicy, ProgramSettings, RuleKind

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
_ids = count(1)


def make_order(
    customer: Customer,
    total: int | Decimal,
    *,
    placed_at: datetime = T0,
    status: str = OrderStatus.PAID,
    shipping: int | Decimal = 0,
    currency: str = "IRT",
) -> Order:
    return Order.objects.create(
        external_id=f"O{next(_ids)}",
        customer=customer,
        placed_at=placed_at,
        status=status,
        total=Decimal(total),
        shipping=Decimal(shipping),
        currency=currency,
    )


def set_status(order: Order, status: str, *, refunded: int | Decimal | None = None) -> Order:
    """What the shop's importer or webhook would do to an order (the customers app owns it)."""
    changes: dict[str, Any] = {"status": status}
    if refunded is not None:
        changes["refunded_amount"] = Decimal(refunded)
    Order.objects.filter(pk=order.pk).update(**changes)
    order.refresh_from_db()
    return order


def make_program(**overrides: Any) -> ProgramSettings:
    values: dict[str, Any] = {
        "currency": "IRT",
        "point_value": Decimal(100),
        "return_window_days": 14,
        "expiry_policy": ExpiryPolicy.ROLLING,
        "expiry_months": 12,
        "endowed_points": 200,
        "first_reward_points": 1000,
    }
    values.update(overrides)
    program, _ = ProgramSettings.objects.update_or_create(pk=1, defaults=values)
    return program


def make_base_rule(points: int = 1, per_amount: int = 10_000, **extra: Any) -> EarningRule:
    """The shop's everyday rule: 1 point per 10,000 Toman."""
    values: dict[str, Any] = {
        "name": "base",
        "kind": RuleKind.BASE_RATE,
        "active": True,
        "points": points,
        "per_amount": Decimal(per_amount),
        "currency": "IRT",
    }
    return EarningRule.objects.create(**{**values, **extra})


def make_score(customer: Customer, clv: int | None, *, vip: bool = False) -> CustomerScore:
    """What the analytics run stores for a customer (insights owns the table)."""
    run = AnalysisRun.objects.create()
    return CustomerScore.objects.create(
        customer=customer, run=run, rfm_segment="champions", r_score=5, f_score=5, m_score=5,
        loyalty_label="loyal", predicted_clv=None if clv is None else Decimal(clv), vip=vip,
    )


@pytest.fixture
def program(db: None) -> ProgramSettings:
    return make_program()


@pytest.fixture
def base_rule(program: ProgramSettings) -> EarningRule:
    return make_base_rule()


@pytest.fixture
def zahra(db: None) -> Customer:
    """The loyal customer of most stories."""
    return Customer.objects.create(external_id="zahra", first_name="زهرا", email="z@example.com")


@pytest.fixture
def omid(db: None) -> Customer:
    """A second customer, to show one member's writes never touch another's."""
    return Customer.objects.create(external_id="omid", first_name="امید")


class Api:
    """A client speaking to /api/v1/ with a key and, for writes, an Idempotency-Key."""

    def __init__(self, key: str) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {key}"}

    def post(self, path: str, body: Any = None, *, key: str | None = "k-1") -> Any:
        headers = dict(self.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        return self.client.post(
            f"/api/v1{path}", json.dumps(body or {}), content_type="application/json",
            headers=headers,
        )

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(f"/api/v1{path}", params, headers=self.headers)


@pytest.fixture
def api(program: ProgramSettings) -> Api:
    return Api(apikey_create(name="shop backend")[1])
