"""Reads behind the dashboard pages: each a small, fixed number of queries whatever the shop size."""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar

from django.db.models import BooleanField, Count, Max, Min, Prefetch, Q, QuerySet, Sum
from django.db.models.expressions import RawSQL

from vafa.core.errors import NotFoundError
from vafa.core.text import PhoneError, normalize_digits, normalize_name, normalize_phone
from vafa.customers.models import Consent, Customer, Event, Order, Ticket
from vafa.feedback.models import SurveyResponse
from vafa.insights.models import (
    SAVEABLE_SEGMENTS,
    CustomerNote,
    CustomerScore,
    SegmentHistory,
)
from vafa.insights.services import PURCHASE_STATUSES
from vafa.loyalty.models import LedgerEntry, Member, TierChange
from vafa.loyalty.selectors import MemberBalance, entry_reason_labels, member_balance
from vafa.messaging.models import (
    DeliveryLog,
    MessageTemplate,
    MessagingSettings,
    OutboxMessage,
    Suppression,
)


@dataclass(frozen=True)
class SaveableCustomer:
    """One slipping customer with the stored scores and the date of their last purchase."""

    customer_id: int
    name: str
    external_id: str
    segment: str
    r_score: int
    f_score: int
    m_score: int
    p_alive: float | None
    predicted_clv: Decimal | None
    vip: bool
    last_purchase: dt.datetime | None


def shop_name() -> str:
    """The shop's name as set in the messaging settings, or an empty string (one query, no write)."""
    name = MessagingSettings.objects.filter(pk=1).values_list("shop_name", flat=True).first()
    return name or ""


# The slipping segments written into the SQL as constants, not parameters: the connection
# prepares statements it repeats (server-side binding), and PostgreSQL's generic plan for
# `rfm_segment = ANY($1)` cannot prove the partial index's condition, so it walked the whole
# CLV index instead (0.5 s a page at a million customers). The values are our own names.
assert all(segment.isidentifier() for segment in SAVEABLE_SEGMENTS)
_SAVEABLE = RawSQL(
    '"insights_customerscore"."rfm_segment" IN ({})'.format(
        ", ".join(f"'{segment}'" for segment in SAVEABLE_SEGMENTS)),
    (), output_field=BooleanField(),
)


def customers_worth_saving(*, limit: int = 20) -> list[SaveableCustomer]:
    """The most valuable customers in the slipping segments, by predicted CLV (two queries).

    The last purchase date is read with a second query on just these customers rather than an
    aggregate joined to every scored row, so the cost does not grow with the shop. The first
    reads the partial index `score_saveable_clv` in order and stops after `limit` rows.
    """
    scores = list(
        CustomerScore.objects.filter(_SAVEABLE, predicted_clv__isnull=False)
        .select_related("customer")
        .order_by("-predicted_clv", "customer_id")[:limit]
    )
    ids = [score.customer_id for score in scores]
    last = (
        dict(
            Order.objects.filter(customer_id__in=ids)
            .values("customer_id")
            .annotate(last=Max("placed_at"))
            .values_list("customer_id", "last")
        )
        if ids
        else {}
    )
    result = []
    for score in scores:
        customer = score.customer
        name = f"{customer.first_name} {customer.last_name}".strip()
        result.append(
            SaveableCustomer(
                customer_id=customer.pk,
                name=name,
                external_id=customer.external_id,
                segment=score.rfm_segment,
                r_score=score.r_score,
                f_score=score.f_score,
                m_score=score.m_score,
                p_alive=score.p_alive,
                predicted_clv=score.predicted_clv,
                vip=score.vip,
                last_purchase=last.get(customer.pk),
            )
        )
    return result


# ---------------------------------------------------------------------------------------------
# Customers: the search list and the customer 360 page.

PAGE_SIZE = 20
SEARCH_PAGE_SIZE = 25
T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a customer's history, newest first; `number` counts from 1."""

    items: list[T]
    number: int
    has_next: bool

    @property
    def previous_number(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def next_number(self) -> int | None:
        return self.number + 1 if self.has_next else None


def _page(rows: QuerySet[Any], number: int, size: int = PAGE_SIZE) -> Page[Any]:
    """Page `number` of `rows` with one query: one row more than shown says if there is more."""
    number = max(1, number)
    start = (number - 1) * size
    items = list(rows[start : start + size + 1])
    return Page(items[:size], number, len(items) > size)


def customer_search(*, query: str, page: int = 1) -> Page[Customer]:
    """Customers matching `query` (ID, email, phone in any form, or the start of a first or
    last name; Persian and Arabic digits read), newest first, with their scores (one query).

    Only exact matches and name prefixes, so the search stays an index lookup or a bounded
    scan however large the shop; an empty query lists the newest customers.
    """
    text = normalize_name(normalize_digits(query or ""))
    rows = Customer.objects.select_related("score").order_by("-id")
    if text:
        condition = (
            Q(external_id=text) | Q(email__iexact=text)
            | Q(first_name__istartswith=text) | Q(last_name__istartswith=text)
        )
        first, _space, rest = text.partition(" ")
        if rest:
            condition |= Q(first_name__istartswith=first, last_name__istartswith=rest)
        with contextlib.suppress(PhoneError):
            condition |= Q(phone=normalize_phone(text))
        rows = rows.filter(condition)
    return _page(rows, page, SEARCH_PAGE_SIZE)


@dataclass(frozen=True)
class CustomerPages:
    """Which page of each history list to show (from the query string: `orders=2`, …)."""

    orders: int = 1
    events: int = 1
    messages: int = 1
    tickets: int = 1
    surveys: int = 1
    points: int = 1
    notes: int = 1


@dataclass(frozen=True)
class Customer360:
    """Everything the customer page shows, read in a fixed number of queries (about twenty)
    whatever the length of the customer's history: every list is one page."""

    customer: Customer
    score: CustomerScore | None
    orders: Page[Order]
    order_count: int
    revenue: Decimal
    first_order: dt.datetime | None
    last_order: dt.datetime | None
    events: Page[Event]
    messages: Page[OutboxMessage]
    tickets: Page[Ticket]
    surveys: Page[SurveyResponse]
    points: Page[LedgerEntry]
    point_reasons: dict[int, str]  # each shown entry's reason in words (`entry_reason_labels`)
    balance: MemberBalance
    member: Member | None
    tier_changes: list[TierChange]
    segment_history: list[SegmentHistory]
    consents: list[Consent]
    suppressions: list[Suppression]
    notes: Page[CustomerNote]


def customer_360(*, customer_id: int, now: dt.datetime, pages: CustomerPages) -> Customer360:
    """The customer's profile, scores, history and loyalty state; `NotFoundError` if unknown."""
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise NotFoundError(f"no customer {customer_id}")
    score = CustomerScore.objects.filter(customer_id=customer_id).first()
    paid = Order.objects.filter(customer_id=customer_id, status__in=PURCHASE_STATUSES)
    totals = paid.aggregate(
        n=Count("id"), revenue=Sum("total"), first=Min("placed_at"), last=Max("placed_at")
    )
    member = (
        Member.objects.select_related("tier").filter(customer_id=customer_id).first()
    )
    points = _page(
        LedgerEntry.objects.filter(member__customer_id=customer_id).order_by("-pk"),
        pages.points,
    )
    return Customer360(
        customer=customer,
        score=score,
        orders=_page(
            Order.objects.filter(customer_id=customer_id).order_by("-placed_at", "-id"),
            pages.orders,
        ),
        order_count=totals["n"] or 0,
        revenue=totals["revenue"] or Decimal(0),
        first_order=totals["first"],
        last_order=totals["last"],
        events=_page(
            Event.objects.filter(customer_id=customer_id).order_by("-occurred_at", "-id"),
            pages.events,
        ),
        messages=_page(
            OutboxMessage.objects.filter(customer_id=customer_id)
            .prefetch_related(Prefetch("log", queryset=DeliveryLog.objects.order_by("at", "id")))
            .order_by("-created_at", "-id"),
            pages.messages,
        ),
        tickets=_page(
            Ticket.objects.filter(customer_id=customer_id).order_by("-opened_at", "-id"),
            pages.tickets,
        ),
        surveys=_page(
            SurveyResponse.objects.filter(customer_id=customer_id)
            .select_related("survey").order_by("-answered_at", "-id"),
            pages.surveys,
        ),
        points=points,
        point_reasons=entry_reason_labels(points.items),
        balance=member_balance(customer=customer_id, now=now)
        if member is not None
        else MemberBalance(0, 0, 0, 0, 0, 0, (), None),
        member=member,
        tier_changes=list(
            TierChange.objects.filter(member__customer_id=customer_id)
            .select_related("from_tier", "to_tier").order_by("-changed_at", "-id")[:PAGE_SIZE]
        ),
        segment_history=list(
            SegmentHistory.objects.filter(customer_id=customer_id)
            .order_by("-entered_at", "-id")[:PAGE_SIZE]
        ),
        consents=list(Consent.objects.filter(customer_id=customer_id).order_by("channel")),
        suppressions=list(
            Suppression.objects.filter(customer_id=customer_id, lifted_at__isnull=True)
            .order_by("channel")
        ),
        notes=_page(
            CustomerNote.objects.filter(customer_id=customer_id).order_by("-created_at", "-id"),
            pages.notes,
        ),
    )


@dataclass(frozen=True)
class TemplateChoice:
    """A message template a team member can send from the customer page: key and channel
    (the language is the customer's, chosen when the message is made), and a label to show:
    its subject in the reader's language when it has one, else its key."""

    key: str
    channel: str
    label: str

    @property
    def value(self) -> str:
        return f"{self.key}|{self.channel}"


def sendable_templates(*, language: str) -> list[TemplateChoice]:
    """Every (template key, channel) pair the shop has written (one query)."""
    rows = MessageTemplate.objects.order_by("key", "channel", "language").values_list(
        "key", "channel", "language", "subject"
    )
    labels: dict[tuple[str, str], str] = {}
    for key, channel, template_language, subject in rows:
        if (key, channel) not in labels or (template_language == language and subject):
            labels[(key, channel)] = subject or key
    return [TemplateChoice(key, channel, label) for (key, channel), label in labels.items()]
