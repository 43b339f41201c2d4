"""The batched path into the outbox: render and enqueue thousands of messages per second.

`message_enqueue` is right for one message (a flow step) but reads the customer's loyalty
balance, last order and existing row with a few queries per message; a campaign to 100,000
customers would spend minutes in round trips. Here the same work is done per *batch*:

1. one query finds which dedupe keys already exist (they are skipped: a re-run after a crash
   or a resume enqueues only what is missing);
2. `BatchContext` reads every customer's member row, available points and last order (with
   its lines) in a fixed number of queries, and builds for each message exactly the context
   `message_context` would;
3. each message is rendered with the template compiled once (the sandbox caches it), the
   control group is decided with the same keyed hash as `message_enqueue`;
4. one `bulk_create(..., ignore_conflicts=True)` inserts the rows; the unique `dedupe_key`
   makes a concurrent or repeated insert harmless.

The semantics are `message_enqueue`'s: consent, suppressions, quiet hours and caps are checked
when the message is sent, not here; a marketing message to a held-out customer is stored as
`held_out`; a template error stops that one message (it is reported, never enqueued broken).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum
from operator import attrgetter
from typing import Any

from django.db import connection, transaction
from django.db.models import OuterRef, Q, Subquery, Sum

from vafa.core.errors import ValidationError
from vafa.customers.models import PURCHASE_STATUSES, Channel, Customer, Order
from vafa.loyalty.models import Lot, Member
from vafa.messaging import links, tokens
from vafa.messaging.compose import RTL_LANGUAGES, order_summary, render_message
from vafa.messaging.errors import TemplateError
from vafa.messaging.measurement import holdout_key, is_held_out
from vafa.messaging.models import MessageKind, MessageTemplate, OutboxMessage, Status, Topic
from vafa.messaging.policy import customer_zone
from vafa.messaging.selectors import messaging_config, messaging_settings
from vafa.messaging.services import dedupe_key_for
from vafa.messaging.templating import plain, plain_list


class _Link:
    """A link of one URL name with the token as its only argument, its two halves found once
    per batch (`links.token_halves`); gives what `vafa.messaging.links` gives."""

    def __init__(self, site_url: str, name: str) -> None:
        before, self.after = links.token_halves(name)
        self.before = links.absolute(site_url, before)

    def __call__(self, token: str) -> str:
        return f"{self.before}{token}{self.after}"


@dataclass
class BatchContext:
    """What templates may use, read for a whole batch of customers at once.

    `for_message()` returns the same dictionary `message_context()` builds for one customer
    (a test compares the two), so a campaign message reads exactly like a flow message.
    """

    site_url: str
    now: datetime
    points: dict[int, int] = field(default_factory=dict)
    tiers: dict[int, str] = field(default_factory=dict)
    last_orders: dict[int, dict[str, Any] | None] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)
    links: dict[str, _Link] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        customers: Sequence[Customer],
        *,
        now: datetime,
        site_url: str,
        extra: Mapping[str, Any] | None = None,
    ) -> BatchContext:
        """Read the batch's loyalty and order data: five queries whatever its size."""
        batch = cls(site_url=site_url, now=now)
        batch.links = {
            "unsubscribe": _Link(site_url, "messaging:unsubscribe"),
            "preferences": _Link(site_url, "messaging:preferences"),
        }
        ids = [c.pk for c in customers]
        extra = dict(extra or {})
        batch.shared = {
            "recommended_products": plain_list(extra.pop("recommended_products", None)),
            "social_proof": str(extra.pop("social_proof", "") or ""),
            **{key: plain(value) for key, value in extra.items()},
        }
        if not ids:
            return batch
        members = Member.objects.filter(customer_id__in=ids).values_list(
            "customer_id", "tier__name"
        )
        batch.tiers = {customer_id: tier or "" for customer_id, tier in members}
        # `member_balance(...).available`: unexpired lots whose return window has passed.
        batch.points = dict(
            Lot.objects.filter(
                member__customer_id__in=ids, remaining__gt=0, available_at__lte=now
            )
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
            .order_by()
            .values("member__customer_id")
            .annotate(total=Sum("remaining"))
            .values_list("member__customer_id", "total")
        )
        latest = (
            Order.objects.filter(customer=OuterRef("pk"), status__in=PURCHASE_STATUSES)
            .order_by("-placed_at", "-id")
            .values("id")[:1]
        )
        order_ids = dict(
            Customer.objects.filter(pk__in=ids)
            .annotate(last_order_id=Subquery(latest))
            .filter(last_order_id__isnull=False)
            .values_list("pk", "last_order_id")
        )
        orders = {
            order.pk: order
            for order in Order.objects.filter(pk__in=list(order_ids.values())).prefetch_related(
                "lines__product"
            )
        }
        zones = {c.pk: customer_zone(c.timezone) for c in customers}
        batch.last_orders = {
            customer_id: order_summary(orders[order_id], zones[customer_id])
            for customer_id, order_id in order_ids.items()
            if order_id in orders
        }
        return batch

    def for_message(self, customer: Customer, *, channel: str, language: str) -> dict[str, Any]:
        """The template context of one message to `customer` on `channel` in `language`."""
        zone = customer_zone(customer.timezone)
        token = tokens.recipient_token(customer_id=customer.pk, channel=channel)
        context: dict[str, Any] = {
            "customer": {
                "name": customer.full_name or customer.first_name,
                "first_name": customer.first_name,
                "last_name": customer.last_name,
                "city": customer.city,
            },
            "last_order": self.last_orders.get(customer.pk),
            "points": self.points.get(customer.pk, 0) if customer.pk in self.tiers else 0,
            "tier": self.tiers.get(customer.pk, ""),
            "recommended_products": self.shared["recommended_products"],
            "social_proof": self.shared["social_proof"],
            "unsubscribe_url": self.links["unsubscribe"](token),
            "preferences_url": self.links["preferences"](
                tokens.recipient_token(customer_id=customer.pk, channel=channel)
            ),
            "shop": {"url": self.site_url},
            "lang": language,
            "dir": "rtl" if language in RTL_LANGUAGES else "ltr",
            "today": self.now.astimezone(zone).date(),
        }
        for key, value in self.shared.items():
            if key not in ("recommended_products", "social_proof"):
                context[key] = value
        return context


@dataclass(frozen=True)
class BulkItem:
    """One message of a batch: to whom, on which channel, with which template (already chosen
    in the customer's language), and its place in the dedupe key."""

    customer: Customer
    channel: str
    template: MessageTemplate
    step: str = ""
    occurrence: str = ""
    variant: str = ""
    data: Mapping[str, Any] | None = None


@dataclass
class PreparedBatch:
    """Rendered, unsaved outbox rows; `existing` counts items already in the outbox and
    `errors` maps a customer id to the template error that stopped their message."""

    rows: list[OutboxMessage]
    existing: int = 0
    held_out: int = 0
    errors: dict[int, str] = field(default_factory=dict)


def outbox_batch_prepare(
    *,
    items: Sequence[BulkItem],
    kind: str,
    source: str,
    now: datetime,
    topic: str = "",
    due_at: datetime | None = None,
    expires_at: datetime | None = None,
    control_percent: Decimal | int | None = None,
    extra_context: Mapping[str, Any] | None = None,
) -> PreparedBatch:
    """Render the messages of `items` that are not in the outbox yet, without saving them."""
    if kind not in MessageKind.values:
        raise ValidationError(f"kind must be one of {', '.join(MessageKind.values)}", field="kind")
    if topic and topic not in Topic.values:
        raise ValidationError(f"topic must be one of {', '.join(Topic.values)}", field="topic")
    if not source:
        raise ValidationError("a message needs its source flow or campaign", field="source")
    keyed = [
        (
            dedupe_key_for(
                customer_id=item.customer.pk, source=source, step=item.step,
                occurrence=item.occurrence,
            ),
            item,
        )
        for item in items
    ]
    for _, item in keyed:
        if item.channel not in Channel.values or item.template.channel != item.channel:
            raise ValidationError("the template is for another channel", field="template")
    existing = set(
        OutboxMessage.objects.filter(dedupe_key__in=[key for key, _ in keyed]).values_list(
            "dedupe_key", flat=True
        )
    )
    todo = [(key, item) for key, item in keyed if key not in existing]
    batch = PreparedBatch(rows=[], existing=len(keyed) - len(todo))
    if not todo:
        return batch
    env = messaging_config()
    policy = messaging_settings()
    percent = policy.control_percent if control_percent is None else Decimal(control_percent)
    hash_key = holdout_key(env.holdout_key)
    contexts = BatchContext.load(
        [item.customer for _, item in todo], now=now, site_url=env.site_url, extra=extra_context
    )
    seen: set[str] = set()
    for key, item in todo:
        if key in seen:  # the same message twice in one batch: the first one wins
            continue
        seen.add(key)
        template = item.template
        context = contexts.for_message(
            item.customer, channel=item.channel, language=template.language
        )
        try:
            rendered = render_message(
                template=template, context=context, kind=kind, dedupe_key=key,
                site_url=env.site_url, track=policy.track_links,
            )
        except TemplateError as exc:
            batch.errors[item.customer.pk] = str(exc)
            continue
        status, reason = Status.QUEUED, ""
        if kind == MessageKind.MARKETING and percent > 0 and is_held_out(
            customer_id=item.customer.pk, salt=source, percent=percent, key=hash_key
        ):
            status, reason = Status.HELD_OUT, "control group: would have sent"
            batch.held_out += 1
        data = {**(item.data or {}), "unsubscribe_url": context["unsubscribe_url"]}
        if item.variant:
            data["variant"] = item.variant
        batch.rows.append(
            OutboxMessage(
                customer=item.customer, channel=item.channel, kind=kind, topic=topic,
                language=template.language, source=source, step=item.step,
                occurrence=item.occurrence, variant=item.variant[:20], dedupe_key=key,
                template=template, subject=rendered.subject[:300], body_text=rendered.text,
                body_html=rendered.html, data=data, status=status, status_reason=reason,
                due_at=due_at or now, expires_at=expires_at, created_at=now, updated_at=now,
            )
        )
    return batch


def _insert_sql(fields: Sequence[Any]) -> str:
    table = connection.ops.quote_name(OutboxMessage._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    unique = connection.ops.quote_name(str(OutboxMessage._meta.get_field("dedupe_key").column))
    # Both SQLite (3.24+) and PostgreSQL skip a row whose unique key exists this way.
    return (
        f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) "
        f"ON CONFLICT ({unique}) DO NOTHING"
    )


def outbox_batch_insert(batch: PreparedBatch, *, chunk_size: int = 1000) -> int:
    """Insert the prepared rows; a row whose dedupe key appeared meanwhile (another process)
    is skipped by the database. Returns how many rows were offered.

    One `executemany` instead of `bulk_create`: the ORM's per-field insert compilation cost
    more than rendering the message. Values go through each field's own `get_db_prep_save`
    where the database needs a conversion (datetimes, JSON), so rows read back exactly as the
    ORM writes them (a test compares the two)."""
    if not batch.rows:
        return 0
    fields = [f for f in OutboxMessage._meta.concrete_fields if not f.primary_key]
    converted = [
        (index, f) for index, f in enumerate(fields)
        if f.get_internal_type() in {"DateTimeField", "JSONField", "DecimalField"}
    ]
    values_of = attrgetter(*(f.attname for f in fields))  # every column of a row in one call
    # A batch shares a handful of moments (now, the due time): convert each value once.
    prepared: dict[tuple[int, Any], Any] = {}
    rows = []
    for message in batch.rows:
        # TextChoices members: the driver gets the plain value.
        row = [v.value if isinstance(v, Enum) else v for v in values_of(message)]
        for index, f in converted:
            value = row[index]
            if isinstance(value, datetime):
                key = (index, value)
                if key not in prepared:
                    prepared[key] = f.get_db_prep_save(value, connection)
                row[index] = prepared[key]
            else:
                row[index] = f.get_db_prep_save(value, connection)
        rows.append(row)
    sql = _insert_sql(fields)
    with connection.cursor() as cursor:
        for start in range(0, len(rows), chunk_size):
            cursor.executemany(sql, rows[start : start + chunk_size])
    return len(batch.rows)


@dataclass(frozen=True)
class BulkEnqueued:
    """What `messages_enqueue_bulk` did: rows created (held-out ones included), items that
    were already in the outbox, and the customers whose message a template error stopped."""

    created: int
    existing: int
    held_out: int
    errors: Mapping[int, str]


def messages_enqueue_bulk(
    *,
    items: Sequence[BulkItem],
    kind: str,
    source: str,
    now: datetime,
    topic: str = "",
    due_at: datetime | None = None,
    expires_at: datetime | None = None,
    control_percent: Decimal | int | None = None,
    extra_context: Mapping[str, Any] | None = None,
) -> BulkEnqueued:
    """`message_enqueue` for a batch: each message created once, rendered in the customer's
    language, held out when its customer is in the control group of `source`."""
    batch = outbox_batch_prepare(
        items=items, kind=kind, source=source, now=now, topic=topic, due_at=due_at,
        expires_at=expires_at, control_percent=control_percent, extra_context=extra_context,
    )
    with transaction.atomic():
        created = outbox_batch_insert(batch)
    return BulkEnqueued(
        created=created, existing=batch.existing, held_out=batch.held_out, errors=batch.errors
    )
