"""Periodic loyalty work for the huey worker: thin wrappers around the services."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from vafa.loyalty.services import ExpiryRun, points_expire, tiers_recalculate_all


@db_periodic_task(crontab(minute="5"))
def expire_points() -> ExpiryRun:
    """Every hour: book the expiry of lots whose time has come."""
    return points_expire()


@db_periodic_task(crontab(minute="35", hour="2"))
def recalculate_tiers() -> int:
    """Every night (UTC): move members between tiers as their rolling window slides."""
    return tiers_recalculate_all()
