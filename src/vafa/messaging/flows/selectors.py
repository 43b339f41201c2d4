"""Reads of the flows app: what a flow's message may show (the trigger's order with its lines,
the gift suggestion, the survey link, …) and the flows' own state for the admin and tests.

Everything a template sees is read fresh when the step is sent (not when the customer
entered), so a thank-you lists the order's lines as they are now.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from markupsafe import Markup

from vafa.customers.models import Order, OrderLine
from vafa.customers.recommendations import customer_recommendations
from vafa.messaging.compose import message_language, order_summary
from vafa.messaging.flows.models import EnrollmentState, Flow, FlowEnrollment
from vafa.messaging.models import MessageKind
from vafa.messaging.policy import customer_zone
from vafa.messaging.templating import Money

GIFT_SUGGESTIONS = 3


def _trigger_order(enrollment: FlowEnrollment) -> Order | None:
    order_id = enrollment.data("order_id")
    if not order_id:
        return None
    return (
        Order.objects.filter(external_id=order_id, customer_id=enrollment.customer_id)
        .prefetch_related("lines__product__category")
        .first()
    )


def categories_bought(customer_id: int, limit: int = GIFT_SUGGESTIONS) -> list[str]:
    """The customer's most bought categories, most lines first."""
    counts = Counter(
        OrderLine.objects.filter(order__customer_id=customer_id, product__category__isnull=False)
        .values_list("product__category__name", flat=True)
    )
    return [name for name, _ in counts.most_common(limit)]


def gift_interests(customer_id: int) -> list[str]:
    """What to choose a gift from: the interests the customer told us (feedback's profile),
    else the categories they bought most."""
    from vafa.feedback.models import CustomerPreference

    preference = CustomerPreference.objects.filter(customer_id=customer_id).first()
    interests = [str(i) for i in (preference.interests if preference else []) or []]
    return interests[:GIFT_SUGGESTIONS] or categories_bought(customer_id)


def _invitation_context(enrollment: FlowEnrollment) -> dict[str, Any] | None:
    invitation_id = enrollment.data("invitation_id")
    if not invitation_id:
        return None
    from vafa.feedback.invitations import invitation_message
    from vafa.feedback.models import SurveyInvitation

    invitation = (
        SurveyInvitation.objects.select_related("survey", "customer")
        .filter(pk=invitation_id).first()
    )
    if invitation is None:
        return None
    message = invitation_message(invitation=invitation)
    # The invitation's HTML is rendered (and escaped) by the feedback app's own Django
    # template; it is marked safe so the email carries its one-click score links as links.
    return {"subject": message.subject, "url": message.url, "text": message.text,
            "html": Markup(message.html)}


def enrollment_context(
    enrollment: FlowEnrollment, *, now: datetime, channel: str
) -> dict[str, Any]:
    """The extra template context of an enrolment's message: `order` (or None), `flow`
    (key), `gift_ideas`, `invitation` (or None) and the trigger's own data (`tier`,
    `points`, `expires_on`, `reward`, …), all plain values."""
    zone = customer_zone(enrollment.customer.timezone)
    order = _trigger_order(enrollment)
    context: dict[str, Any] = {
        key: value for key, value in (enrollment.context or {}).items()
        if key not in {"order_id", "invitation_id"}
    }
    context.update(
        order=order_summary(order, zone, detail=True) if order is not None else None,
        flow=enrollment.flow.key,
        invitation=_invitation_context(enrollment),
    )
    if enrollment.flow.trigger == "birthday":
        context["gift_ideas"] = gift_interests(enrollment.customer_id)
    if enrollment.flow.kind == MessageKind.MARKETING:
        # what the customer's purchases point at, and how many bought the first of them lately
        context.update(customer_recommendations(
            enrollment.customer_id, language=message_language(enrollment.customer),
        ))
    return context


def enrollments_of(*, customer_id: int, flow_key: str | None = None) -> list[FlowEnrollment]:
    """A customer's enrolments, newest first (for the admin and tests)."""
    query = FlowEnrollment.objects.filter(customer_id=customer_id).select_related("flow")
    if flow_key:
        query = query.filter(flow__key=flow_key)
    return list(query.order_by("-entered_at", "-id"))


def flows_overview() -> list[dict[str, Any]]:
    """Each flow with how many customers are in it now and have finished it."""
    rows = []
    for flow in Flow.objects.order_by("key"):
        counts = Counter(flow.enrollments.values_list("state", flat=True))
        rows.append({
            "flow": flow, "active": counts[EnrollmentState.ACTIVE],
            "completed": counts[EnrollmentState.COMPLETED],
            "exited": counts[EnrollmentState.EXITED], "failed": counts[EnrollmentState.FAILED],
        })
    return rows


def flow_sample_context(*, today: Any) -> dict[str, Any]:
    """Made-up values of every variable a flow adds to a template (`order`, `tier_name`,
    `expiring_points`, …), so the template check of the messaging admin can render the flows'
    templates before they are saved (to be merged into `compose.sample_context`)."""
    from decimal import Decimal

    line = {"product": "Tea", "product_id": "P1", "category": "Tea", "quantity": 2,
            "unit_price": Money(Decimal(625_000), "IRT"),
            "total": Money(Decimal(1_250_000), "IRT")}
    return {
        "order": {"id": "1001", "placed_at": today, "status": "paid", "fulfillment": "shipped",
                  "total": Money(Decimal(1_250_000), "IRT"),
                  "shipping": Money(Decimal(0), "IRT"), "discount": Money(Decimal(0), "IRT"),
                  "currency": "IRT", "lines": [line], "categories": ["Tea"]},
        "flow": "sample", "tier_name": "Gold", "expiring_points": 500, "expires_on": "",
        "available_points": 1240, "days_since_last_order": 120, "segment": "at_risk",
        "score": 3, "gift_ideas": ["Tea"],
        "invitation": {"subject": "A quick question", "url": "https://shop.example/f/s/x/",
                       "text": "", "html": ""},
    }
