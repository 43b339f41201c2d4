"""Reads of the shop's data for the API and pages: one customer, one order, cursor pages."""

from __future__ import annotations

import base64
import binascii

from django.db.models import QuerySet

from vafa.core.errors import NotFoundError, ValidationError
from vafa.customers.models import Customer, Order

MAX_PAGE = 200


def customer_get(*, external_id: str) -> Customer:
    """The customer with this external id, with consents prefetched."""
    customer = Customer.objects.prefetch_related("consents").filter(external_id=external_id).first()
    if customer is None:
        raise NotFoundError(f"no customer {external_id!r}")
    return customer


def order_get(*, external_id: str) -> Order:
    """The order with this external id, with its customer and lines (and their products)."""
    order = (
        Order.objects.select_related("customer")
        .prefetch_related("lines__product")
        .filter(external_id=external_id)
        .first()
    )
    if order is None:
        raise NotFoundError(f"no order {external_id!r}")
    return order


def encode_cursor(pk: int) -> str:
    return base64.urlsafe_b64encode(f"id:{pk}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The primary key a cursor points after; `ValidationError` for a forged or stale one."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind != "id":
            raise ValueError(kind)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationError("not a valid cursor", field="cursor") from None


def customers_page(
    *, cursor: str | None = None, limit: int = 50
) -> tuple[list[Customer], str | None]:
    """Customers in creation order, `limit` at a time; returns the page and the cursor of the
    next one (None on the last page). Cursors stay valid while rows are added."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    queryset: QuerySet[Customer] = Customer.objects.prefetch_related("consents").order_by("id")
    if cursor:
        queryset = queryset.filter(id__gt=decode_cursor(cursor))
    rows = list(queryset[: limit + 1])
    next_cursor = encode_cursor(rows[limit - 1].pk) if len(rows) > limit else None
    return rows[:limit], next_cursor
