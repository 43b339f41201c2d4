"""Recommended products and social proof for messages, from the shop's own purchases.

`recommendations_refresh` runs the analytics library (`vafa.analytics.recommend`) on the paid
order lines of the last year and stores, per product, its most similar products
(`ProductSimilarity`) and its distinct buyers in the last 30 days (`Product.recent_buyers`), in one
transaction: a message never sees half a refresh. It runs nightly in the worker.

`customer_recommendations` (one customer, for a flow's message) and
`recommendations_for_customers` (a campaign's chunk of customers) answer, with four indexed
queries whatever the number of customers, what a template shows as `recommended_products` (what
the customer's purchases point at, never what they bought, topped up with the month's best
sellers) and `social_proof` ("1,240 customers bought this this month").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from django.db import transaction
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.utils import timezone, translation
from django.utils.translation import ngettext
from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from vafa.analytics.recommend import popular_products, recommend_for, similar_products
from vafa.core.text import localize_digits, localize_number
from vafa.customers.models import PURCHASE_STATUSES, OrderLine, Product, ProductSimilarity

HISTORY_DAYS = 365
POPULAR_DAYS = 30
TOP_SIMILAR = 10


@dataclass(frozen=True)
class RecommendationsRefresh:
    products: int
    pairs: int
    seconds: float


def recommendations_refresh(*, now: datetime | None = None) -> RecommendationsRefresh:
    """Recompute similar products and recent buyers from the last year of paid orders."""
    started = timezone.now()
    now = now or started
    rows = OrderLine.objects.filter(
        order__status__in=PURCHASE_STATUSES, order__placed_at__gt=now - timedelta(days=HISTORY_DAYS),
        order__placed_at__lte=now,
    ).values_list("order__customer_id", "product_id", "order__placed_at")
    lines = pd.DataFrame(list(rows.iterator(chunk_size=10_000)),
                         columns=["customer_id", "product_id", "placed_at"])
    if not lines.empty:
        lines["placed_at"] = pd.to_datetime(lines["placed_at"], utc=True)
    similar = similar_products(lines, top=TOP_SIMILAR)
    popular = (popular_products(lines, as_of=now, days=POPULAR_DAYS) if not lines.empty
               else pd.DataFrame({"product_id": [], "buyers": []}))
    with transaction.atomic():
        ProductSimilarity.objects.all().delete()
        ProductSimilarity.objects.bulk_create(
            [ProductSimilarity(product_id=int(p), similar_id=int(s), score=float(score),
                               co_buyers=int(co))
             for p, s, score, co in similar.itertuples(index=False)],
            batch_size=5_000,
        )
        Product.objects.exclude(recent_buyers=0).update(recent_buyers=0)
        counts = dict(zip(popular["product_id"].astype(int), popular["buyers"].astype(int),
                          strict=True))
        items = list(counts.items())
        for chunk_start in range(0, len(items), 1_000):
            chunk = items[chunk_start:chunk_start + 1_000]
            Product.objects.filter(pk__in=[pk for pk, _ in chunk]).update(
                recent_buyers=Case(*[When(pk=pk, then=Value(n)) for pk, n in chunk],
                                   output_field=IntegerField()),
            )
    return RecommendationsRefresh(
        products=int(similar["product_id"].nunique()) if len(similar) else 0,
        pairs=len(similar), seconds=(timezone.now() - started).total_seconds(),
    )


@db_periodic_task(crontab(minute="40", hour="3"))
def refresh_recommendations() -> RecommendationsRefresh:
    """Every night (UTC): similar products and the month's buyers per product."""
    return recommendations_refresh()


def social_proof(product: Product, *, language: str) -> str:
    """"1,240 customers bought this this month" in the customer's language (empty under 2: one
    buyer is not proof)."""
    buyers = product.recent_buyers
    if buyers < 2:
        return ""
    with translation.override(language):
        text = ngettext(
            "%(count)s customer bought this in the last 30 days",
            "%(count)s customers bought this in the last 30 days", buyers,
        ) % {"count": localize_number(f"{buyers:,}", language)}
    return localize_digits(text, language)


def customer_recommendations(
    customer_id: int, *, language: str, k: int = 3
) -> dict[str, Any]:
    """`recommended_products` (up to `k` dicts: name, product_id, category, price, currency)
    and `social_proof` for the first of them, as message templates use them."""
    return recommendations_for_customers({customer_id: language}, limit=k)[customer_id]


def recommendations_for_customers(
    languages: Mapping[int, str], *, limit: int = 3, scope: QuerySet[Any] | None = None
) -> dict[int, dict[str, Any]]:
    """`customer_recommendations` for many customers at once (a campaign's chunk): for each
    customer id of `languages` (id → the message's language, for the social proof), their
    `recommended_products` and `social_proof`, topped up with the month's best sellers they
    did not buy. Four queries whatever the number of customers; `scope`, a query of the same
    ids (one `customer_id` column), replaces the IN list of ids with a subquery."""
    ids = list(languages)
    if not ids:
        return {}
    lines = OrderLine.objects.filter(
        order__customer_id__in=scope if scope is not None else ids,
        order__status__in=PURCHASE_STATUSES,
    ).order_by()
    bought: dict[int, set[int]] = {customer_id: set() for customer_id in ids}
    for customer_id, product_id in lines.values_list("order__customer_id", "product_id").distinct():
        if customer_id in bought:
            bought[customer_id].add(product_id)
    similar: dict[object, list[tuple[object, float]]] = {}
    if any(bought.values()):
        for product_id, similar_id, score in ProductSimilarity.objects.filter(
            product_id__in=lines.values("product_id")
        ).values_list("product_id", "similar_id", "score"):
            similar.setdefault(product_id, []).append((similar_id, score))
    # Enough best sellers that each customer still has `limit` after their own purchases.
    most = max(len(products) for products in bought.values())
    popular = list(Product.objects.filter(recent_buyers__gt=0).order_by("-recent_buyers", "pk")
                   .values_list("pk", flat=True)[: limit + most])
    chosen = {
        customer_id: recommend_for(
            similar, owned, k=limit,
            fallback=[pk for pk in popular if pk not in owned][:limit],
        )
        for customer_id, owned in bought.items()
    }
    wanted = {pk for products in chosen.values() for pk in products}
    products = Product.objects.select_related("category").in_bulk(wanted) if wanted else {}
    described = {
        pk: {"name": p.name, "product_id": p.external_id,
             "category": p.category.name if p.category else "",
             "price": p.price, "currency": p.currency}
        for pk, p in products.items()
    }
    proofs: dict[tuple[object, str], str] = {}
    found: dict[int, dict[str, Any]] = {}
    for customer_id, picks in chosen.items():
        items = [pk for pk in picks if pk in products]
        proof = ""
        if items:
            key = (items[0], languages[customer_id])
            if key not in proofs:
                proofs[key] = social_proof(products[items[0]], language=key[1])
            proof = proofs[key]
        found[customer_id] = {
            "recommended_products": [dict(described[pk]) for pk in items],
            "social_proof": proof,
        }
    return found
