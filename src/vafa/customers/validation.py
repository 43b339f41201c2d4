"""The one set of rules that turns a raw row into a clean record, or says what is wrong with it.

Every way data enters Vafa goes through here: the CSV/JSON importers, the REST API and the
WooCommerce/Shopify webhooks. Each source first maps its own shape onto the *canonical* field
names (`customer_id`, `placed_at`, `total`… as in ARCHITECTURE.md); the `clean_*` functions then
read the values the way shops write them (Persian digits, thousands separators, Jalali dates,
Arabic letter variants, local phone numbers) and return either a record ready for the writer or
a list of `(field, reason)` problems. The rules therefore cannot drift between the CLI and the API.

A record is a plain dict keyed by model field names. A field missing from the raw row (a column
absent from the file, a key absent from the JSON body) is missing from the record too, and the
writer leaves that column alone on update; a field present but empty clears the column.
References to other rows stay external ids (`customer_ref`, `product_ref`, `order_ref`) until the
writer resolves them against the database.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from functools import lru_cache
from typing import Any

import phonenumbers

from vafa.core.money import (
    KNOWN_CURRENCIES,
    MoneyError,
    normalize_currency,
    parse_amount,
    quantize,
)
from vafa.core.text import PhoneError, normalize_digits, normalize_name, normalize_phone
from vafa.core.timeutil import DateError, get_zone, parse_date, parse_datetime

Record = dict[str, Any]
Problem = tuple[str, str]
"""`(field, reason)`: the field uses the canonical name (`total`, `lines[2].quantity`)."""

ENTITIES = ("customers", "products", "orders", "order_lines", "events", "tickets")

# Canonical columns per entity (ARCHITECTURE.md), with the ones a row cannot do without.
COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": (
        "customer_id", "email", "phone", "first_name", "last_name", "gender", "birth_date",
        "city", "country", "language", "timezone", "signup_at", "acquisition_source",
        "accepts_email", "accepts_sms",
    ),
    "products": ("product_id", "name", "category", "price", "currency"),
    "orders": (
        "order_id", "customer_id", "placed_at", "status", "total", "currency", "discount",
        "shipping", "refunded_amount", "channel",
    ),
    "order_lines": ("order_id", "product_id", "quantity", "unit_price", "line_no", "name"),
    "events": ("customer_id", "type", "occurred_at", "properties", "event_id"),
    "tickets": (
        "ticket_id", "customer_id", "opened_at", "first_response_at", "resolved_at", "channel",
        "subject", "satisfaction",
    ),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id",),
    "products": ("product_id", "name"),
    "orders": ("order_id", "customer_id", "placed_at", "status", "total"),
    "order_lines": ("order_id", "product_id", "quantity", "unit_price"),
    "events": ("customer_id", "type", "occurred_at"),
    "tickets": ("ticket_id", "customer_id", "opened_at"),
}

# Order statuses as shops and platforms spell them, onto Vafa's five.
ORDER_STATUSES: dict[str, str] = {
    "paid": "paid", "completed": "paid", "complete": "paid", "processing": "paid",
    "delivered": "paid", "shipped": "paid", "fulfilled": "paid", "success": "paid",
    "partially_refunded": "partially_refunded", "partially-refunded": "partially_refunded",
    "partial_refund": "partially_refunded",
    "refunded": "refunded",
    "cancelled": "cancelled", "canceled": "cancelled", "voided": "cancelled",
    "failed": "cancelled", "trash": "cancelled", "expired": "cancelled",
    "pending": "pending", "on-hold": "pending", "on_hold": "pending", "pending_payment": "pending",
    "checkout-draft": "pending", "authorized": "pending", "partially_paid": "pending",
}
GENDERS: dict[str, str] = {
    "f": "female", "female": "female", "woman": "female", "زن": "female", "خانم": "female",
    "m": "male", "male": "male", "man": "male", "مرد": "male", "آقا": "male",
    "other": "other", "o": "other", "x": "other", "دیگر": "other",
    "": "", "unknown": "", "u": "",
}
BOOLEANS: dict[str, bool] = {
    "true": True, "t": True, "1": True, "yes": True, "y": True, "on": True,
    "بله": True, "بلی": True, "آری": True, "آره": True, "نعم": True,
    "false": False, "f": False, "0": False, "no": False, "n": False, "off": False,
    "خیر": False, "نه": False, "لا": False,
}
COUNTRY_ALIASES = {"IRAN": "IR", "ایران": "IR", "UK": "GB"}
MAX_PROPERTIES_BYTES = 32_768

_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class JsonText(str):
    """JSON already serialised (compactly) by validation, passed to the writer as is."""

    __slots__ = ()


_EMAIL = re.compile(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>.]+")
_EVENT_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*")


@dataclass(frozen=True, slots=True)
class ReadContext:
    """How to read values that do not say everything themselves.

    `zone` is the time zone of timestamps without an offset (the shop's), `calendar` the calendar
    of dates, `default_currency` the currency of amounts without one, `default_country` the
    region of phone numbers without a country code. `source` is recorded on consent changes
    (`import:customers.csv`, `api:<key name>`, `webhook:shopify`). `derive_event_keys` gives
    events without an `event_id` a key made from their content, so re-importing a file adds no
    duplicates (the API leaves it off: the request's `Idempotency-Key` protects retries there).
    """

    zone: tzinfo
    calendar: str = "gregorian"
    default_currency: str = "IRT"
    default_country: str = "IR"
    source: str = "api"
    derive_event_keys: bool = False
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


def default_context(
    *,
    calendar: str | None = None,
    timezone: str | None = None,
    currency: str | None = None,
    source: str = "api",
    derive_event_keys: bool = False,
) -> ReadContext:
    """A `ReadContext` from the shop's settings, with the given overrides (already validated:
    a bad zone, calendar or currency raises `ValueError` with a readable message)."""
    from django.conf import settings

    calendar = calendar or "gregorian"
    if calendar not in {"gregorian", "jalali"}:
        raise ValueError(f"unknown calendar {calendar!r} (gregorian or jalali)")
    return ReadContext(
        zone=get_zone(timezone or settings.TIME_ZONE),
        calendar=calendar,
        default_currency=normalize_currency(currency or settings.VAFA_DEFAULT_CURRENCY),
        default_country=getattr(settings, "VAFA_DEFAULT_COUNTRY", "IR") or "IR",
        source=source,
        derive_event_keys=derive_event_keys,
    )


# ---------------------------------------------------------------------------------------------
# Field readers: each returns the clean value, or None after appending a problem.


def _text(value: Any) -> str | None:
    """A raw value as text; None for a value that is not text-like (a list, an object)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    return None


def read_text(
    value: Any, name: str, problems: list[Problem], *, max_length: int, required: bool = False,
    person_name: bool = False, language: str | None = "fa",
) -> str | None:
    text = _text(value)
    if text is None:
        problems.append((name, "expected text"))
        return None
    text = normalize_name(text, language=language) if person_name else text.strip()
    if required and not text:
        problems.append((name, "required"))
        return None
    if len(text) > max_length:
        problems.append((name, f"longer than {max_length} characters"))
        return None
    return text


def read_identifier(value: Any, name: str, problems: list[Problem]) -> str | None:
    """An external id: text (numbers allowed), Persian/Arabic digits made ASCII, 1–100 chars."""
    if type(value) is str and value.isascii() and 0 < len(value) <= 100 and (
        value[0] > " " < value[-1]
    ):
        return value  # the common case: already clean
    text = _text(value)
    if text is None:
        problems.append((name, "expected an id (text or number)"))
        return None
    if not text.isascii():
        text = normalize_digits(text)
    text = text.strip()
    if not text:
        problems.append((name, "required"))
        return None
    if len(text) > 100:
        problems.append((name, "longer than 100 characters"))
        return None
    return text


def read_datetime(
    value: Any, name: str, problems: list[Problem], ctx: ReadContext, *, required: bool = False
) -> datetime | None:
    text = _text(value)
    if text is None:
        problems.append((name, "expected a date and time"))
        return None
    if not text.strip():
        if required:
            problems.append((name, "required"))
        return None
    try:
        return parse_datetime(text, zone=ctx.zone, calendar=ctx.calendar)
    except DateError as exc:
        problems.append((name, str(exc)))
        return None


def read_amount(
    value: Any, name: str, problems: list[Problem], currency: str, *, required: bool = False
) -> Decimal | None:
    if type(value) is str and value.isdigit() and value.isascii():
        return Decimal(value)  # the common case: a plain whole number needs no rounding
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            problems.append((name, "required"))
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        problems.append((name, "expected an amount"))
        return None
    try:
        return quantize(parse_amount(value), currency)
    except MoneyError as exc:
        problems.append((name, str(exc)))
        return None


def read_count(value: Any, name: str, problems: list[Problem], *, minimum: int = 1) -> int | None:
    """A whole number (`3`, `۳`, `3.0`) of at least `minimum`."""
    text = _text(value)
    if text is None or isinstance(value, bool):
        problems.append((name, "expected a whole number"))
        return None
    text = normalize_digits(text).strip()
    try:
        number = Decimal(text)
    except ArithmeticError:
        number = Decimal("NaN")
    if not text or not number.is_finite() or number != number.to_integral_value():
        problems.append((name, f"not a whole number: {value!r}" if text else "required"))
        return None
    if number < minimum:
        problems.append((name, f"must be at least {minimum}"))
        return None
    return int(number)


def read_bool(value: Any, name: str, problems: list[Problem]) -> bool | None:
    """yes/no in English, Persian or Arabic, true/false, 1/0; empty means "not stated"."""
    if isinstance(value, bool) or value is None:
        return value
    text = _text(value)
    key = normalize_digits(text).strip().lower() if text is not None else None
    if key == "":
        return None
    if key is None or key not in BOOLEANS:
        problems.append((name, f"expected yes/no (true/false, 1/0, بله/خیر), got {value!r}"))
        return None
    return BOOLEANS[key]


@lru_cache(maxsize=512)
def _zone_ok(name: str) -> bool:
    try:
        get_zone(name)
    except DateError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Entities


def clean_customer(raw: Mapping[str, Any], ctx: ReadContext) -> tuple[Record, list[Problem]]:
    """A customer row → `Customer` fields plus `consents` ({"email": bool, "sms": bool})."""
    problems: list[Problem] = []
    rec: Record = {"external_id": read_identifier(raw.get("customer_id"), "customer_id", problems)}
    language = ""
    if "language" in raw:
        tag = (read_text(raw["language"], "language", problems, max_length=10) or "")
        tag = tag.replace("_", "-")
        if tag and not _LANGUAGE.fullmatch(tag.lower()):
            problems.append(("language", f"not a language code (fa, ar, en…): {tag!r}"))
        primary, _, rest = tag.partition("-")
        language = primary.lower()
        rec["language"] = language + ("-" + rest if rest else "")
    name_language = "ar" if language == "ar" else "fa"
    for key in ("first_name", "last_name"):
        if key in raw:
            rec[key] = read_text(
                raw[key], key, problems, max_length=150, person_name=True, language=name_language
            )
    if "email" in raw:
        email = read_text(raw["email"], "email", problems, max_length=254)
        if email:
            email = email.lower()
            if not _EMAIL.fullmatch(email):
                problems.append(("email", f"not an email address: {raw['email']!r}"))
        rec["email"] = email
    country = ""
    if "country" in raw:
        country = read_text(raw["country"], "country", problems, max_length=60) or ""
        country = COUNTRY_ALIASES.get(country.upper(), COUNTRY_ALIASES.get(country, country))
        country = country.upper()
        if country and country not in phonenumbers.SUPPORTED_REGIONS:
            problems.append(("country", f"not an ISO 3166 two-letter country code: {country!r}"))
        rec["country"] = country
    if "phone" in raw:
        phone = read_text(raw["phone"], "phone", problems, max_length=40)
        if phone:
            try:
                phone = normalize_phone(phone, default_region=country or ctx.default_country)
            except PhoneError as exc:
                problems.append(("phone", str(exc)))
        rec["phone"] = phone
    if "gender" in raw:
        gender = read_text(raw["gender"], "gender", problems, max_length=20)
        if gender is not None:
            if gender.lower() in GENDERS:
                rec["gender"] = GENDERS[gender.lower()]
            else:
                problems.append(("gender", f"expected female, male or other, got {gender!r}"))
    if "birth_date" in raw:
        text = _text(raw["birth_date"])
        birth: date | None = None
        if text is None:
            problems.append(("birth_date", "expected a date"))
        elif text.strip():
            try:
                birth = parse_date(text, calendar=ctx.calendar)
            except DateError as exc:
                problems.append(("birth_date", str(exc)))
            else:
                if birth > ctx.now.date():
                    problems.append(("birth_date", "in the future"))
        rec["birth_date"] = birth
    if "city" in raw:
        rec["city"] = read_text(
            raw["city"], "city", problems, max_length=100, person_name=True,
            language=name_language,
        )
    if "timezone" in raw:
        zone = read_text(raw["timezone"], "timezone", problems, max_length=64)
        if zone and not _zone_ok(zone):
            problems.append(("timezone", f"unknown time zone {zone!r} (an IANA name)"))
        rec["timezone"] = zone
    if "signup_at" in raw:
        rec["signup_at"] = read_datetime(raw["signup_at"], "signup_at", problems, ctx)
    if "acquisition_source" in raw:
        rec["acquisition_source"] = read_text(
            raw["acquisition_source"], "acquisition_source", problems, max_length=100
        )
    if "attributes" in raw and raw["attributes"] is not None:
        if isinstance(raw["attributes"], Mapping):
            rec["attributes"] = dict(raw["attributes"])
        else:
            problems.append(("attributes", "expected an object"))
    consents: dict[str, bool] = {}
    for column, channel in (("accepts_email", "email"), ("accepts_sms", "sms")):
        if column in raw:
            granted = read_bool(raw[column], column, problems)
            if granted is not None:
                consents[channel] = granted
    if consents:
        rec["consents"] = consents
    return rec, problems


def clean_product(raw: Mapping[str, Any], ctx: ReadContext) -> tuple[Record, list[Problem]]:
    """A product row → `Product` fields, the category as `category_name`."""
    problems: list[Problem] = []
    rec: Record = {
        "external_id": read_identifier(raw.get("product_id"), "product_id", problems),
        "name": read_text(
            raw.get("name"), "name", problems, max_length=300, required=True, person_name=True
        ),
    }
    if "category" in raw:
        rec["category_name"] = read_text(
            raw["category"], "category", problems, max_length=200, person_name=True
        )
    currency = _currency(raw, problems, ctx)
    if "price" in raw:
        rec["price"] = read_amount(raw["price"], "price", problems, currency)
        rec["currency"] = currency if rec["price"] is not None else ""
    elif "currency" in raw:
        rec["currency"] = currency
    return rec, problems


def _currency(raw: Mapping[str, Any], problems: list[Problem], ctx: ReadContext) -> str:
    value = raw.get("currency")
    if value is None or value == "":
        return ctx.default_currency
    if value in KNOWN_CURRENCIES:
        return str(value)
    text = _text(value)
    try:
        return normalize_currency(text or "")
    except MoneyError as exc:
        problems.append(("currency", str(exc)))
        return ctx.default_currency


def clean_order(raw: Mapping[str, Any], ctx: ReadContext) -> tuple[Record, list[Problem]]:
    """An order row → `Order` fields, the customer as `customer_ref`.

    Platform payloads may add `lines` (a list of line rows: the order's complete set of lines)
    and `customer` (the buyer as a customer row, created if missing). `refunded_amount` defaults
    to the total for a refunded order and to 0 otherwise, and may not exceed the total.
    """
    problems: list[Problem] = []
    currency = _currency(raw, problems, ctx)
    status_text = _text(raw.get("status"))
    status = ORDER_STATUSES.get(status_text) if status_text else None
    if status is None and status_text:
        status = ORDER_STATUSES.get(status_text.strip().lower())
    if status is None:
        reason = "required" if not status_text or not status_text.strip() else (
            f"unknown status {status_text!r} (paid, partially_refunded, refunded, cancelled, "
            "pending, or a WooCommerce/Shopify status)"
        )
        problems.append(("status", reason))
    total = read_amount(raw.get("total"), "total", problems, currency, required=True)
    rec: Record = {
        "external_id": read_identifier(raw.get("order_id"), "order_id", problems),
        "customer_ref": read_identifier(raw.get("customer_id"), "customer_id", problems),
        "placed_at": read_datetime(raw.get("placed_at"), "placed_at", problems, ctx, required=True),
        "status": status,
        "total": total,
        "currency": currency,
    }
    for key in ("discount", "shipping"):
        if key in raw:
            rec[key] = read_amount(raw[key], key, problems, currency) or Decimal(0)
    refunded = read_amount(raw.get("refunded_amount"), "refunded_amount", problems, currency)
    if refunded is None:
        refunded = total if status == "refunded" and total is not None else Decimal(0)
    elif total is not None and refunded > total:
        problems.append(("refunded_amount", f"more than the total ({refunded} > {total})"))
    rec["refunded_amount"] = refunded
    if "channel" in raw:
        rec["channel"] = read_text(raw["channel"], "channel", problems, max_length=50)
    if raw.get("lines") is not None:
        rec["lines"] = _clean_embedded_lines(raw["lines"], currency, problems, ctx)
    if raw.get("customer") is not None:
        if isinstance(raw["customer"], Mapping):
            buyer, buyer_problems = clean_customer(raw["customer"], ctx)
            problems.extend((f"customer.{name}", reason) for name, reason in buyer_problems)
            if buyer.get("external_id") and buyer["external_id"] != rec["customer_ref"]:
                problems.append(("customer.customer_id", "differs from the order's customer_id"))
            rec["customer"] = buyer
        else:
            problems.append(("customer", "expected an object"))
    return rec, problems


def _clean_embedded_lines(
    value: Any, currency: str, problems: list[Problem], ctx: ReadContext
) -> list[Record]:
    if not isinstance(value, list):
        problems.append(("lines", "expected a list"))
        return []
    lines: list[Record] = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            problems.append((f"lines[{index}]", "expected an object"))
            continue
        line, line_problems = clean_line(item, ctx, currency=currency, embedded=True)
        line["line_no"] = index + 1
        problems.extend((f"lines[{index}].{name}", reason) for name, reason in line_problems)
        lines.append(line)
    return lines


def clean_line(
    raw: Mapping[str, Any], ctx: ReadContext, *, currency: str | None = None,
    embedded: bool = False,
) -> tuple[Record, list[Problem]]:
    """An order line → `OrderLine` fields, with `order_ref`/`product_ref` (external ids).

    A line that carries a product `name` (platform payloads do) creates its product if missing;
    without one the product must already exist. `line_no` is optional in files (lines are then
    numbered in file order within each order).
    """
    problems: list[Problem] = []
    rec: Record = {}
    if not embedded:
        rec["order_ref"] = read_identifier(raw.get("order_id"), "order_id", problems)
    rec["product_ref"] = read_identifier(raw.get("product_id"), "product_id", problems)
    rec["quantity"] = read_count(raw.get("quantity"), "quantity", problems)
    if currency is None:
        currency = ctx.default_currency
    rec["unit_price"] = read_amount(
        raw.get("unit_price"), "unit_price", problems, currency, required=True
    )
    if raw.get("line_no") not in (None, ""):
        rec["line_no"] = read_count(raw["line_no"], "line_no", problems)
    if raw.get("name") not in (None, ""):
        rec["product_name"] = read_text(
            raw["name"], "name", problems, max_length=300, person_name=True
        )
    return rec, problems


def clean_event(raw: Mapping[str, Any], ctx: ReadContext) -> tuple[Record, list[Problem]]:
    """An event → `Event` fields; `properties` is a JSON object (or its text)."""
    problems: list[Problem] = []
    type_ = read_text(raw.get("type"), "type", problems, max_length=64, required=True)
    if type_ and not _EVENT_TYPE.fullmatch(type_):
        problems.append(("type", f"not a slug (letters, digits, _ . : -): {type_!r}"))
    properties = raw.get("properties")
    if properties is None or properties == "":
        properties = {}
    elif isinstance(properties, str):
        try:
            properties = json.loads(properties)
        except ValueError as exc:
            problems.append(("properties", f"not JSON: {exc}"))
            properties = {}
    if not isinstance(properties, dict):
        problems.append(("properties", "expected a JSON object"))
        properties = {}
    properties_json = JsonText(_JSON.encode(properties))
    if len(properties_json.encode()) > MAX_PROPERTIES_BYTES:
        problems.append(("properties", f"larger than {MAX_PROPERTIES_BYTES // 1024} KB"))
    rec: Record = {
        "customer_ref": read_identifier(raw.get("customer_id"), "customer_id", problems),
        "type": type_,
        "occurred_at": read_datetime(
            raw.get("occurred_at"), "occurred_at", problems, ctx, required=True
        ),
        "properties": properties_json,
    }
    key = None
    if raw.get("event_id") not in (None, ""):
        key = read_text(raw["event_id"], "event_id", problems, max_length=255)
    elif ctx.derive_event_keys and not problems:
        key = "sha256:" + hashlib.sha256(
            "\x1f".join(
                [rec["customer_ref"], type_ or "", rec["occurred_at"].isoformat(), properties_json]
            ).encode()
        ).hexdigest()
    rec["idempotency_key"] = key or None
    return rec, problems


def clean_ticket(raw: Mapping[str, Any], ctx: ReadContext) -> tuple[Record, list[Problem]]:
    """A support ticket → `Ticket` fields; answer and resolution may not precede the opening."""
    problems: list[Problem] = []
    opened = read_datetime(raw.get("opened_at"), "opened_at", problems, ctx, required=True)
    rec: Record = {
        "external_id": read_identifier(raw.get("ticket_id"), "ticket_id", problems),
        "customer_ref": read_identifier(raw.get("customer_id"), "customer_id", problems),
        "opened_at": opened,
    }
    for key in ("first_response_at", "resolved_at"):
        if key in raw:
            when = read_datetime(raw[key], key, problems, ctx)
            if when is not None and opened is not None and when < opened:
                problems.append((key, "before opened_at"))
            rec[key] = when
    if "channel" in raw:
        rec["channel"] = read_text(raw["channel"], "channel", problems, max_length=50)
    if "subject" in raw:
        rec["subject"] = read_text(raw["subject"], "subject", problems, max_length=300)
    if "satisfaction" in raw:
        score = None
        if _text(raw["satisfaction"]) not in ("", None):
            score = read_count(raw["satisfaction"], "satisfaction", problems)
            if score is not None and score > 5:
                problems.append(("satisfaction", "must be between 1 and 5"))
                score = None
        rec["satisfaction"] = score
    return rec, problems


CLEANERS: dict[str, Callable[[Mapping[str, Any], ReadContext], tuple[Record, list[Problem]]]] = {
    "customers": clean_customer,
    "products": clean_product,
    "orders": clean_order,
    "order_lines": clean_line,
    "events": clean_event,
    "tickets": clean_ticket,
}
