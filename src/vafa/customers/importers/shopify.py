"""Shopify (Admin REST API JSON, and the customer CSV export) → canonical rows.

JSON files are what the Admin API returns (`{"orders": [...]}`, `{"customers": [...]}`,
`{"products": [...]}`), or a single object (`{"order": {...}}`, or the bare object a webhook
sends). The customer CSV is the admin's "Export customers" file.

Mapping decisions:
- Order status: a cancelled order (`cancelled_at` set) is `cancelled`; otherwise
  `financial_status` maps paid → paid, partially_refunded, refunded, voided/expired →
  cancelled, pending/authorized/partially_paid → pending.
- `refunded_amount` is the sum of the successful refund transactions; shipping is the sum of
  `shipping_lines`. A line without a product (a custom item) refers to a product
  `custom:<title>`.
- Marketing consent: `email_marketing_consent.state` / `sms_marketing_consent.state`
  `subscribed` → granted, `not_subscribed`/`unsubscribed`/`redacted` → refused, anything else
  (pending double opt-in, missing) → unchanged. The legacy `accepts_marketing` flag is used when
  the newer object is absent.
- The order's embedded `customer` creates the customer when unknown.
- The customer CSV's "Customer ID" is the external id (the same id the API uses); a leading `'`
  (kept by spreadsheets) is dropped from every cell; "Default Address Phone" is used when
  "Phone" is empty; "Tags" and "Note" are kept in the customer's attributes.
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

_CONSENT_STATES = {
    "subscribed": True, "not_subscribed": False, "unsubscribed": False, "redacted": False,
}




def _consent(item: Mapping[str, Any], key: str, legacy: str | None = None) -> bool | None:
    state = payload_object(item, key).get("state")
    if state is None and legacy is not None and isinstance(item.get(legacy), bool):
        return bool(item[legacy])
    return _CONSENT_STATES.get(str(state or "").lower())


def customer_from_shopify(item: Mapping[str, Any]) -> dict[str, Any]:
    """A Shopify customer object → a canonical customer row."""
    address = payload_object(item, "default_address")
    data: dict[str, Any] = {
        "customer_id": item.get("id"),
        "email": item.get("email") or "",
        "first_name": item.get("first_name") or address.get("first_name") or "",
        "last_name": item.get("last_name") or address.get("last_name") or "",
        "phone": item.get("phone") or address.get("phone") or "",
        "city": address.get("city") or "",
        "country": address.get("country_code") or "",
        "signup_at": item.get("created_at") or "",
    }
    email_consent = _consent(item, "email_marketing_consent", legacy="accepts_marketing")
    sms_consent = _consent(item, "sms_marketing_consent")
    if email_consent is not None:
        data["accepts_email"] = email_consent
    if sms_consent is not None:
        data["accepts_sms"] = sms_consent
    if item.get("tags"):
        data["attributes"] = {"tags": item["tags"]}
    return data


def _money_sum(values: list[tuple[str, Any]]) -> Decimal:
    total = Decimal(0)
    for name, value in values:
        try:
            total += parse_amount(value if value is not None else "0")
        except MoneyError as exc:
            raise MappingError(name, str(exc)) from None
    return total


def _fulfillment(item: Mapping[str, Any]) -> str:
    """Where the parcel is: "delivered" when a fulfilment's `shipment_status` says so,
    "fulfilled" when the order's `fulfillment_status` is (Shopify's `orders/fulfilled` topic),
    else nothing (partial fulfilments do not count as shipped)."""
    fulfillments = item.get("fulfillments") or []
    if any(isinstance(f, Mapping) and f.get("shipment_status") == "delivered"
           for f in fulfillments):
        return "delivered"
    return "fulfilled" if item.get("fulfillment_status") == "fulfilled" else ""


def _status(item: Mapping[str, Any]) -> str:
    if item.get("cancelled_at"):
        return "cancelled"
    return str(item.get("financial_status") or "pending")


def order_from_shopify(item: Mapping[str, Any]) -> dict[str, Any]:
    """A Shopify order object → a canonical order row with `lines` and `customer`."""
    buyer = payload_object(item, "customer")
    if not buyer.get("id"):
        raise MappingError("customer", "an order without a customer")
    customer = customer_from_shopify(buyer)
    customer.pop("accepts_email", None)  # the order is not where consent is decided
    customer.pop("accepts_sms", None)
    customer.pop("attributes", None)
    if not customer["email"]:
        customer["email"] = item.get("email") or ""
    shipping = _money_sum([
        (f"shipping_lines[{i}].price", line.get("price"))
        for i, line in enumerate(payload_list(item, "shipping_lines")) if isinstance(line, Mapping)
    ])
    refunds = [
        (f"refunds[{i}].transactions[{j}].amount", tx.get("amount"))
        for i, refund in enumerate(payload_list(item, "refunds")) if isinstance(refund, Mapping)
        for j, tx in enumerate(payload_list(refund, "transactions"))
        if isinstance(tx, Mapping) and tx.get("kind") == "refund"
        and tx.get("status", "success") == "success"
    ]
    lines = []
    for index, line in enumerate(payload_list(item, "line_items")):
        if not isinstance(line, Mapping):
            raise MappingError(f"line_items[{index}]", "expected an object")
        title = line.get("title") or line.get("name") or ""
        product_id = line.get("product_id") or f"custom:{title}"[:100]
        lines.append({
            "product_id": product_id, "quantity": line.get("quantity"),
            "unit_price": line.get("price"), "name": title,
        })
    data: dict[str, Any] = {
        "order_id": item.get("id"),
        "customer_id": customer["customer_id"],
        "placed_at": item.get("created_at") or "",
        "status": _status(item),
        "total": item.get("total_price"),
        "discount": item.get("total_discounts") or "0",
        "shipping": shipping,
        "currency": item.get("currency") or "",
        "channel": item.get("source_name") or "",
        "lines": lines,
        "customer": customer,
    }
    fulfillment = _fulfillment(item)
    if fulfillment:
        data["fulfillment_status"] = fulfillment
    if refunds:
        data["refunded_amount"] = _money_sum(refunds)
    return data


def product_from_shopify(item: Mapping[str, Any]) -> dict[str, Any]:
    """A Shopify product → a canonical product row (price of the first variant)."""
    variants = payload_list(item, "variants")
    price = variants[0].get("price") if variants and isinstance(variants[0], Mapping) else ""
    return {
        "product_id": item.get("id"),
        "name": item.get("title"),
        "category": item.get("product_type") or "",
        "price": price or "",
    }


MAPPERS = {
    "customers": customer_from_shopify,
    "orders": order_from_shopify,
    "products": product_from_shopify,
}
LABELS = {
    "customers": path_labels({
        "customer_id": "id", "signup_at": "created_at", "city": "default_address.city",
        "country": "default_address.country_code",
        "accepts_email": "email_marketing_consent", "accepts_sms": "sms_marketing_consent",
    }),
    "orders": path_labels({
        "order_id": "id", "placed_at": "created_at", "status": "financial_status",
        "total": "total_price", "discount": "total_discounts", "shipping": "shipping_lines",
        "refunded_amount": "refunds", "channel": "source_name", "customer_id": "customer.id",
        "lines": "line_items", "lines[]": "line_items[]",
        "lines[].product_id": "line_items[].product_id",
        "lines[].quantity": "line_items[].quantity", "lines[].unit_price": "line_items[].price",
        "lines[].name": "line_items[].title",
        "customer.customer_id": "customer.id", "customer.signup_at": "customer.created_at",
        "customer.city": "customer.default_address.city",
        "customer.country": "customer.default_address.country_code",
    }),
    "products": path_labels({
        "product_id": "id", "name": "title", "category": "product_type",
        "price": "variants[0].price",
    }),
}

# The customer CSV export: header (as `canonical_header` spells it) → canonical column.
CSV_COLUMNS = {
    "customer_id": "customer_id",
    "first_name": "first_name",
    "last_name": "last_name",
    "email": "email",
    "accepts_email_marketing": "accepts_email",
    "default_address_city": "city",
    "default_address_country_code": "country",
    "phone": "phone",
    "accepts_sms_marketing": "accepts_sms",
    "default_address_phone": "_address_phone",
}
CSV_ATTRIBUTES = {"tags": "tags", "note": "note"}
CSV_IGNORED = {
    "default_address_company", "default_address_address1", "default_address_address2",
    "default_address_province_code", "default_address_zip", "total_spent", "total_orders",
    "tax_exempt",
}
CSV_LABELS = {
    "customer_id": "Customer ID", "first_name": "First Name", "last_name": "Last Name",
    "email": "Email", "accepts_email": "Accepts Email Marketing",
    "city": "Default Address City", "country": "Default Address Country Code",
    "phone": "Phone", "accepts_sms": "Accepts SMS Marketing",
}


def csv_cell(value: str) -> str:
    """Drop the apostrophe spreadsheets put before numbers to keep them text."""
    return value[1:] if value.startswith("'") else value


def csv_row(data: dict[str, Any]) -> dict[str, Any]:
    """Use the address phone when the customer's own phone is empty."""
    address_phone = data.pop("_address_phone", "")
    if "phone" in data and not str(data["phone"]).strip() and address_phone:
        data["phone"] = address_phone
    return data
