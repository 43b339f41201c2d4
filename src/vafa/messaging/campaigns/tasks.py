"""The worker's side of campaigns: thin wrappers around the services."""

from __future__ import annotations

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task, lock_task

from vafa.messaging.campaigns.models import Campaign
from vafa.messaging.campaigns.services import TickResult, campaign_enqueue, campaigns_tick


@db_periodic_task(crontab(minute="*"))
@lock_task("vafa-campaigns-tick")
def campaigns_tick_task() -> TickResult:
    """Every minute: start scheduled campaigns, enqueue, auto-pause, finish."""
    return campaigns_tick(now=timezone.now())


@db_task()
def campaign_enqueue_task(campaign_id: int) -> int:
    """Enqueue a started or resumed campaign now rather than at the next tick."""
    campaign = Campaign.objects.get(pk=campaign_id)
    return campaign_enqueue(campaign=campaign, now=timezone.now()).created
