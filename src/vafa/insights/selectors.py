"""Reads of stored analysis results."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from vafa.analytics.errors import InputError
from vafa.analytics.metrics import GoalProgress, goal_progress
from vafa.insights.models import GOAL_METRICS, AnalysisRun, Goal


def latest_run() -> AnalysisRun | None:
    """The most recent successful analysis run, if any."""
    return AnalysisRun.objects.filter(status=AnalysisRun.Status.DONE).first()


def latest_run_key() -> tuple[int, dt.datetime | None] | None:
    """The id and finish time of the most recent successful run, without reading its (large)
    summary: together they name one run's results even if ids are reused (a restored backup)."""
    return (
        AnalysisRun.objects.filter(status=AnalysisRun.Status.DONE)
        .values_list("pk", "finished_at").first()
    )


# Periods before a goal's start that its forecast still learns the trend from.
TREND_HISTORY = 4


@dataclass(frozen=True)
class GoalStatus:
    """Where one goal stands against the latest run's KPI series.

    `progress` is None until the metric has been measured since the goal was set (or has no
    baseline); `on_track` is the linear-trend forecast's verdict (None with fewer than two
    points); see `vafa.analytics.metrics.goal_progress`.
    """

    goal: Goal
    label: str
    current: float | None
    progress: GoalProgress | None
    days_left: int


def goal_statuses(*, today: dt.date) -> list[GoalStatus]:
    """Every goal with its progress and forecast (two queries: the goals and the latest run)."""
    run = latest_run()
    series = ((run.summary or {}).get("kpis") or {}).get("series") or {} if run else {}
    return [_goal_status(goal, series, today) for goal in Goal.objects.order_by("deadline", "id")]


def _goal_status(goal: Goal, series: dict[str, Any], today: dt.date) -> GoalStatus:
    label, better = GOAL_METRICS.get(goal.metric, (goal.metric, "increase"))
    points = {
        point["end"]: float(point["value"])
        for point in series.get(goal.metric) or []
        if point.get("value") is not None and point.get("end")
    }
    current = points[max(points)] if points else None
    # The trend is fitted on the periods since the goal started plus the TREND_HISTORY periods
    # before it, so a goal set today already has a forecast from the metric's recent course.
    ends = sorted(points)
    before = [end for end in ends if end < goal.start.isoformat()]
    used = ends[max(len(before) - TREND_HISTORY, 0):]
    progress: GoalProgress | None = None
    if used:
        frame = pd.Series({pd.Timestamp(end): points[end] for end in used})
        baseline = float(goal.baseline) if goal.baseline is not None else None
        target = float(goal.target)
        direction: Literal["increase", "decrease"] = (
            "decrease" if better == "decrease" else "increase"
        )
        with contextlib.suppress(InputError):
            progress = goal_progress(frame, target, goal.deadline, baseline=baseline,
                                     direction=direction)
    if progress is not None:
        progress = dataclasses.replace(progress, progress=_share_done(progress))
    return GoalStatus(goal=goal, label=str(label), current=current, progress=progress,
                      days_left=(goal.deadline - today).days)


def _share_done(progress: GoalProgress) -> float:
    """The share of the goal done, for the bar and the percentage.

    The library measures the way from the baseline to the target, which says nothing when the
    baseline already met the target (a goal set to keep a good value): its share is then 0 %
    or even above 100 % while slipping. A reached target is at least 100 %; a target that was
    met at the start and no longer is shows how close the current value is (current / target,
    or target / current for a metric that should fall), below 100 %.
    """
    if progress.reached:
        return max(progress.progress, 1.0)
    increase = progress.direction == "increase"
    met_at_start = (progress.baseline >= progress.target if increase
                    else progress.baseline <= progress.target)
    if not met_at_start:
        return progress.progress
    current, target = progress.current, progress.target
    if current <= 0 or target <= 0:
        return 0.0
    return min(current / target if increase else target / current, 0.99)
