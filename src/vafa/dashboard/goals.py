"""Goals page (mounted under /dashboard/goals/): SMART goals on the stored KPIs (K7), each with
its progress from the baseline and a linear-trend forecast of whether it will be met.

Progress is read from the latest analysis run (`vafa.insights.selectors.goal_statuses`), never
recomputed on request; a goal's unit is its metric's (percent for rates, the shop's currency for
order value and revenue, a score for NPS/CSAT/CES).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from vafa.core.errors import ValidationError
from vafa.core.roles import MARKETER, has_role, role_required
from vafa.core.text import normalize_digits
from vafa.core.timeutil import DateError, parse_date
from vafa.dashboard import selectors
from vafa.dashboard.overview import localizer
from vafa.insights.models import GOAL_METRICS
from vafa.insights.selectors import GoalStatus, goal_statuses
from vafa.insights.services import goal_create

# Metrics measured in percent (0–100) and in money; the rest are plain numbers or scores.
PERCENT_METRICS = frozenset({"retention_rate", "churn_rate", "csat"})
MONEY_METRICS = frozenset({"aov", "revenue"})


@dataclass(frozen=True)
class GoalRow:
    """One goal, formatted for the active language."""

    name: str
    metric: str
    baseline: str
    current: str
    target: str
    deadline: str
    days_left: str
    days_number: int
    progress_percent: int  # 0–100, for the bar
    progress: str
    verdict: str
    tone: str  # good | bad | flat


def _value(metric: str, value: float | Decimal | None) -> str:
    if value is None:
        return "—"
    loc = localizer(get_language())
    if metric in PERCENT_METRICS:
        return loc.percent(value, 1)
    if metric in MONEY_METRICS:
        return loc.money(value, settings.VAFA_DEFAULT_CURRENCY)
    return loc.number(value, 1)


def _row(status: GoalStatus) -> GoalRow:
    loc = localizer(get_language())
    goal, progress = status.goal, status.progress
    share = 0.0 if progress is None else progress.progress
    if progress is not None and progress.reached:
        verdict, tone = _("Reached"), "good"
    elif status.days_left < 0:
        verdict, tone = _("Missed"), "bad"
    elif progress is None or progress.on_track is None:
        verdict, tone = _("Not enough data to forecast yet"), "flat"
    elif progress.on_track:
        verdict, tone = _("On track: the trend meets the target by the deadline"), "good"
    else:
        verdict = _("Off track: the trend reaches %(value)s by the deadline") % {
            "value": _value(goal.metric, progress.forecast)
        }
        tone = "bad"
    return GoalRow(
        name=goal.name,
        metric=status.label,
        baseline=_value(goal.metric, goal.baseline),
        current=_value(goal.metric, status.current),
        target=_value(goal.metric, goal.target),
        deadline=loc.date(goal.deadline.isoformat()),
        days_left=loc.number(max(status.days_left, 0)),
        days_number=max(status.days_left, 0),
        progress_percent=int(min(max(share, 0.0), 1.0) * 100),
        progress=loc.percent(share * 100, 0) if progress is not None else "—",
        verdict=str(verdict),
        tone=tone,
    )


def _page(
    request: HttpRequest, *, form: dict[str, str] | None = None, error: str = "", status: int = 200
) -> HttpResponse:
    today = timezone.localdate()
    context = {
        "shop_name": selectors.shop_name(),
        "active": "goals",
        "rows": [_row(item) for item in goal_statuses(today=today)],
        "metrics": [(key, str(label)) for key, (label, _better) in GOAL_METRICS.items()],
        "form": form or {},
        "error": error,
        "can_edit": has_role(request.user, MARKETER, write=True),
        "min_deadline": (today + dt.timedelta(days=1)).isoformat(),
    }
    return render(request, "dashboard/goals.html", context, status=status)


@role_required(MARKETER)
@require_GET
def goal_list(request: HttpRequest) -> HttpResponse:
    """Every goal with progress and forecast, and the form to set a new one."""
    return _page(request)


@role_required(MARKETER, write=True)
@require_POST
def goal_create_view(request: HttpRequest) -> HttpResponse:
    """Set a goal from the form; a bad field re-shows the form with the reason."""
    form = {key: request.POST.get(key, "").strip()
            for key in ("name", "metric", "target", "deadline")}
    calendar = "jalali" if get_language() == "fa" and form["deadline"][:2] in ("13", "14") \
        else "gregorian"
    try:
        try:
            target = Decimal(normalize_digits(form["target"]).replace("٫", ".").replace(",", ""))
        except InvalidOperation:
            raise ValidationError("not a number", field="target") from None
        try:
            deadline = parse_date(form["deadline"], calendar=calendar)
        except DateError:
            raise ValidationError("not a date", field="deadline") from None
        goal = goal_create(
            name=form["name"], metric=form["metric"], target=target, deadline=deadline,
            owner=request.user.get_username(), now=timezone.now(),
        )
    except ValidationError as exc:
        reasons = {
            "name": _("Give the goal a name."),
            "metric": _("Choose a metric."),
            "target": _("Enter the target as a number."),
            "deadline": _("Enter a deadline after today."),
        }
        message = str(reasons.get(exc.field or "", _("The goal could not be saved.")))
        return _page(request, form=form, error=message, status=422)
    messages.success(request, _("Goal “%(name)s” set.") % {"name": goal.name})
    return redirect("dashboard:goals")


urlpatterns: list[URLPattern] = [
    path("", goal_list, name="goals"),
    path("new/", goal_create_view, name="goal_create"),
]
