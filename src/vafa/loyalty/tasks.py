"""Periodic loyalty work for the huey worker: thin wrappers around the services."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from vafa.loyalty.services import (
    ExpiryRun,
    birthdays_award,
    gamification_run,
    points_expire,
    points_expiring_notify,
    referrals_settle,
    rewards_available_notify,
    tiers_recalculate_all,
)
from vafa.loyalty.webhooks import DeliveryRun, webhooks_deliver


@db_periodic_task(crontab(minute="5"))
def expire_points() -> ExpiryRun:
    """Every hour: book the expiry of lots whose time has come."""
    return points_expire()


@db_periodic_task(crontab(minute="35", hour="2"))
def recalculate_tiers() -> int:
    """Every night (UTC): move members between tiers as their rolling window slides."""
    return tiers_recalculate_all()


@db_periodic_task(crontab(minute="50", hour="5"))
def notify_expiring_points() -> int:
    """Every morning (UTC, 09:20 in Tehran): tell members whose points expire within 14 days."""
    return points_expiring_notify()


@db_periodic_task(crontab(minute="25"))
def notify_rewards_available() -> int:
    """Every hour: tell members whose maturing points now buy a reward."""
    return rewards_available_notify()


@db_periodic_task(crontab(minute="15"))
def settle_referrals() -> int:
    """Every hour: reward referrals whose first order is past the return window."""
    return referrals_settle()


@db_periodic_task(crontab(minute="*"))
def deliver_webhooks() -> DeliveryRun:
    """Every minute: send the outgoing webhooks that are due (new ones and retries)."""
    return webhooks_deliver()


@db_periodic_task(crontab(minute="20", hour="3"))
def run_gamification() -> int:
    """Every night (UTC): award badges and complete challenges for recently active members."""
    return gamification_run()


@db_periodic_task(crontab(minute="40"))
def award_birthdays() -> int:
    """Every hour (so a worker that was down catches up the same day): the birthday bonus of
    the customers whose birthday is today in the shop's zone; once a year each."""
    return birthdays_award()
