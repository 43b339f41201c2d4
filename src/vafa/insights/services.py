"""Run the customer-base analysis on the shop's database and keep the results.

The analytics library knows nothing about Django: this module reads the orders into a
transactions table, calls `vafa.analytics.pipeline.run_analysis`, and stores the summary and the
per-customer scores in one transaction, so pages always see one complete run.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from vafa.analytics.errors import AnalyticsError
from vafa.analytics.pipeline import AnalysisOptions, run_analysis
from vafa.core.money import quantize
from vafa.customers.models import Customer, Order, OrderStatus
from vafa.insights.models import AnalysisRun, CustomerScore

logger = logging.getLogger(__name__)

# Orders that are purchases: a partially refunded order still counts, for what was kept.
PURCHASE_STATUSES = [OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED]
SCORE_FIELDS = ["run", "rfm_segment", "r_score", "f_score", "m_score", "loyalty_label", "p_alive",
                "expected_purchases", "predicted_clv", "retention_spend_ceiling", "vip",
                "computed_at"]
BATCH = 2000


def orders_as_transactions() -> pd.DataFrame:
    """The shop's purchases as the analytics library's transactions table.

    Amount = total − refunded amount, so a partial refund lowers the value of the order.
    """
    rows = (
        Order.objects.filter(status__in=PURCHASE_STATUSES)
        .annotate(kept=F("total") - F("refunded_amount"))
        .values_list("customer__external_id", "placed_at", "kept", "discount", "external_id")
        .order_by()
        .iterator(chunk_size=20_000)
    )
    frame = pd.DataFrame.from_records(
        rows, columns=["customer_id", "placed_at", "amount", "discount", "order_id"]
    )
    if frame.empty:
        return frame
    frame["placed_at"] = pd.to_datetime(frame["placed_at"], utc=True)
    frame["amount"] = frame["amount"].astype("float64")
    frame["discount"] = frame["discount"].astype("float64")
    return frame


def insights_refresh(
    *,
    as_of: dt.date | None = None,
    triggered_by: str = "",
    progress: Callable[[str], None] | None = None,
) -> AnalysisRun:
    """Analyse every order and replace the stored scores. A failed run keeps the old scores."""
    run = AnalysisRun.objects.create(as_of=as_of, triggered_by=triggered_by)
    currency = settings.VAFA_DEFAULT_CURRENCY
    try:
        transactions = orders_as_transactions()
        if transactions.empty:
            raise AnalyticsError("the shop has no paid orders yet: import orders first")
        result = run_analysis(
            transactions,
            options=AnalysisOptions(as_of=as_of, currency=currency, tz=settings.TIME_ZONE,
                                    source="database"),
            progress=progress,
        )
    except AnalyticsError as exc:
        logger.warning("analysis run %s failed: %s", run.pk, exc)
        run.status = AnalysisRun.Status.FAILED
        run.error = str(exc)
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "error", "finished_at"])
        return run
    with transaction.atomic():
        stored = _store_scores(run, result.customers, currency)
        run.status = AnalysisRun.Status.DONE
        run.summary = result.summary
        run.as_of = dt.date.fromisoformat(result.summary["as_of"])
        run.customers = stored
        run.finished_at = timezone.now()
        run.save()
    return run


def _store_scores(run: AnalysisRun, scores: pd.DataFrame, currency: str) -> int:
    """Upsert one score per customer and drop scores of customers this run did not see."""
    ids = dict(Customer.objects.filter(external_id__in=list(scores.index))
               .values_list("external_id", "pk"))
    computed_at = timezone.now()
    batch: list[CustomerScore] = []
    stored = 0
    for external_id, row in scores.iterrows():
        pk = ids.get(str(external_id))
        if pk is None:
            continue
        batch.append(CustomerScore(
            customer_id=pk, run=run, rfm_segment=row.rfm_segment, r_score=int(row.r_score),
            f_score=int(row.f_score), m_score=int(row.m_score), loyalty_label=row.loyalty_label,
            p_alive=_float(row.p_alive), expected_purchases=_float(row.expected_purchases),
            predicted_clv=_money(row.clv, currency),
            retention_spend_ceiling=_money(row.retention_spend_ceiling, currency),
            vip=bool(row.vip), computed_at=computed_at,
        ))
        if len(batch) >= BATCH:
            stored += _upsert(batch)
            batch = []
    stored += _upsert(batch)
    CustomerScore.objects.exclude(run=run).delete()
    return stored


def _upsert(batch: list[CustomerScore]) -> int:
    if batch:
        CustomerScore.objects.bulk_create(batch, update_conflicts=True, unique_fields=["customer"],
                                          update_fields=SCORE_FIELDS)
    return len(batch)


def _float(value: Any) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _money(value: Any, currency: str) -> Decimal | None:
    number = _float(value)
    return None if number is None else quantize(Decimal(repr(number)), currency)
