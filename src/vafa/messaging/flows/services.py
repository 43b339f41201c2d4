"""Writes of the flows app: enrol a customer in the flows of a trigger, advance the enrolments
whose next step is due, switch flows on and off.

Every function is keyword-only and takes `now`. Messages go through the outbox's
`message_enqueue` (source `flow:<key>`, step = the step's position, occurrence = the
enrolment's occurrence), whose unique key makes a replayed step a no-op; the enrolment row is
locked while its step is enqueued, so two workers advancing at once send nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction

from vafa.core.errors import ValidationError
from vafa.customers.models import Customer
from vafa.messaging.errors import TemplateError
from vafa.messaging.flows.conditions import conditions_problems, first_failing
from vafa.messaging.flows.models import (
    EnrollmentState,
    Flow,
    FlowEnrollment,
    FlowStep,
    Reentry,
)
from vafa.messaging.flows.selectors import enrollment_context
from vafa.messaging.models import MessageKind, MessageTemplate, Status
from vafa.messaging.selectors import can_send
from vafa.messaging.services import message_enqueue

logger = logging.getLogger(__name__)

ADVANCE_BATCH = 200


def _step_delay(step: FlowStep | None) -> timedelta:
    return timedelta(minutes=step.delay_minutes if step is not None else 0)


def flow_enroll(
    *,
    flow: Flow,
    customer: Customer,
    occurrence: str,
    now: datetime,
    context: Mapping[str, Any] | None = None,
) -> FlowEnrollment | None:
    """Put `customer` in `flow` for this occurrence of its trigger, the first step due after
    its delay. None when the flow is off, has no steps, its re-entry policy keeps the customer
    out, or its conditions do not hold; the same occurrence again returns None too (the
    existing enrolment stands)."""
    if not flow.enabled:
        return None
    first = flow.steps.order_by("position").first()
    if first is None:
        return None
    earlier = FlowEnrollment.objects.filter(flow=flow, customer=customer)
    if flow.reentry == Reentry.NEVER and earlier.exists():
        return None
    if flow.reentry == Reentry.AFTER_EXIT and earlier.filter(
        state=EnrollmentState.ACTIVE
    ).exists():
        return None
    enrollment = FlowEnrollment(
        flow=flow, customer=customer, occurrence=occurrence[:120], context=dict(context or {}),
        next_position=0, next_at=now + _step_delay(first), entered_at=now, updated_at=now,
    )
    if first_failing(flow.conditions, enrollment, now):
        return None
    try:
        with transaction.atomic():
            enrollment.save()
    except IntegrityError:  # this occurrence was enrolled already (a replayed trigger)
        return None
    return enrollment


def trigger_fire(
    *,
    trigger: str,
    customer: Customer,
    occurrence: str,
    now: datetime,
    context: Mapping[str, Any] | None = None,
) -> list[FlowEnrollment]:
    """Enrol the customer in every enabled flow with this trigger."""
    enrolled = []
    for flow in Flow.objects.filter(trigger=trigger, enabled=True).order_by("key"):
        enrollment = flow_enroll(
            flow=flow, customer=customer, occurrence=occurrence, now=now, context=context
        )
        if enrollment is not None:
            enrolled.append(enrollment)
    return enrolled


@dataclass
class AdvanceResult:
    """What `flows_advance` did, per outcome (`enqueued`, `held_out`, `no_channel`, `exited`,
    `completed`, `failed`)."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1

    def __getitem__(self, outcome: str) -> int:
        return self.counts.get(outcome, 0)


def _channel_for(
    flow: Flow, step: FlowStep, customer: Customer, now: datetime
) -> tuple[str, str]:
    """The first channel in the flow's order that has the step's template and that the
    customer can receive now; else ("", why not)."""
    templates = set(
        MessageTemplate.objects.filter(key=step.template_key).values_list("channel", flat=True)
    )
    reasons = []
    for channel in flow.channels or []:
        if channel not in templates:
            reasons.append(f"{channel}:no_template")
            continue
        decision = can_send(
            customer=customer, channel=channel, kind=flow.kind, topic=flow.topic, now=now
        )
        if decision.allowed:
            return channel, ""
        reasons.append(f"{channel}:{decision.reason}")
    return "", ", ".join(reasons) or "no channel configured"


def _finish(enrollment: FlowEnrollment, state: str, reason: str, now: datetime) -> None:
    FlowEnrollment.objects.filter(pk=enrollment.pk).update(
        state=state, reason=reason[:200], next_at=None, updated_at=now
    )


def _advance_one(enrollment_id: int, now: datetime, result: AdvanceResult) -> None:
    with transaction.atomic():
        query = FlowEnrollment.objects.select_for_update(
            skip_locked=connection.features.has_select_for_update_skip_locked
        ).select_related("flow", "customer")
        enrollment = query.filter(
            pk=enrollment_id, state=EnrollmentState.ACTIVE, next_at__lte=now
        ).first()
        if enrollment is None:  # another worker has it, or it moved on
            return
        flow = enrollment.flow
        if not flow.enabled:
            _finish(enrollment, EnrollmentState.EXITED, "flow switched off", now)
            result.add("exited")
            return
        steps = list(flow.steps.order_by("position"))
        if enrollment.next_position >= len(steps):
            _finish(enrollment, EnrollmentState.COMPLETED, "", now)
            result.add("completed")
            return
        step = steps[enrollment.next_position]
        failing = first_failing(flow.conditions, enrollment, now)
        if failing:
            _finish(enrollment, EnrollmentState.EXITED, f"condition: {failing}", now)
            result.add("exited")
            return
        reason = ""
        failing = first_failing(step.conditions, enrollment, now)
        if failing:
            reason, outcome = f"step {step.position} skipped: {failing}", "skipped"
        else:
            channel, why = _channel_for(flow, step, enrollment.customer, now)
            if not channel:
                reason, outcome = f"step {step.position}: {why}", "no_channel"
            else:
                try:
                    enqueued = message_enqueue(
                        customer=enrollment.customer, channel=channel, kind=flow.kind,
                        source=flow.source, template_key=step.template_key,
                        step=str(step.position), occurrence=enrollment.occurrence,
                        topic=flow.topic, now=now,
                        extra_context=enrollment_context(enrollment, now=now,
                                                         channel=channel),
                        control_percent=(
                            flow.control_percent if flow.kind == MessageKind.MARKETING else None
                        ),
                    )
                except TemplateError as exc:
                    # Never a broken message: the merchant sees the error on the enrolment.
                    _finish(enrollment, EnrollmentState.FAILED,
                            f"step {step.position}: template error: {exc}", now)
                    result.add("failed")
                    return
                outcome = (
                    "held_out" if enqueued.message.status == Status.HELD_OUT else "enqueued"
                )
        result.add(outcome)
        position = enrollment.next_position + 1
        if position >= len(steps):
            FlowEnrollment.objects.filter(pk=enrollment.pk).update(
                state=EnrollmentState.COMPLETED, next_position=position, next_at=None,
                reason=reason[:200], updated_at=now,
            )
            return
        FlowEnrollment.objects.filter(pk=enrollment.pk).update(
            next_position=position, next_at=now + _step_delay(steps[position]),
            reason=reason[:200], updated_at=now,
        )


def flows_advance(*, now: datetime, limit: int | None = None) -> AdvanceResult:
    """Send every due step: conditions checked again, the first channel the customer can
    receive, the message enqueued once. A customer whose conditions no longer hold leaves the
    flow; a step no channel can carry is skipped (the reason stays on the enrolment)."""
    result = AdvanceResult()
    done = 0
    while limit is None or done < limit:
        size = ADVANCE_BATCH if limit is None else min(ADVANCE_BATCH, limit - done)
        due = list(
            FlowEnrollment.objects.filter(state=EnrollmentState.ACTIVE, next_at__lte=now)
            .order_by("next_at", "id").values_list("id", flat=True)[:size]
        )
        if not due:
            break
        for enrollment_id in due:
            try:
                _advance_one(enrollment_id, now, result)
            except Exception:  # one customer's problem must not stop the others
                logger.exception("flow enrolment %s could not advance", enrollment_id)
                with transaction.atomic():
                    FlowEnrollment.objects.filter(pk=enrollment_id).update(
                        state=EnrollmentState.FAILED, reason="internal error (see the log)",
                        next_at=None, updated_at=now,
                    )
                result.add("failed")
        done += len(due)
    return result


@transaction.atomic
def flow_set_enabled(*, flow: Flow, enabled: bool, now: datetime) -> Flow:
    """Switch a flow on or off; enrolments of a switched-off flow leave it at their next step."""
    Flow.objects.filter(pk=flow.pk).update(enabled=enabled, updated_at=now)
    flow.enabled = enabled
    flow.updated_at = now
    return flow


def flow_validate(*, flow: Flow) -> None:
    """Refuse a flow the runner could not use (unknown conditions or channels)."""
    from vafa.customers.models import Channel

    problems = conditions_problems(flow.conditions)
    unknown = [c for c in (flow.channels or []) if c not in Channel.values]
    if unknown:
        problems.append(f"unknown channels: {', '.join(map(str, unknown))}")
    if problems:
        raise ValidationError("; ".join(problems), field="conditions")

