"""Loyalty's consumer of the shop's change feed (`vafa.customers.changes`).

Every order created or changed (status, fulfilment or refunded amount) through the API, a
webhook or a notifying import reaches `order_sync_points`, which makes the ledger agree with the
order: earn when paid, reverse pro rata on refunds, cancel pending points of a cancelled order.
A customer created reaches `signup_award` (the signup bonus, for customers who have just
joined). Both are idempotent (keyed ledger entries), as the feed's at-least-once delivery
requires.
"""

from __future__ import annotations

from vafa.customers.models import Change, ChangeKind, Customer, Order
from vafa.loyalty.services import order_sync_points, signup_award

ORDER_KINDS = frozenset({ChangeKind.ORDER_CREATED, ChangeKind.ORDER_STATUS_CHANGED})


def on_change(change: Change) -> None:
    """Book the points of the order the change is about (its state as of now, not as of the
    change: a later change only makes the same call agree again); a customer created gets the
    signup bonus when they have just joined (`signup_award`)."""
    if change.kind == ChangeKind.CUSTOMER_CREATED:
        customer = Customer.objects.filter(pk=change.customer_id).first()
        if customer is not None:
            signup_award(customer=customer, now=change.created_at)
        return
    if change.kind not in ORDER_KINDS or change.order_id is None:
        return
    order = Order.objects.filter(pk=change.order_id).first()
    if order is not None:
        order_sync_points(order=order, now=change.created_at)
