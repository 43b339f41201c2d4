"""What starts a flow: the shop-data change feed, loyalty events, and daily or hourly scans.

- `on_change` is the flows consumer of `vafa.customers.changes`: a customer created → signup
  flows; an order created → order flows; its fulfilment becoming shipped or delivered →
  shipping-update, help-after-delivery and review-request flows.
- `on_loyalty_event` is subscribed to `vafa.loyalty.events`: tier up, points expiring, reward
  available.
- `flows_scan(now=…)` finds birthdays (today in the customer's own zone), overdue customers
  (well past their usual interval between purchases, or P(alive) below a threshold), valuable
  customers who entered at_risk/cant_lose, due survey invitations, and survey answers that
  call for an apology or a review/referral ask.

The occurrence of each trigger is stable (the order id, the order and its new status, the year,
the last order before the lapse, …), so a trigger seen twice enrols nobody twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Min

from vafa.customers.models import Change, ChangeKind, Customer, FulfillmentStatus, Order
from vafa.messaging.flows.conditions import KEPT_STATUSES
from vafa.messaging.flows.models import Flow, FlowEnrollment, Trigger
from vafa.messaging.flows.services import trigger_fire
from vafa.messaging.policy import customer_zone

logger = logging.getLogger(__name__)

FULFILLMENT_TRIGGERS = {
    FulfillmentStatus.SHIPPED: Trigger.ORDER_SHIPPED,
    FulfillmentStatus.DELIVERED: Trigger.ORDER_DELIVERED,
}
AT_RISK_SEGMENTS = ("at_risk", "cant_lose")


def on_change(change: Change) -> None:
    """The flows consumer of the change feed (idempotent: enrolments are unique per
    occurrence)."""
    now = change.created_at
    customer = change.customer
    if change.kind == ChangeKind.CUSTOMER_CREATED:
        trigger_fire(trigger=Trigger.SIGNUP, customer=customer, occurrence="signup", now=now)
        return
    order = change.order
    if order is None:
        return
    context = {"order_id": order.external_id}
    if change.kind == ChangeKind.ORDER_CREATED:
        trigger_fire(trigger=Trigger.ORDER_PLACED, customer=customer,
                     occurrence=order.external_id, now=now, context=context)
    if change.new_fulfillment != change.old_fulfillment:
        trigger = FULFILLMENT_TRIGGERS.get(FulfillmentStatus(change.new_fulfillment))
        if trigger is not None:
            trigger_fire(trigger=trigger, customer=customer,
                         occurrence=f"{order.external_id}:{change.new_fulfillment}", now=now,
                         context=context)


def on_loyalty_event(event: Any) -> None:
    """The flows subscriber of `vafa.loyalty.events` (called after the loyalty commit)."""
    from vafa.loyalty import events

    customer = Customer.objects.filter(external_id=event.customer_id).first()
    if customer is None:
        return
    data = event.data or {}
    now = event.occurred_at
    if event.name == events.TIER_CHANGED and data.get("direction") == "up":
        tier = (data.get("to") or {}).get("name", "")
        trigger_fire(trigger=Trigger.TIER_UP, customer=customer,
                     occurrence=f"tier:{(data.get('to') or {}).get('id')}:{now.date()}",
                     now=now, context={"tier_name": tier})
    elif event.name == events.POINTS_EXPIRING:
        expires = str(data.get("first_expires_at") or "")
        trigger_fire(trigger=Trigger.POINTS_EXPIRING, customer=customer,
                     occurrence=f"expiring:{expires[:10] or now.date()}", now=now,
                     context={"expiring_points": int(data.get("points") or 0),
                              "expires_on": expires[:10]})
    elif event.name == events.REWARD_AVAILABLE:
        trigger_fire(trigger=Trigger.REWARD_AVAILABLE, customer=customer,
                     occurrence=f"reward:{now.date().isoformat()[:7]}", now=now,
                     context={"available_points": int(data.get("available") or 0)})


def _enabled(trigger: str) -> list[Flow]:
    return list(Flow.objects.filter(trigger=trigger, enabled=True))


def scan_birthdays(*, now: datetime) -> int:
    """Customers whose birthday is today in their own zone (29 February: the 28th in other
    years); occurrence = the year."""
    if not _enabled(Trigger.BIRTHDAY):
        return 0
    enrolled = 0
    # Today differs by zone at most a day either way: read the three candidate dates' customers.
    days = {(now + timedelta(days=d)).date() for d in (-1, 0, 1)}
    months = {d.month for d in days}
    for customer in Customer.objects.filter(birth_date__isnull=False, birth_date__month__in=months):
        today = now.astimezone(customer_zone(customer.timezone)).date()
        born = customer.birth_date
        assert born is not None
        month, day = born.month, born.day
        if (month, day) == (2, 29) and today.month == 2 and today.day == 28:
            leap = today.year % 4 == 0 and (today.year % 100 != 0 or today.year % 400 == 0)
            day = 28 if not leap else 29
        if (today.month, today.day) != (month, day):
            continue
        enrolled += len(trigger_fire(trigger=Trigger.BIRTHDAY, customer=customer,
                                     occurrence=str(today.year), now=now))
    return enrolled


def scan_overdue(*, now: datetime) -> int:
    """Customers well past their usual interval between purchases (`overdue_factor` times the
    mean gap, default 2.5; customers with one order: `single_order_days`, default 120), or
    whose P(alive) is below `p_alive_below` (default 0.3). Occurrence = the time of their last
    order, so a customer who comes back and lapses again is won back again."""
    flows = _enabled(Trigger.OVERDUE)
    if not flows:
        return 0
    params = flows[0].params or {}
    factor = float(params.get("overdue_factor", 2.5))
    single_days = float(params.get("single_order_days", 120))
    p_alive_below = float(params.get("p_alive_below", 0.3))
    stats = (
        Order.objects.filter(status__in=sorted(KEPT_STATUSES), placed_at__lte=now)
        .values("customer_id")
        .annotate(first=Min("placed_at"), last=Max("placed_at"), orders=Count("id"))
    )
    from vafa.insights.models import CustomerScore

    p_alive = dict(
        CustomerScore.objects.filter(p_alive__isnull=False).values_list("customer_id", "p_alive")
    )
    # Customers already in every enabled win-back flow for their current lapse are skipped
    # without a query each (the scan runs hourly over every buyer).
    seen: dict[tuple[int, str], int] = {}
    for key in FlowEnrollment.objects.filter(flow__in=flows).values_list(
        "customer_id", "occurrence"
    ):
        seen[key] = seen.get(key, 0) + 1
    enrolled = 0
    for row in stats:
        last, first, orders = row["last"], row["first"], row["orders"]
        if orders > 1:
            usual = (last - first) / (orders - 1)
            overdue = now - last > usual * factor and now - last > timedelta(days=14)
        else:
            overdue = now - last > timedelta(days=single_days)
        alive = p_alive.get(row["customer_id"])
        if not overdue and not (alive is not None and alive < p_alive_below):
            continue
        occurrence = f"lapse:{last.isoformat()}"
        if seen.get((row["customer_id"], occurrence), 0) >= len(flows):
            continue
        customer = Customer.objects.get(pk=row["customer_id"])
        enrolled += len(trigger_fire(
            trigger=Trigger.OVERDUE, customer=customer, occurrence=occurrence,
            now=now, context={"days_since_last_order": (now - last).days},
        ))
    return enrolled


def scan_at_risk(*, now: datetime) -> int:
    """Valuable customers (VIP, or predicted CLV at least `min_clv`) who entered at_risk or
    cant_lose in the last `lookback_days` (default 2); occurrence = that segment change."""
    flows = _enabled(Trigger.AT_RISK)
    if not flows:
        return 0
    from vafa.insights.models import CustomerScore, SegmentHistory

    params = flows[0].params or {}
    since = now - timedelta(days=float(params.get("lookback_days", 2)))
    min_clv = params.get("min_clv")
    enrolled = 0
    for change in SegmentHistory.objects.filter(
        rfm_segment__in=AT_RISK_SEGMENTS, entered_at__gte=since, entered_at__lte=now
    ).select_related("customer"):
        score = CustomerScore.objects.filter(customer_id=change.customer_id).first()
        valuable = score is not None and (
            score.vip or (min_clv is not None and score.predicted_clv is not None
                          and score.predicted_clv >= float(min_clv))
        )
        if not valuable:
            continue
        enrolled += len(trigger_fire(
            trigger=Trigger.AT_RISK, customer=change.customer, occurrence=f"segment:{change.pk}",
            now=now, context={"segment": change.rfm_segment},
        ))
    return enrolled


def scan_surveys(*, now: datetime) -> int:
    """Create the survey invitations feedback says are due and send each through the survey
    flow. Off while no survey flow is on (invitations would pile up unsent)."""
    if not _enabled(Trigger.SURVEY_DUE):
        return 0
    from vafa.feedback.services import survey_invitations_due

    enrolled = 0
    for invitation in survey_invitations_due(now=now):
        enrolled += len(trigger_fire(
            trigger=Trigger.SURVEY_DUE, customer=invitation.customer,
            occurrence=f"invitation:{invitation.pk}", now=now,
            context={"invitation_id": invitation.pk},
        ))
    return enrolled


def scan_follow_ups(*, now: datetime, lookback_days: int = 7) -> int:
    """Survey answers of the last days that opened a follow-up task: an apology to the
    unhappy (recovery tasks), a review or referral ask to promoters; occurrence = the task."""
    triggers = {"recovery": Trigger.DETRACTOR, "review_ask": Trigger.PROMOTER}
    if not any(_enabled(t) for t in triggers.values()):
        return 0
    from vafa.feedback.models import FollowUpTask

    enrolled = 0
    for task in FollowUpTask.objects.filter(
        created_at__gte=now - timedelta(days=lookback_days), kind__in=list(triggers),
    ).select_related("customer", "response"):
        enrolled += len(trigger_fire(
            trigger=triggers[task.kind], customer=task.customer, occurrence=f"task:{task.pk}",
            now=now, context={"score": task.response.score},
        ))
    return enrolled


def flows_scan(*, now: datetime) -> dict[str, int]:
    """Run every scan; each is cheap when its flows are off."""
    return {
        "birthday": scan_birthdays(now=now),
        "overdue": scan_overdue(now=now),
        "at_risk": scan_at_risk(now=now),
        "survey": scan_surveys(now=now),
        "follow_up": scan_follow_ups(now=now),
    }
