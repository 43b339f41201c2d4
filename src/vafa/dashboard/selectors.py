"""Reads behind the dashboard pages: each a small, fixed number of queries whatever the shop size."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Max

from vafa.customers.models import Order
from vafa.insights.models import CustomerScore, RfmSegment
from vafa.messaging.models import MessagingSettings

# Segments of customers who used to buy and are slipping away: the ones a win-back can still save.
SAVEABLE_SEGMENTS: tuple[str, ...] = (
    RfmSegment.CANT_LOSE,
    RfmSegment.AT_RISK,
    RfmSegment.ABOUT_TO_SLEEP,
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


def customers_worth_saving(*, limit: int = 20) -> list[SaveableCustomer]:
    """The most valuable customers in the slipping segments, by predicted CLV (two queries).

    The last purchase date is read with a second query on just these customers rather than an
    aggregate joined to every scored row, so the cost does not grow with the shop.
    """
    scores = list(
        CustomerScore.objects.filter(rfm_segment__in=SAVEABLE_SEGMENTS, predicted_clv__isnull=False)
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
