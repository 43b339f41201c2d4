"""WooCommerce (REST API v3, `/wp-json/wc/v3/…`) orders, customers and products → canonical rows.

The same mappers read an export file (the JSON array a `GET /orders` page returns, or several
pages concatenated into one array) and a webhook body (one order or customer object).

Mapping decisions:
- `*_gmt` timestamps are UTC without an offset; we mark them as UTC. When only the local
  `date_created` is present it is read in the shop's zone.
- A guest order (`customer_id` 0) belongs to a customer `guest:<billing email>`; without a
  billing email it is an error. The order's billing details create its customer when the
  customer is not known yet (an existing customer is left as the customer import/webhook wrote
  it).
- WooCommerce has no "partially refunded" status: a completed/processing order with refunds is
  `partially_refunded`; `refunded_amount` is the sum of the order's refunds.
- A line whose product was deleted (`product_id` 0) refers to a product
  `deleted:<line name>`, so the order keeps its lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from vafa.core.money import MoneyError, parse_amount
from vafa.customers.importers.sources import (
    MappingError,
    path_labels,
    payload_list,
    payload_object,
)

ENTITIES = ("customers", "orders", "products")




def _gmt(item: Mapping[str, Any], key: str) -> Any:
    """`date_created_gmt` as UTC; else the local `date_created`, read in the shop's zone."""
    value = item.get(f"{key}_gmt")
    if isinstance(value, str) and value.strip():
        value = value.strip()
        return value if value.endswith(("Z", "z")) or "+" in value[10:] else value + "Z"
    return item.get(key) or ""


def customer_from_woocommerce(item: Mapping[str, Any]) -> dict[str, Any]:
    """A WooCommerce customer object → a canonical customer row."""
    billing = payload_object(item, "billing")
    return {
        "customer_id": item.get("id"),
        "email": item.get("email") or billing.get("email") or "",
        "first_name": item.get("first_name") or billing.get("first_name") or "",
        "last_name": item.get("last_name") or billing.get("last_name") or "",
        "phone": billing.get("phone") or "",
        "city": billing.get("city") or "",
        "country": billing.get("country") or "",
        "signup_at": _gmt(item, "date_created"),
    }


def _refunded(item: Mapping[str, Any]) -> Decimal | None:
    refunds = payload_list(item, "refunds")
    if not refunds:
        return None
    total = Decimal(0)
    for index, refund in enumerate(refunds):
        try:
            amount = parse_amount(str(refund.get("total", "0")), allow_negative=True)
        except (MoneyError, AttributeError) as exc:
            raise MappingError(f"refunds[{index}].total", str(exc)) from None
        total += abs(amount)  # WooCommerce lists refunds as negative totals
    return total


def order_from_woocommerce(item: Mapping[str, Any]) -> dict[str, Any]:
    """A WooCommerce order object → a canonical order row with `lines` and `customer`."""
    billing = payload_object(item, "billing")
    customer_id = item.get("customer_id")
    email = str(billing.get("email") or "").strip().lower()
    if customer_id in (None, "", 0, "0"):
        if not email:
            raise MappingError("customer_id", "a guest order (customer_id 0) without billing email")
        customer_ref = f"guest:{email}"[:100]
    else:
        customer_ref = str(customer_id)
    status = str(item.get("status") or "")
    refunded = _refunded(item)
    if refunded and status in {"completed", "processing"}:
        status = "partially_refunded"
    lines = []
    for index, line in enumerate(payload_list(item, "line_items")):
        if not isinstance(line, Mapping):
            raise MappingError(f"line_items[{index}]", "expected an object")
        product_id = line.get("product_id")
        name = line.get("name") or ""
        if product_id in (0, "0"):
            product_id = f"deleted:{name}"[:100]
        price = line.get("price")
        if price in (None, "") and line.get("quantity"):
            try:
                price = parse_amount(str(line.get("subtotal") or "0")) / Decimal(
                    str(line["quantity"])
                )
            except (MoneyError, ArithmeticError, ValueError):
                price = None
        lines.append({
            "product_id": product_id, "quantity": line.get("quantity"), "unit_price": price,
            "name": name,
        })
    data: dict[str, Any] = {
        "order_id": item.get("id"),
        "customer_id": customer_ref,
        "placed_at": _gmt(item, "date_created"),
        "status": status,
        "total": item.get("total"),
        "discount": item.get("discount_total") or "0",
        "shipping": item.get("shipping_total") or "0",
        "currency": item.get("currency") or "",
        "channel": item.get("created_via") or "",
        "lines": lines,
        "customer": {
            "customer_id": customer_ref,
            "email": billing.get("email") or "",
            "first_name": billing.get("first_name") or "",
            "last_name": billing.get("last_name") or "",
            "phone": billing.get("phone") or "",
            "city": billing.get("city") or "",
            "country": billing.get("country") or "",
        },
    }
    if refunded is not None:
        data["refunded_amount"] = refunded
    return data


def product_from_woocommerce(item: Mapping[str, Any]) -> dict[str, Any]:
    """A WooCommerce product object → a canonical product row (first category)."""
    categories = payload_list(item, "categories")
    category = categories[0].get("name") if categories and isinstance(categories[0], Mapping) else ""
    return {
        "product_id": item.get("id"),
        "name": item.get("name"),
        "category": category or "",
        "price": item.get("price") or "",
    }


MAPPERS = {
    "customers": customer_from_woocommerce,
    "orders": order_from_woocommerce,
    "products": product_from_woocommerce,
}
LABELS = {
    "customers": path_labels({
        "customer_id": "id", "signup_at": "date_created_gmt", "phone": "billing.phone",
        "city": "billing.city", "country": "billing.country",
    }),
    "orders": path_labels({
        "order_id": "id", "placed_at": "date_created_gmt", "discount": "discount_total",
        "shipping": "shipping_total", "refunded_amount": "refunds", "channel": "created_via",
        "lines": "line_items", "lines[]": "line_items[]",
        "lines[].product_id": "line_items[].product_id",
        "lines[].quantity": "line_items[].quantity", "lines[].unit_price": "line_items[].price",
        "lines[].name": "line_items[].name",
        "customer.customer_id": "customer_id", "customer.email": "billing.email",
        "customer.first_name": "billing.first_name", "customer.last_name": "billing.last_name",
        "customer.phone": "billing.phone", "customer.city": "billing.city",
        "customer.country": "billing.country",
    }),
    "products": path_labels({"product_id": "id", "category": "categories[0].name"}),
}
