"""Conditions of flows and steps: a small closed vocabulary the merchant sets in the admin as
JSON (`{"no_order_since_entry": true, "order_status_in": ["paid"]}`), checked when a customer
enters and again before every step, so a customer who ordered again leaves the win-back flow
and a cancelled order gets no review request.

Each condition is a named predicate over the enrolment, the customer and the moment; an unknown
name is refused when the flow is saved (`conditions_problems`) and fails closed at run time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from vafa.customers.models import Order, OrderStatus
from vafa.messaging.flows.models import FlowEnrollment

Check = Callable[[FlowEnrollment, Any, datetime], bool]
KEPT_STATUSES = frozenset({OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.PENDING})


def _order(enrollment: FlowEnrollment) -> Order | None:
    order_id = enrollment.data("order_id")
    if not order_id:
        return None
    return Order.objects.filter(external_id=order_id, customer_id=enrollment.customer_id).first()


def _no_order_since_entry(enrollment: FlowEnrollment, value: Any, now: datetime) -> bool:
    """The customer has not ordered since entering (win-back, at-risk, onboarding nudges)."""
    if not value:
        return True
    return not Order.objects.filter(
        customer_id=enrollment.customer_id, placed_at__gt=enrollment.entered_at,
        status__in=sorted(KEPT_STATUSES),
    ).exists()


def _order_status_in(enrollment: FlowEnrollment, value: Any, now: datetime) -> bool:
    """The trigger's order still has one of these payment statuses (not cancelled meanwhile)."""
    order = _order(enrollment)
    return order is not None and order.status in set(value or ())


def _order_kept(enrollment: FlowEnrollment, value: Any, now: datetime) -> bool:
    """The trigger's order is neither cancelled nor refunded."""
    if not value:
        return True
    order = _order(enrollment)
    return order is not None and order.status in KEPT_STATUSES


def _order_recent_days(enrollment: FlowEnrollment, value: Any, now: datetime) -> bool:
    """The trigger's order was placed at most this many days before the customer entered: an
    import of old orders with notifications on thanks nobody for last year's purchase."""
    order = _order(enrollment)
    if order is None:
        return False
    return order.placed_at >= enrollment.entered_at - timedelta(days=float(value))


def _min_orders(enrollment: FlowEnrollment, value: Any, now: datetime) -> bool:
    return Order.objects.filter(
        customer_id=enrollment.customer_id, status__in=sorted(KEPT_STATUSES)
    ).count() >= int(value)


def _max_orders(enrollment: FlowEnrollment, value: Any, now: datetime) -> bool:
    return Order.objects.filter(
        customer_id=enrollment.customer_id, status__in=sorted(KEPT_STATUSES)
    ).count() <= int(value)


def _within_days_of_entry(enrollment: FlowEnrollment, value: Any, now: datetime) -> bool:
    """The step is still timely: at most this many days after entry (a worker that was down
    for a week does not send last week's birthday wishes)."""
    return now <= enrollment.entered_at + timedelta(days=float(value))


CHECKS: dict[str, Check] = {
    "no_order_since_entry": _no_order_since_entry,
    "order_status_in": _order_status_in,
    "order_kept": _order_kept,
    "order_recent_days": _order_recent_days,
    "min_orders": _min_orders,
    "max_orders": _max_orders,
    "within_days_of_entry": _within_days_of_entry,
}


def conditions_problems(conditions: object) -> list[str]:
    """What is wrong with a conditions document (empty when it can be used)."""
    if not isinstance(conditions, Mapping):
        return ["conditions must be a JSON object"]
    return [f"unknown condition {name!r} (known: {', '.join(sorted(CHECKS))})"
            for name in conditions if name not in CHECKS]


def first_failing(
    conditions: Mapping[str, Any] | None, enrollment: FlowEnrollment, now: datetime
) -> str:
    """The name of the first condition that does not hold, or "" when all hold. An unknown
    condition fails (closed: better to send nothing than the wrong message)."""
    for name, value in (conditions or {}).items():
        check = CHECKS.get(name)
        if check is None or not check(enrollment, value, now):
            return name
    return ""
