"""Staff pages of the feedback app, inside the dashboard's frame: the churn-factors view (K4:
why customers leave, by segment and over time, beside what detractors write) and the support
signals (A8: response and resolution times, ticket ratings).

Thin: read through the selectors, turn values into display rows, render. Numbers and dates are
formatted by the dashboard's template tags in the active language.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any, Literal

import jdatetime
import pandas as pd
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from vafa.core.roles import MARKETER, SUPPORT, role_required
from vafa.core.text import localize_digits
from vafa.dashboard.selectors import shop_name
from vafa.feedback import selectors, support
from vafa.feedback.models import EXIT_SURVEY, Survey, Trigger, pick_language
from vafa.insights.models import RfmSegment

HISTORY_DAYS = 366
"""Both pages look at the last year."""
CHURN_GROUPINGS = ("segment", "tier", "trigger", "channel", "city")


def _language() -> str:
    return (get_language() or "en").split("-")[0]


def _period(language: str) -> Literal["M", "JM"]:
    """Persian merchants read Jalali months; everyone else Gregorian ones."""
    return "JM" if language == "fa" else "M"


def month_label(start: date, language: str) -> str:
    """`1405/01` (Jalali, Persian digits) in fa, `2026-03` elsewhere (Arabic-Indic in ar)."""
    if language == "fa":
        text = jdatetime.date.fromgregorian(date=start).strftime("%Y/%m")
    else:
        text = f"{start:%Y-%m}"
    return localize_digits(text, language)


def _reason_labels(language: str) -> dict[str, str]:
    survey = Survey.objects.filter(slug=EXIT_SURVEY).first()
    labels: dict[str, str] = {}
    for question in survey.questions if survey is not None else []:
        if question.get("id") == "reason":
            for choice in question.get("choices", []):
                labels[str(choice["value"])] = pick_language(choice.get("label"), language)
    return labels


def _group_label(by: str, key: str) -> str:
    if not key:
        return _("Unknown")
    if by == "segment" and key in RfmSegment.values:
        return str(RfmSegment(key).label)
    if by == "trigger" and key in Trigger.values:
        return str(Trigger(key).label)
    return key


@role_required(MARKETER, SUPPORT)
@require_GET
def churn_factors(request: HttpRequest) -> HttpResponse:
    """Exit reasons counted by segment (or tier, trigger, channel, city) and per month, with
    the words detractors use most, per NPS score band."""
    language = _language()
    by = request.GET.get("by", "segment")
    if by not in CHURN_GROUPINGS:
        by = "segment"
    since = timezone.now() - timedelta(days=HISTORY_DAYS)
    factors = selectors.churn_factors(by=by, period=_period(language), since=since)
    labels = _reason_labels(language)
    terms = selectors.text_terms_by_band(kind="nps", since=since, top=10)
    reasons = [(code, labels.get(code, code)) for code in factors.reasons]
    groupings = [
        ("segment", _("RFM segment")), ("tier", _("Loyalty tier")),
        ("trigger", _("Trigger")), ("channel", _("Channel")), ("city", _("City")),
    ]
    context: dict[str, Any] = {
        "shop_name": shop_name(),
        "active": "churn_factors",
        "by": by,
        "groupings": groupings,
        "by_label": dict(groupings)[by],
        "total": factors.total,
        "reasons": reasons,
        "segment_rows": [
            (_group_label(by, row.key), [row.counts.get(code, 0) for code, _l in reasons],
             row.total)
            for row in factors.by_segment
        ],
        "time_rows": [
            (month_label(date.fromisoformat(row.key), language),
             [row.counts.get(code, 0) for code, _l in reasons], row.total)
            for row in factors.over_time
        ],
        "reason_totals": [
            sum(row.counts.get(code, 0) for row in factors.by_segment) for code, _l in reasons
        ],
        "bands": [
            (label, terms[band]) for band, label in (
                ("detractor", _("Detractors (0–6)")), ("passive", _("Passives (7–8)")),
                ("promoter", _("Promoters (9–10)")),
            )
        ],
    }
    return render(request, "feedback/staff/churn_factors.html", context)


def _number(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number


def _support_rows(frame: pd.DataFrame, key: str, language: str) -> list[dict[str, Any]]:
    """One display row per period (or channel): the three metrics side by side."""
    if frame.empty:
        return []
    rows: dict[Any, dict[str, Any]] = {}
    for record in frame.to_dict("records"):
        index = record[key]
        row = rows.setdefault(index, {"label": index})
        metric = record["metric"]
        if metric == "ticket_csat":
            row["csat"] = _number(record["value"])
            row["rated"] = int(record["rated"])
        else:
            prefix = "frt" if metric == "first_response_hours" else "resolution"
            row[f"{prefix}_median"] = _number(record["value"])
            row[f"{prefix}_p90"] = _number(record["p90"])
            row[f"{prefix}_count"] = int(record["tickets"])
    ordered = [rows[k] for k in sorted(rows)]
    for row in ordered:
        label = row["label"]
        if isinstance(label, pd.Timestamp):
            row["label"] = month_label(label.date(), language)
        elif not label:
            row["label"] = _("Unknown")
    return ordered


@role_required(SUPPORT)
@require_GET
def support_signals(request: HttpRequest) -> HttpResponse:
    """First response and resolution times (median and 90th percentile, hours) and ticket
    ratings per month, and per channel over the last year."""
    language = _language()
    since = timezone.now() - timedelta(days=HISTORY_DAYS)
    monthly = support.support_kpis(period=_period(language), since=since)
    per_channel = support.support_kpis(period=None, by_channel=True, since=since)
    months = _support_rows(monthly, "period_start", language)
    context: dict[str, Any] = {
        "shop_name": shop_name(),
        "active": "support",
        "months": months,
        "tables": [
            (_("By month"), months, "by-month"),
            (_("By channel"), _support_rows(per_channel, "channel", language), "by-channel"),
        ],
        "low_rated": support.tickets_rated_low(since=timezone.now() - timedelta(days=90)),
    }
    return render(request, "feedback/staff/support.html", context)
