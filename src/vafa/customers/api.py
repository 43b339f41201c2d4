"""REST endpoints for customers, orders and events (thin: parse, authorise, call a service).

Request schemas accept values as shops send them (amounts as strings or numbers, Persian
digits, local phone numbers): the real rules live in `vafa.customers.validation`, shared with
the importers, so a field is judged the same way in a CSV and in a request. Unknown fields are
refused (a typo should not vanish silently). Every write needs an `Idempotency-Key` header and
accepts one object or a list of up to 1000 (all or nothing).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema
from pydantic import ConfigDict

from vafa.core.auth import ApiKeyAuth, request_api_key
from vafa.core.errors import ValidationError
from vafa.core.idempotency import idempotent_response
from vafa.customers import selectors, services
from vafa.customers.importers.pipeline import ImportResult
from vafa.customers.models import Customer, Order

router = Router(auth=ApiKeyAuth(), tags=["shop data"])

MAX_BATCH = 1000

Text = str | None
Amount = str | int | float | None
Flag = bool | str | None


class _In(Schema):
    model_config = ConfigDict(extra="forbid")


class CustomerIn(_In):
    customer_id: str | int = Field(..., description="Your id for the customer (unique).")
    email: Text = None
    phone: Text = Field(None, description="Any form; stored as E.164 (+98912…).")
    first_name: Text = None
    last_name: Text = None
    gender: Text = Field(None, description="female, male, other or empty.")
    birth_date: Text = Field(None, description="YYYY-MM-DD.")
    city: Text = None
    country: Text = Field(None, description="ISO 3166 alpha-2, e.g. IR.")
    language: Text = Field(None, description="e.g. fa, ar, en.")
    timezone: Text = Field(None, description="IANA name, e.g. Asia/Tehran.")
    signup_at: Text = Field(None, description="ISO 8601; without offset: the shop's zone.")
    acquisition_source: Text = None
    accepts_email: Flag = Field(None, description="Email marketing consent (true/false).")
    accepts_sms: Flag = Field(None, description="SMS marketing consent (true/false).")
    attributes: dict[str, Any] | None = Field(None, description="Merged key by key.")


class LineIn(_In):
    product_id: str | int
    quantity: int | str
    unit_price: Amount
    name: Text = Field(None, description="Creates the product when it is unknown.")


class OrderIn(_In):
    order_id: str | int
    customer_id: str | int = Field(..., description="An existing customer's id.")
    placed_at: str
    status: str = Field(..., description="paid, partially_refunded, refunded, cancelled, pending.")
    total: str | int | float = Field(..., description="A decimal string is safest: \"120000\".")
    currency: Text = Field(None, description="ISO 4217 or IRT; default: the shop's currency.")
    discount: Amount = None
    shipping: Amount = None
    refunded_amount: Amount = None
    channel: Text = None
    lines: list[LineIn] | None = Field(None, description="The order's complete set of lines.")


class EventIn(_In):
    customer_id: str | int
    type: str = Field(..., description="product_view, add_to_cart… or your own slug.")
    occurred_at: str
    properties: dict[str, Any] | None = None
    event_id: Text = Field(None, description="Your id for the event: a repeat is a no-op.")


class WriteOut(Schema):
    created: int
    updated: int
    unchanged: int
    ids: list[str] = Field(default_factory=list, description="External ids, in request order.")


class ConsentOut(Schema):
    channel: str
    granted: bool
    changed_at: datetime
    source: str


class CustomerOut(Schema):
    customer_id: str
    email: str
    phone: str
    first_name: str
    last_name: str
    gender: str
    birth_date: date | None
    city: str
    country: str
    language: str
    timezone: str
    signup_at: datetime | None
    acquisition_source: str
    attributes: dict[str, Any]
    consents: list[ConsentOut]
    created_at: datetime
    updated_at: datetime


class CustomerPage(Schema):
    items: list[CustomerOut]
    next_cursor: str | None


class LineOut(Schema):
    line_no: int
    product_id: str
    quantity: int
    unit_price: Decimal


class OrderOut(Schema):
    order_id: str
    customer_id: str
    placed_at: datetime
    status: str
    total: Decimal
    discount: Decimal
    shipping: Decimal
    refunded_amount: Decimal
    currency: str
    channel: str
    lines: list[LineOut]


def _customer_out(customer: Customer) -> dict[str, Any]:
    return {
        "customer_id": customer.external_id, "email": customer.email, "phone": customer.phone,
        "first_name": customer.first_name, "last_name": customer.last_name,
        "gender": customer.gender, "birth_date": customer.birth_date, "city": customer.city,
        "country": customer.country, "language": customer.language,
        "timezone": customer.timezone, "signup_at": customer.signup_at,
        "acquisition_source": customer.acquisition_source, "attributes": customer.attributes,
        "consents": [
            {"channel": c.channel, "granted": c.granted, "changed_at": c.changed_at,
             "source": c.source}
            for c in customer.consents.all()
        ],
        "created_at": customer.created_at, "updated_at": customer.updated_at,
    }


def _order_out(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.external_id, "customer_id": order.customer.external_id,
        "placed_at": order.placed_at, "status": order.status, "total": order.total,
        "discount": order.discount, "shipping": order.shipping,
        "refunded_amount": order.refunded_amount, "currency": order.currency,
        "channel": order.channel,
        "lines": [
            {"line_no": line.line_no, "product_id": line.product.external_id,
             "quantity": line.quantity, "unit_price": line.unit_price}
            for line in sorted(order.lines.all(), key=lambda line: line.line_no)
        ],
    }


def _items(payload: _In | list[Any]) -> tuple[list[dict[str, Any]], bool]:
    """The payload as canonical raw rows (only the fields the client sent) and whether it was
    a list."""
    if isinstance(payload, list):
        if not payload:
            raise ValidationError("empty list: send at least one item")
        if len(payload) > MAX_BATCH:
            raise ValidationError(f"at most {MAX_BATCH} items per request")
        return [item.model_dump(exclude_unset=True) for item in payload], True
    return [payload.model_dump(exclude_unset=True)], False


def _write(
    request: HttpRequest, payload: _In | list[Any], entity: str, id_field: str | None
) -> HttpResponse:
    api_key = request_api_key(request)
    items, batch = _items(payload)
    source = f"api:{api_key.name}"

    def perform() -> tuple[int, dict[str, Any]]:
        result: ImportResult
        if entity == "customers":
            result = services.customers_upsert(items=items, source=source) if batch else \
                services.customer_upsert(data=items[0], source=source)
        elif entity == "orders":
            result = services.orders_upsert(items=items, source=source) if batch else \
                services.order_upsert(data=items[0], source=source)
        else:
            result = services.events_record(items=items, source=source) if batch else \
                services.event_record(data=items[0], source=source)
        body = {
            "created": result.created, "updated": result.updated, "unchanged": result.unchanged,
            "ids": [str(item[id_field]).strip() for item in items] if id_field else [],
        }
        return (201 if result.created else 200), body

    return idempotent_response(request, api_key=api_key, perform=perform)


@router.post(
    "/customers", response={200: WriteOut, 201: WriteOut},
    summary="Create or update customers",
)
def customers_write(request: HttpRequest, payload: CustomerIn | list[CustomerIn]) -> HttpResponse:
    """Upsert by `customer_id`: fields you send are set (empty clears), fields you omit stay.
    201 when something was created, 200 otherwise."""
    return _write(request, payload, "customers", "customer_id")


@router.post("/orders", response={200: WriteOut, 201: WriteOut}, summary="Create or update orders")
def orders_write(request: HttpRequest, payload: OrderIn | list[OrderIn]) -> HttpResponse:
    """Upsert by `order_id`. The customer must exist (422 on `customer_id` otherwise). With
    `lines`, they replace the order's lines; unknown products are created when a line has a
    `name`."""
    return _write(request, payload, "orders", "order_id")


@router.post("/events", response={200: WriteOut, 201: WriteOut}, summary="Record events")
def events_write(request: HttpRequest, payload: EventIn | list[EventIn]) -> HttpResponse:
    """Record one event or a list. With `event_id`, sending the same event again is a no-op."""
    return _write(request, payload, "events", None)


class PageQuery(Schema):
    cursor: str | None = None
    limit: int = Field(50, ge=1, le=selectors.MAX_PAGE)


@router.get("/customers", response=CustomerPage, summary="List customers")
def customers_list(request: HttpRequest, query: Query[PageQuery]) -> dict[str, Any]:
    """Customers in creation order; pass `next_cursor` back as `cursor` for the next page."""
    rows, next_cursor = selectors.customers_page(cursor=query.cursor, limit=query.limit)
    return {"items": [_customer_out(c) for c in rows], "next_cursor": next_cursor}


@router.get("/customers/{external_id}", response=CustomerOut, summary="One customer")
def customer_detail(request: HttpRequest, external_id: str) -> dict[str, Any]:
    return _customer_out(selectors.customer_get(external_id=external_id))


@router.get("/orders/{external_id}", response=OrderOut, summary="One order")
def order_detail(request: HttpRequest, external_id: str) -> dict[str, Any]:
    return _order_out(selectors.order_get(external_id=external_id))
