"""Run the customer-base analysis on the shop's database and keep the results.

The analytics library knows nothing about Django: this module reads the orders into a
transactions table, calls `vafa.analytics.pipeline.run_analysis`, and stores the summary and the
per-customer scores in one transaction, so pages always see one complete run.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.models import F, Max
from django.utils import timezone

from vafa.analytics.errors import AnalyticsError
from vafa.analytics.metrics import CALENDAR_PERIODS, CalendarPeriod
from vafa.analytics.pipeline import AnalysisOptions, run_analysis
from vafa.core.errors import ConflictError, VafaError, ValidationError
from vafa.core.money import quantize
from vafa.customers.models import PURCHASE_STATUSES, Change, Customer, Order
from vafa.feedback.models import SurveyInvitation, SurveyResponse
from vafa.insights.models import (
    GOAL_METRICS,
    AnalysisRun,
    CustomerNote,
    CustomerScore,
    CustomerStats,
    Goal,
    SegmentHistory,
)
from vafa.loyalty.selectors import liability_report, referral_rate

logger = logging.getLogger(__name__)

# The survey kinds the analytics library scores (its `SURVEY_SCALES`).
SURVEY_KINDS = ("nps", "csat", "ces")

# Orders that are purchases: a partially refunded order still counts, for what was kept.
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


def report_period() -> CalendarPeriod:
    """The period the KPIs compare (`VAFA_REPORT_PERIOD`), checked against the library's."""
    period = str(settings.VAFA_REPORT_PERIOD)
    if period not in CALENDAR_PERIODS:
        raise ImproperlyConfigured(
            f"VAFA_REPORT_PERIOD must be one of {', '.join(CALENDAR_PERIODS)}, not {period!r}"
        )
    return cast(CalendarPeriod, period)


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
        options = AnalysisOptions(as_of=as_of, currency=currency, tz=settings.TIME_ZONE,
                                  source="database", period=report_period())
        answers, invitations = survey_frames()
        try:
            result = run_analysis(transactions, options=options, surveys=answers,
                                  invitations=invitations, progress=progress)
        except AnalyticsError as exc:
            if answers is None:
                raise
            # Survey data the metrics refuse must not cost the shop its whole analysis.
            logger.warning("analysis run %s: surveys left out: %s", run.pk, exc)
            result = run_analysis(transactions, options=options, progress=progress)
    except AnalyticsError as exc:
        logger.warning("analysis run %s failed: %s", run.pk, exc)
        run.status = AnalysisRun.Status.FAILED
        run.error = str(exc)
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "error", "finished_at"])
        return run
    try:
        platform = platform_kpis(result.summary, now=timezone.now())
    except (VafaError, ValueError, KeyError) as exc:  # the scores matter more than these cards
        logger.warning("analysis run %s: platform KPIs left out: %s", run.pk, exc)
        platform = {}
    summary = {**result.summary, "platform": platform}
    # Read (and settle) the marks before the transaction: waiting for other writers while
    # holding this one's locks could wait on a writer that waits on us.
    marks = stats_marks_read()
    with transaction.atomic():
        stored = _store_scores(run, result.customers, currency)
        customer_stats_refresh(run=run, now=timezone.now(), marks=marks)
        run.status = AnalysisRun.Status.DONE
        run.summary = summary
        run.as_of = dt.date.fromisoformat(result.summary["as_of"])
        run.customers = stored
        run.finished_at = timezone.now()
        run.save()
    return run


# How long reading the marks waits for the writers that were running (see `stats_marks_read`).
SETTLE_SECONDS = 60.0

# The transactions of other sessions on this database running now (PostgreSQL; their ids).
_RUNNING_WRITERS = """
    SELECT s.x::text FROM pg_snapshot_xip(pg_current_snapshot()) AS s(x)
    JOIN pg_stat_activity a ON a.backend_xid = xid(s.x)
    WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
"""
_STILL_RUNNING = """
    SELECT s.x::text FROM unnest(%s::xid8[]) AS s(x) WHERE pg_xact_status(s.x) = 'in progress'
"""


def stats_marks_read(*, settle_seconds: float = SETTLE_SECONDS) -> tuple[int, int]:
    """What the purchase totals about to be read will cover: the last id of the change feed
    and the last customer id. Anything after them counts as unsettled in segment filters
    (`vafa.insights.segments`), so both must be ids below which nothing is still to come.

    On PostgreSQL ids come from sequences, so a transaction still running can hold an id
    below the highest one already committed: its order and change would be missing from the
    totals, yet count as settled, until the next run. So the marks are read first, and then
    this waits until every transaction that was running on the database has ended (up to
    `settle_seconds`; after that the run goes on and logs which were still running). Whatever
    commits afterwards gets a higher id. SQLite has one writer at a time, whose ids are above
    everything committed: nothing to wait for.
    """
    last_change = Change.objects.aggregate(last=Max("id"))["last"] or 0
    last_customer = Customer.objects.aggregate(last=Max("id"))["last"] or 0
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_RUNNING_WRITERS)
            running = [row[0] for row in cursor.fetchall()]
            deadline = time.monotonic() + settle_seconds
            while running:
                cursor.execute(_STILL_RUNNING, [running])
                running = [row[0] for row in cursor.fetchall()]
                if running and time.monotonic() >= deadline:
                    logger.warning(
                        "purchase totals: transactions %s still running after %.0f s; a change "
                        "they commit later shows at the next run", ", ".join(running),
                        settle_seconds,
                    )
                    break
                if running:
                    time.sleep(0.05)
    return last_change, last_customer


def customer_stats_refresh(
    *, run: AnalysisRun, now: dt.datetime, marks: tuple[int, int] | None = None
) -> int:
    """Replace every customer's purchase totals (`CustomerStats`: number of purchases, kept
    spend, last purchase) with ones read from the orders now, in two set-based statements, and
    mark on `run` what they cover (`stats_at`, `stats_last_customer`, `stats_last_change`;
    `marks` as `stats_marks_read` gives them, read now when not given).

    Every customer gets a row, zeros for those who never bought, so a segment filter can read
    the table alone for everyone it covers. Called inside the refresh's transaction: pages see
    the old totals or the new ones, never a mix. Returns the number of rows written.
    """
    stats = CustomerStats._meta.db_table
    customers = Customer._meta.db_table
    orders = Order._meta.db_table
    statuses = [str(status) for status in PURCHASE_STATUSES]
    placeholders = ", ".join(["%s"] * len(statuses))
    run.stats_last_change, run.stats_last_customer = marks or stats_marks_read()
    run.stats_at = now
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {stats}")
        cursor.execute(
            f"""INSERT INTO {stats} (customer_id, order_count, total_spent, last_purchase_at,
                    computed_at)
                SELECT c.id, COALESCE(p.n, 0), COALESCE(p.spent, 0), p.last, %s
                FROM {customers} c LEFT JOIN (
                    SELECT customer_id, COUNT(*) AS n, SUM(total - refunded_amount) AS spent,
                           MAX(placed_at) AS last
                    FROM {orders} WHERE status IN ({placeholders}) GROUP BY customer_id
                ) p ON p.customer_id = c.id
                WHERE c.id <= %s""",
            [connection.ops.adapt_datetimefield_value(now), *statuses,
             run.stats_last_customer],
        )
        written = cursor.rowcount
    run.save(update_fields=["stats_at", "stats_last_customer", "stats_last_change"])
    return int(written)


def survey_frames() -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """Scored NPS/CSAT/CES answers and the invitations sent, as the metrics read them
    (`customer_id, kind, score, answered_at` and `customer_id, kind, sent_at`); None for each
    when there is none, so a shop without surveys gets no survey KPIs rather than zeros."""
    kinds = list(SURVEY_KINDS)
    answers = list(
        SurveyResponse.objects.filter(survey__kind__in=kinds, score__isnull=False)
        .values_list("customer_id", "survey__kind", "score", "answered_at")
        .order_by().iterator(chunk_size=20_000)
    )
    if not answers:
        return None, None
    sent = list(
        SurveyInvitation.objects.filter(survey__kind__in=kinds)
        .values_list("customer_id", "survey__kind", "created_at")
        .order_by().iterator(chunk_size=20_000)
    )
    answer_frame = pd.DataFrame(answers, columns=["customer_id", "kind", "score", "answered_at"])
    sent_frame = pd.DataFrame(sent, columns=["customer_id", "kind", "sent_at"]) if sent else None
    return answer_frame, sent_frame


def platform_kpis(summary: dict[str, Any], *, now: dt.datetime) -> dict[str, Any]:
    """Indicators the analytics library cannot see, measured when the run is stored so pages
    never compute them on request: the referral rate in the run's current and previous
    period, and the loyalty programme's liability (points outstanding, their cost, expiring
    within 30 days, breakage over the last twelve months). Numbers as JSON strings/ints."""
    zone = ZoneInfo(settings.TIME_ZONE)
    kpis = summary.get("kpis") or {}
    referral: dict[str, str | int | None] = {}
    for name in ("current", "previous"):
        bounds = kpis.get(f"{name}_period")
        if not isinstance(bounds, dict):
            continue
        start = dt.datetime.combine(dt.date.fromisoformat(bounds["start"]), dt.time(), zone)
        end = dt.datetime.combine(dt.date.fromisoformat(bounds["end"]) + dt.timedelta(days=1),
                                  dt.time(), zone)
        rate = referral_rate(start=start, end=end)
        referral[name] = None if rate.rate is None else str(rate.rate * 100)
        referral[f"{name}_new_customers"] = rate.new_customers
    liability = liability_report(now=now, months=12)
    return {
        "measured_at": now.isoformat(),
        "referral_rate": referral,
        "liability": {
            "currency": liability.currency,
            "outstanding_points": liability.outstanding_points,
            "outstanding_cost": str(liability.outstanding_cost),
            "expiring_30": liability.expiring_30,
            "debt_points": liability.debt_points,
            "breakage_rate": None if liability.breakage_rate is None
            else str(liability.breakage_rate * 100),
        },
    }


def _store_scores(run: AnalysisRun, scores: pd.DataFrame, currency: str) -> int:
    """Upsert one score per customer and drop scores of customers this run did not see.

    A customer whose RFM segment differs from the stored one (or who had none) gets a
    `SegmentHistory` row, so their page can show how they moved between segments.
    """
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
            stored += _upsert(batch, run, computed_at)
            batch = []
    stored += _upsert(batch, run, computed_at)
    CustomerScore.objects.exclude(run=run).delete()
    return stored


def _upsert(batch: list[CustomerScore], run: AnalysisRun, computed_at: dt.datetime) -> int:
    """Write one batch of scores, with a history row for each customer who changed segment."""
    if not batch:
        return 0
    before = dict(
        CustomerScore.objects.filter(customer_id__in=[score.customer_id for score in batch])
        .values_list("customer_id", "rfm_segment")
    )
    SegmentHistory.objects.bulk_create(
        SegmentHistory(customer_id=score.customer_id, run=run, rfm_segment=score.rfm_segment,
                       previous_segment=before.get(score.customer_id, ""),
                       entered_at=computed_at)
        for score in batch
        if before.get(score.customer_id) != score.rfm_segment
    )
    CustomerScore.objects.bulk_create(batch, update_conflicts=True, unique_fields=["customer"],
                                      update_fields=SCORE_FIELDS)
    return len(batch)


def _float(value: Any) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _money(value: Any, currency: str) -> Decimal | None:
    number = _float(value)
    return None if number is None else quantize(Decimal(repr(number)), currency)


# ---------------------------------------------------------------------------------------------
# Notes and goals: the team's own records beside the scores.


def customer_note_add(
    *, customer: Customer | int, body: str, author: str, idempotency_key: str, now: dt.datetime
) -> CustomerNote:
    """Leave a note on a customer's page. The same `idempotency_key` (one per rendered form)
    returns the first note instead of writing a second, so a double submit writes once."""
    body = (body or "").strip()
    if not body:
        raise ValidationError("a note cannot be empty", field="body")
    if not (author or "").strip():
        raise ValidationError("a note needs to say who wrote it", field="author")
    if not idempotency_key:
        raise ValidationError("a note needs an idempotency key", field="idempotency_key")
    customer_id = customer if isinstance(customer, int) else customer.pk
    note, _created = CustomerNote.objects.get_or_create(
        idempotency_key=idempotency_key[:255],
        defaults={"customer_id": customer_id, "body": body[:5000], "author": author.strip()[:150],
                  "created_at": now},
    )
    if note.customer_id != customer_id:
        raise ConflictError("this form was already used for another customer",
                            field="idempotency_key")
    return note


def goal_create(
    *,
    name: str,
    metric: str,
    target: Decimal,
    deadline: dt.date,
    owner: str,
    now: dt.datetime,
    notes: str = "",
) -> Goal:
    """Set a SMART goal on one of the stored KPI series (`GOAL_METRICS`), starting today, with
    the metric's latest value as its baseline (None before any analysis run measured it)."""
    if metric not in GOAL_METRICS:
        raise ValidationError(f"unknown metric {metric!r}", field="metric")
    if not (name or "").strip():
        raise ValidationError("a goal needs a name", field="name")
    start = timezone.localdate(now)
    if deadline <= start:
        raise ValidationError("the deadline must be after today", field="deadline")
    if not target.is_finite():
        raise ValidationError("the target must be a number", field="target")
    return Goal.objects.create(
        name=name.strip()[:200], metric=metric, target=target, baseline=_latest_value(metric),
        start=start, deadline=deadline, owner=owner[:150], notes=notes, created_at=now,
    )


def _latest_value(metric: str) -> Decimal | None:
    run = AnalysisRun.objects.filter(status=AnalysisRun.Status.DONE).first()
    points = ((run.summary or {}).get("kpis") or {}).get("series", {}).get(metric) if run else None
    values = [point.get("value") for point in points or [] if point.get("value") is not None]
    return Decimal(str(values[-1])).quantize(Decimal("0.0001")) if values else None
