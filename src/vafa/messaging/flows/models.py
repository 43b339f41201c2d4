"""Flow definitions, steps and per-customer enrolments.

A `Flow` is what the merchant switches on and off: a trigger (a customer signs up, an order
ships, a birthday, …), conditions, an ordered list of `FlowStep`s (each a delay and a message
template key), the channels to try in order, and whether a customer may enter it again. A
`FlowEnrollment` is one customer's walk through one flow for one occurrence of the trigger (an
order, a year, a lapse); it is unique per (flow, customer, occurrence), so a replayed trigger
enrols nobody twice. Messages themselves go through the outbox (`message_enqueue`), whose key
per (customer, `flow:<key>`, step, occurrence) makes each step a single message.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from vafa.customers.models import Customer
from vafa.messaging.models import MessageKind, Topic


class Trigger(models.TextChoices):
    SIGNUP = "signup", _("Customer signed up")
    ORDER_PLACED = "order_placed", _("Order placed")
    ORDER_SHIPPED = "order_shipped", _("Order shipped")
    ORDER_DELIVERED = "order_delivered", _("Order delivered")
    BIRTHDAY = "birthday", _("Birthday")
    OVERDUE = "overdue", _("Customer overdue (win-back)")
    AT_RISK = "at_risk", _("Valuable customer at risk")
    TIER_UP = "tier_up", _("Moved up a tier")
    POINTS_EXPIRING = "points_expiring", _("Points expiring soon")
    REWARD_AVAILABLE = "reward_available", _("Reward available")
    SURVEY_DUE = "survey_due", _("Survey invitation due")
    DETRACTOR = "detractor", _("Unhappy survey answer")
    PROMOTER = "promoter", _("Promoter survey answer")


class Reentry(models.TextChoices):
    NEVER = "never", _("Only once per customer")
    AFTER_EXIT = "after_exit", _("Again once the previous run is over")
    ALWAYS = "always", _("Every time the trigger happens")


class EnrollmentState(models.TextChoices):
    ACTIVE = "active", _("Active")
    COMPLETED = "completed", _("Completed")
    EXITED = "exited", _("Left (conditions no longer hold)")
    FAILED = "failed", _("Failed")


def _default_channels() -> list[str]:
    return ["email", "sms"]


class Flow(models.Model):
    """One lifecycle flow. `conditions` and `params` are small JSON documents read by
    `vafa.messaging.flows.conditions` (e.g. `{"no_order_since_entry": true}`) and by the
    trigger (e.g. `{"days_after": 7}`); they are checked again before every step."""

    key = models.SlugField(_("key"), max_length=60, unique=True)
    name = models.CharField(_("name"), max_length=200)
    trigger = models.CharField(_("trigger"), max_length=30, choices=Trigger.choices, db_index=True)
    kind = models.CharField(
        _("kind"), max_length=20, choices=MessageKind.choices, default=MessageKind.MARKETING,
        help_text=_("Transactional messages need no marketing consent and carry no "
                    "unsubscribe link; everything else is marketing."),
    )
    topic = models.CharField(_("topic"), max_length=20, choices=Topic.choices, blank=True)
    enabled = models.BooleanField(_("on"), default=False)
    reentry = models.CharField(
        _("may a customer enter again?"), max_length=20, choices=Reentry.choices,
        default=Reentry.ALWAYS,
    )
    conditions = models.JSONField(_("conditions"), default=dict, blank=True)
    params = models.JSONField(_("trigger settings"), default=dict, blank=True)
    channels = models.JSONField(
        _("channel order"), default=_default_channels,
        help_text=_("Channels to try in order; the first the customer can receive is used."),
    )
    control_percent = models.DecimalField(
        _("control group %"), max_digits=5, decimal_places=2, null=True, blank=True,
        help_text=_("Empty: the shop's default. Transactional flows never hold anyone out."),
    )
    updated_at = models.DateTimeField(_("updated at"), default=now)

    class Meta:
        verbose_name = _("flow")
        verbose_name_plural = _("flows")
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name

    @property
    def source(self) -> str:
        """The outbox source of this flow's messages (and its control-group salt)."""
        return f"flow:{self.key}"


class FlowStep(models.Model):
    """One message of a flow: sent `delay_minutes` after the previous step (the first: after
    the trigger), with the template `template_key` in the customer's language."""

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="steps",
                             verbose_name=_("flow"))
    position = models.PositiveSmallIntegerField(_("position"))
    delay_minutes = models.PositiveIntegerField(_("delay (minutes)"), default=0)
    template_key = models.SlugField(_("template key"), max_length=100)
    conditions = models.JSONField(_("step conditions"), default=dict, blank=True)

    class Meta:
        verbose_name = _("flow step")
        verbose_name_plural = _("flow steps")
        ordering = ["flow", "position"]
        constraints = [
            models.UniqueConstraint(fields=["flow", "position"], name="flow_step_position"),
        ]

    def __str__(self) -> str:
        return f"{self.flow_id}#{self.position} {self.template_key}"


class FlowEnrollment(models.Model):
    """One customer in one flow for one occurrence of its trigger. `next_position` is the
    step still to send (0-based index into the flow's steps in order) and `next_at` when."""

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="enrollments",
                             verbose_name=_("flow"))
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE,
                                 related_name="flow_enrollments", verbose_name=_("customer"))
    occurrence = models.CharField(_("occurrence"), max_length=120)
    state = models.CharField(_("state"), max_length=20, choices=EnrollmentState.choices,
                             default=EnrollmentState.ACTIVE)
    next_position = models.PositiveSmallIntegerField(_("next step"), default=0)
    next_at = models.DateTimeField(_("next step at"), null=True, blank=True)
    context = models.JSONField(_("trigger data"), default=dict, blank=True)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    entered_at = models.DateTimeField(_("entered at"), default=now)
    updated_at = models.DateTimeField(_("updated at"), default=now)

    class Meta:
        verbose_name = _("flow enrolment")
        verbose_name_plural = _("flow enrolments")
        ordering = ["-entered_at"]
        constraints = [
            models.UniqueConstraint(fields=["flow", "customer", "occurrence"],
                                    name="flow_enrollment_once"),
        ]
        indexes = [
            models.Index(fields=["next_at"], condition=Q(state="active"),
                         name="flow_enrollment_due"),
            models.Index(fields=["flow", "customer"], name="flow_enrollment_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.flow_id}:{self.customer_id}:{self.occurrence} ({self.state})"

    def data(self, name: str, default: Any = None) -> Any:
        return (self.context or {}).get(name, default)
