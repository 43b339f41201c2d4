"""WooCommerce and Shopify webhooks: signed deliveries land, unsigned ones are refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper

from vafa.customers.models import Customer, Order
from vafa.customers.webhooks import signature_valid

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "whsec-test-0123456789"


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@pytest.fixture(autouse=True)
def secrets(settings: SettingsWrapper) -> None:
    settings.VAFA_WOOCOMMERCE_SECRET = SECRET
    settings.VAFA_SHOPIFY_SECRET = SECRET


def woo_order() -> bytes:
    order = json.loads((FIXTURES / "woocommerce_orders.json").read_text())[0]
    return json.dumps(order, ensure_ascii=False).encode()


def shopify_order() -> bytes:
    order = json.loads((FIXTURES / "shopify_orders.json").read_text())["orders"][0]
    return json.dumps(order).encode()


def post(path: str, body: bytes, **headers: str) -> Any:
    return Client().post(f"/api/v1/webhooks/{path}", body, content_type="application/json",
                         headers=headers)


def test_a_signed_woocommerce_order_is_applied_with_its_buyer() -> None:
    body = woo_order()

    response = post("woocommerce", body, **{"X-WC-Webhook-Signature": sign(body),
                                            "X-WC-Webhook-Topic": "order.created"})

    assert response.status_code == 201, response.content
    order = Order.objects.select_related("customer").get()
    assert (order.external_id, order.status, order.customer.external_id) == ("727", "paid", "26")
    assert order.lines.count() == 1


@pytest.mark.parametrize("signature", [None, "", sign(b"something else"), "not base64!"])
def test_a_woocommerce_delivery_with_a_bad_signature_is_a_401_and_writes_nothing(
    signature: str | None,
) -> None:
    headers = {"X-WC-Webhook-Topic": "order.created"}
    if signature is not None:
        headers["X-WC-Webhook-Signature"] = signature

    response = post("woocommerce", woo_order(), **headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert (Order.objects.count(), Customer.objects.count()) == (0, 0)


def test_a_signature_made_with_another_secret_is_refused() -> None:
    body = woo_order()

    response = post("woocommerce", body, **{"X-WC-Webhook-Signature": sign(body, "other"),
                                            "X-WC-Webhook-Topic": "order.created"})

    assert response.status_code == 401
    assert not signature_valid(SECRET, body, sign(body, "other"))


def test_the_woocommerce_ping_on_webhook_creation_is_answered() -> None:
    response = Client().post("/api/v1/webhooks/woocommerce", b"webhook_id=15",
                             content_type="application/x-www-form-urlencoded")

    assert response.status_code == 200
    assert response.json() == {"ok": True, "ping": True}


def test_an_unused_topic_is_acknowledged_and_ignored() -> None:
    body = b'{"id": 5}'

    response = post("woocommerce", body, **{"X-WC-Webhook-Signature": sign(body),
                                            "X-WC-Webhook-Topic": "product.updated"})

    assert response.status_code == 200
    assert response.json()["ignored"] == "product.updated"


def test_without_a_configured_secret_deliveries_are_refused_with_503(
    settings: SettingsWrapper,
) -> None:
    settings.VAFA_SHOPIFY_SECRET = ""
    body = shopify_order()

    response = post("shopify", body, **{"X-Shopify-Hmac-Sha256": sign(body, ""),
                                        "X-Shopify-Topic": "orders/create"})

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "webhook_not_configured"
    assert Order.objects.count() == 0


def test_a_signed_shopify_order_lands_once_even_when_delivered_twice() -> None:
    body = shopify_order()
    headers = {"X-Shopify-Hmac-Sha256": sign(body), "X-Shopify-Topic": "orders/create",
               "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"}

    first = post("shopify", body, **headers)
    again = post("shopify", body, **headers)

    assert first.status_code == 201, first.content
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    order = Order.objects.get()
    assert (order.external_id, order.status, order.customer.external_id) == (
        "450789469", "partially_refunded", "207119551"
    )


def test_a_shopify_delivery_with_a_bad_signature_is_a_401_and_writes_nothing() -> None:
    body = shopify_order()

    response = post("shopify", body, **{"X-Shopify-Hmac-Sha256": sign(body + b" "),
                                        "X-Shopify-Topic": "orders/create"})

    assert response.status_code == 401
    assert response.json()["error"]["field"] == "X-Shopify-Hmac-Sha256"
    assert Order.objects.count() == 0


def test_a_signed_but_invalid_payload_is_a_422_naming_the_platform_field() -> None:
    order = json.loads(shopify_order())
    order["total_price"] = "free"
    body = json.dumps(order).encode()

    response = post("shopify", body, **{"X-Shopify-Hmac-Sha256": sign(body),
                                        "X-Shopify-Topic": "orders/updated"})

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "total_price"
    assert Order.objects.count() == 0


def test_a_shopify_customer_update_applies_consent() -> None:
    customer = json.loads((FIXTURES / "shopify_customers.json").read_text())["customers"][0]
    body = json.dumps(customer).encode()

    response = post("shopify", body, **{"X-Shopify-Hmac-Sha256": sign(body),
                                        "X-Shopify-Topic": "customers/update"})

    assert response.status_code == 201
    bob = Customer.objects.get()
    assert bob.consents.get(channel="email").source == "webhook:shopify"


def test_shopify_orders_fulfilled_and_delivered_reach_the_change_feed() -> None:
    from vafa.customers.models import Change, ChangeKind, FulfillmentStatus

    order = json.loads(shopify_order())
    post("shopify", shopify_order(), **{"X-Shopify-Hmac-Sha256": sign(shopify_order()),
                                        "X-Shopify-Topic": "orders/create"})
    assert Order.objects.get().fulfillment_status == ""

    for topic, payload, expected in [
        ("orders/fulfilled", {**order, "fulfillment_status": "fulfilled"},
         FulfillmentStatus.SHIPPED),
        ("orders/updated", {**order, "fulfillment_status": "fulfilled",
                            "fulfillments": [{"id": 1, "shipment_status": "delivered"}]},
         FulfillmentStatus.DELIVERED),
    ]:
        body = json.dumps(payload).encode()
        response = post("shopify", body, **{"X-Shopify-Hmac-Sha256": sign(body),
                                             "X-Shopify-Topic": topic})
        assert response.status_code in (200, 201), response.content
        assert Order.objects.get().fulfillment_status == expected
    changes = Change.objects.filter(kind=ChangeKind.ORDER_STATUS_CHANGED)
    assert [c.new_fulfillment for c in changes.order_by("id")] == [
        FulfillmentStatus.SHIPPED, FulfillmentStatus.DELIVERED]
