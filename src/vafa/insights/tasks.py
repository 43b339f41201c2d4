"""Background jobs: the nightly analysis and the on-demand refresh (thin wrappers)."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from vafa.insights.services import insights_refresh


@db_periodic_task(crontab(hour="2", minute="30"))
def insights_refresh_nightly() -> None:
    insights_refresh(triggered_by="schedule")


@db_task()
def insights_refresh_now(triggered_by: str = "") -> int:
    return insights_refresh(triggered_by=triggered_by).pk
