"""Periodic flow work for the huey worker: thin wrappers around the services."""

from __future__ import annotations

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

from vafa.messaging.flows.services import flows_advance
from vafa.messaging.flows.triggers import flows_scan


@db_periodic_task(crontab(minute="*"))
@lock_task("vafa-flows-advance")
def advance_flows() -> dict[str, int]:
    """Every minute: enqueue the flow steps that are due."""
    return flows_advance(now=timezone.now()).counts


@db_periodic_task(crontab(minute="7"))
@lock_task("vafa-flows-scan")
def scan_flows() -> dict[str, int]:
    """Every hour: birthdays (each zone's day starts at a different hour), overdue and at-risk
    customers, due survey invitations, survey follow-ups."""
    return flows_scan(now=timezone.now())
