"""Results pages: what each flow, campaign and variant did against its control group
(mounted under /dashboard/results/).

The numbers come from `vafa.messaging.measurement`; this module only formats them for the
active language: rates and their uplift in percentage points, revenue per recipient in the
shop's currency, each uplift with its 95% interval and whether that interval excludes zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from vafa.analytics.report_i18n import Localizer
from vafa.analytics.uplift import Interval
from vafa.core.roles import MARKETER, role_required
from vafa.dashboard import selectors
from vafa.dashboard.overview import localizer
from vafa.messaging.measurement import (
    DEFAULT_WINDOW,
    SourceResult,
    VariantResult,
    measured_sources,
    source_results,
)

WINDOW_CHOICES = (1, 3, 7, 14, 30)


@dataclass(frozen=True)
class UpliftCell:
    """An uplift and its interval, formatted, with its verdict for colouring."""

    value: str
    low: str
    high: str
    tone: str  # good (interval above zero), bad (below zero), flat (includes zero), none
    level: str = ""  # the confidence level, e.g. "95%" in the page's digits


@dataclass(frozen=True)
class ResultRow:
    """One line of a results table: a whole source or one of its variants."""

    source: str
    label: str
    kind: str
    variant: str
    treated: str
    control: str
    treated_rate: str
    control_rate: str
    conversion: UpliftCell
    treated_rpr: str
    control_rpr: str
    revenue: UpliftCell
    sent: str
    opened: str
    clicked: str
    shared_control: bool
    pending: str


def _cell(loc: Localizer, interval: Interval | None, fmt: Any) -> UpliftCell:
    if interval is None:
        return UpliftCell("–", "", "", "none")
    tone = ("good" if interval.low > 0 else "bad" if interval.high < 0 else "flat")
    return UpliftCell(fmt(interval.estimate, True), fmt(interval.low, True),
                      fmt(interval.high, True), tone, loc.percent(interval.confidence * 100, 0))


def source_label(source: str) -> tuple[str, str]:
    """A flow's or campaign's name for people, and its kind (`flow`, `campaign`, `other`)."""
    kind, _sep, key = source.partition(":")
    model = {"flow": ("flows", "Flow", "key"), "campaign": ("campaigns", "Campaign", "pk")}
    if kind not in model:
        return source, "other"
    label, name, column = model[kind]
    try:
        found = apps.get_model(label, name)
        if column == "pk" and not key.isdigit():
            raise LookupError(key)
        row = found.objects.filter(**{column: key}).values_list("name", flat=True).first()
    except LookupError:
        row = None
    return (str(row) if row else key), kind


def _row(loc: Localizer, result: SourceResult, item: VariantResult, label: str,
         kind: str) -> ResultRow:
    currency = str(getattr(settings, "VAFA_DEFAULT_CURRENCY", "IRT"))
    treated, control = item.treated, item.control

    def rate(value: float | None) -> str:
        return "–" if value is None else loc.percent(value * 100, 1)

    def points(value: float, signed: bool) -> str:
        return loc.percent(value * 100, 1, signed=signed)

    def cash(value: float | None, signed: bool = False) -> str:
        return "–" if value is None else loc.money(round(value, 3), currency, signed=signed)

    def share(part: int) -> str:
        return loc.percent(part * 100 / item.sent, 1) if item.sent else "–"

    return ResultRow(
        source=result.source, label=label, kind=kind, variant=item.variant,
        treated=loc.number(treated.recipients), control=loc.number(control.recipients),
        treated_rate=rate(treated.conversion_rate), control_rate=rate(control.conversion_rate),
        conversion=_cell(loc, item.uplift.conversion, points),
        treated_rpr=cash(treated.revenue_per_recipient),
        control_rpr=cash(control.revenue_per_recipient),
        revenue=_cell(loc, item.uplift.revenue, cash),
        sent=loc.number(item.sent), opened=share(item.opened), clicked=share(item.clicked),
        shared_control=item.shared_control, pending=loc.number(result.pending),
    )


def _window(request: HttpRequest) -> int:
    raw = request.GET.get("days", "")
    days = int(raw) if raw.isdigit() else DEFAULT_WINDOW.days
    return days if days in WINDOW_CHOICES else DEFAULT_WINDOW.days


def _context(request: HttpRequest, days: int) -> dict[str, Any]:
    loc = localizer(get_language())
    return {
        "shop_name": selectors.shop_name(),
        "active": "results",
        "days": days,
        "windows": [(choice, loc.number(choice)) for choice in WINDOW_CHOICES],
        "days_display": loc.number(days),
        "loc": loc,
    }


@role_required(MARKETER)
@require_GET
def results_list(request: HttpRequest) -> HttpResponse:
    """Every marketing flow and campaign with its uplift against its control group."""
    days = _window(request)
    context = _context(request, days)
    loc = context["loc"]
    now = timezone.now()
    rows = []
    for source in measured_sources():
        result = source_results(source=source, now=now, window=timedelta(days=days))
        label, kind = source_label(source)
        rows.append(_row(loc, result, result.overall, label, kind))
    context["rows"] = rows
    return render(request, "dashboard/results/list.html", context)


@role_required(MARKETER)
@require_GET
def result_detail(request: HttpRequest, source: str) -> HttpResponse:
    """One flow or campaign: all variants together, then each variant."""
    if source not in measured_sources():
        raise Http404(_("No messages from this flow or campaign."))
    days = _window(request)
    context = _context(request, days)
    loc = context["loc"]
    result = source_results(source=source, now=timezone.now(), window=timedelta(days=days))
    label, kind = source_label(source)
    context.update(
        source=source, label=label, kind=kind,
        overall=_row(loc, result, result.overall, label, kind),
        variants=[_row(loc, result, item, label, kind) for item in result.variants],
        shared=any(item.shared_control for item in result.variants),
        pending=result.pending,
    )
    return render(request, "dashboard/results/detail.html", context)


urlpatterns: list[URLPattern] = [
    path("", results_list, name="results"),
    path("<str:source>/", result_detail, name="result_detail"),
]
