"""The REST API: API keys, idempotent writes, one error shape, the same rules as the importers."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from vafa.core.models import ApiKey, IdempotencyRecord, hash_key
from vafa.core.services import apikey_create, apikey_revoke
from vafa.customers.models import Customer, Event, Order, OrderLine

pytestmark = pytest.mark.django_db


@pytest.fixture
def raw_key() -> str:
    return apikey_create(name="shop backend")[1]


class Api:
    """A client speaking to /api/v1/ with a key and, for writes, an Idempotency-Key."""

    def __init__(self, key: str | None) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}

    def post(self, path: str, body: Any, *, idempotency_key: str | None = "k-1") -> Any:
        headers = dict(self.headers)
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return self.client.post(f"/api/v1{path}", json.dumps(body),
                                content_type="application/json", headers=headers)

    def get(self, path: str) -> Any:
        return self.client.get(f"/api/v1{path}", headers=self.headers)


@pytest.fixture
def api(raw_key: str) -> Api:
    return Api(raw_key)


def error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"]), body
    return body["error"]


CUSTOMER = {"customer_id": "C1", "phone": "۰۹۱۲۳۴۵۶۷۸۹", "first_name": "علي"}


@pytest.mark.parametrize("key", [None, "vafa_not-a-real-key", "Basic abc"])
def test_a_missing_or_unknown_key_is_a_401_in_the_error_shape(key: str | None) -> None:
    response = Api(key).post("/customers", CUSTOMER)

    assert response.status_code == 401
    assert error(response)["code"] == "unauthenticated"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert Customer.objects.count() == 0


def test_a_revoked_key_is_refused(raw_key: str) -> None:
    apikey_revoke(api_key=ApiKey.objects.get(key_hash=hash_key(raw_key)))

    response = Api(raw_key).get("/customers")

    assert response.status_code == 401
    assert "revoked" in error(response)["message"]


def test_keys_are_stored_only_as_hashes_and_use_is_recorded(raw_key: str, api: Api) -> None:
    stored = ApiKey.objects.get()
    assert raw_key not in (stored.key_hash, stored.prefix)
    assert stored.key_hash == hash_key(raw_key) and raw_key.startswith(stored.prefix)

    api.get("/customers")

    stored.refresh_from_db()
    assert stored.last_used_at is not None
    assert timezone.now() - stored.last_used_at < timedelta(minutes=1)


def test_a_write_creates_with_the_importers_rules(api: Api) -> None:
    response = api.post("/customers", CUSTOMER)

    assert response.status_code == 201
    assert response.json() == {"created": 1, "updated": 0, "unchanged": 0, "ids": ["C1"]}
    customer = Customer.objects.get()
    assert (customer.phone, customer.first_name) == ("+989123456789", "علی")


def test_a_replayed_idempotency_key_returns_the_first_answer_and_writes_once(api: Api) -> None:
    first = api.post("/customers", CUSTOMER, idempotency_key="same")
    updated_at = Customer.objects.get().updated_at
    second = api.post("/customers", CUSTOMER, idempotency_key="same")

    assert (second.status_code, second.json()) == (first.status_code, first.json())
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert Customer.objects.get().updated_at == updated_at
    assert IdempotencyRecord.objects.count() == 1


def test_a_reused_idempotency_key_with_another_body_is_a_409(api: Api) -> None:
    api.post("/customers", CUSTOMER, idempotency_key="same")

    response = api.post("/customers", {**CUSTOMER, "first_name": "Other"},
                        idempotency_key="same")

    assert response.status_code == 409
    assert error(response)["code"] == "idempotency_key_reused"
    assert Customer.objects.get().first_name == "علی"


def test_a_write_without_an_idempotency_key_is_refused(api: Api) -> None:
    response = api.post("/customers", CUSTOMER, idempotency_key=None)

    assert response.status_code == 400
    assert error(response) | {"message": ""} == {
        "code": "idempotency_key_missing", "message": "", "field": "Idempotency-Key",
    }
    assert Customer.objects.count() == 0


def test_a_validation_error_names_the_field_and_writes_nothing(api: Api) -> None:
    response = api.post("/customers", {"customer_id": "C1", "phone": "12"})

    assert response.status_code == 422
    body = error(response)
    assert (body["code"], body["field"]) == ("invalid", "phone")
    assert Customer.objects.count() == 0
    assert IdempotencyRecord.objects.count() == 0


def test_an_unknown_field_is_refused_by_name(api: Api) -> None:
    response = api.post("/customers", {"customer_id": "C1", "emial": "a@b.example"})

    assert response.status_code == 422
    assert error(response)["field"] == "emial"


def test_a_batch_is_all_or_nothing_and_errors_name_the_item(api: Api) -> None:
    response = api.post("/customers", [{"customer_id": "C1"}, {"customer_id": "C2",
                                                               "email": "nope"}])

    assert response.status_code == 422
    body = error(response)
    assert body["field"] == "[1].email"
    assert Customer.objects.count() == 0


def test_an_order_needs_an_existing_customer(api: Api) -> None:
    response = api.post("/orders", {"order_id": "O1", "customer_id": "C404",
                                    "placed_at": "2025-01-01T10:00:00Z", "status": "paid",
                                    "total": "1000"})

    assert response.status_code == 422
    assert error(response)["field"] == "customer_id"
    assert "unknown customer 'C404'" in error(response)["message"]


def test_an_order_with_lines_is_written_and_read_back(api: Api) -> None:
    api.post("/customers", CUSTOMER, idempotency_key="c")
    order = {"order_id": "O1", "customer_id": "C1", "placed_at": "2025-01-01T10:00:00Z",
             "status": "completed", "total": "1,200,000", "currency": "IRT",
             "lines": [{"product_id": "P1", "quantity": 2, "unit_price": 600000,
                        "name": "کتاب"}]}

    created = api.post("/orders", order, idempotency_key="o")
    fewer = api.post("/orders", {**order, "lines": []}, idempotency_key="o2")
    read = api.get("/orders/O1").json()

    assert created.status_code == 201
    assert fewer.status_code == 200
    assert (read["status"], read["total"], read["lines"]) == ("paid", "1200000.000", [])
    assert (Order.objects.count(), OrderLine.objects.count()) == (1, 0)


def test_events_accept_one_or_many_and_an_event_id_makes_repeats_no_ops(api: Api) -> None:
    api.post("/customers", CUSTOMER, idempotency_key="c")
    event = {"customer_id": "C1", "type": "add_to_cart", "occurred_at": "2025-01-01T10:00:00Z",
             "properties": {"product_id": "P1"}, "event_id": "e-1"}

    one = api.post("/events", event, idempotency_key="e1")
    many = api.post("/events", [event, {**event, "event_id": "e-2"}], idempotency_key="e2")

    assert one.json()["created"] == 1
    assert (many.json()["created"], many.json()["unchanged"]) == (1, 1)
    assert Event.objects.count() == 2


def test_customers_are_listed_with_a_cursor_and_read_one_by_one(api: Api) -> None:
    api.post("/customers", [{"customer_id": f"C{i}", "accepts_sms": "yes"} for i in range(5)])

    first = api.get("/customers?limit=2").json()
    second = api.get(f"/customers?limit=2&cursor={first['next_cursor']}").json()
    last = api.get(f"/customers?limit=2&cursor={second['next_cursor']}").json()
    one = api.get("/customers/C3").json()

    ids = [c["customer_id"] for page in (first, second, last) for c in page["items"]]
    assert ids == ["C0", "C1", "C2", "C3", "C4"]
    assert last["next_cursor"] is None
    assert one["consents"][0]["channel"] == "sms" and one["consents"][0]["granted"] is True
    assert one["consents"][0]["source"] == "api:shop backend"


def test_not_found_and_bad_cursors_use_the_error_shape(api: Api) -> None:
    missing = api.get("/customers/nobody")
    no_route = api.get("/no-such-thing")
    bad_cursor = api.get("/customers?cursor=%%%")

    assert (missing.status_code, error(missing)["code"]) == (404, "not_found")
    assert (no_route.status_code, error(no_route)["code"]) == (404, "not_found")
    assert (bad_cursor.status_code, error(bad_cursor)["field"]) == (422, "cursor")


def test_the_openapi_docs_are_served_under_api_docs() -> None:
    client = Client()

    redirect = client.get("/api/docs")
    docs = client.get(redirect.headers["Location"])
    schema = client.get("/api/v1/openapi.json").json()

    assert redirect.status_code == 302
    assert docs.status_code == 200
    assert {"/api/v1/customers", "/api/v1/orders", "/api/v1/events",
            "/api/v1/webhooks/shopify"} <= set(schema["paths"])
