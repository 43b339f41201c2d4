"""Campaigns: a one-off or scheduled marketing send to a saved segment, with A/B variants.

A campaign's life: `draft` → `scheduled` (checked, waiting for its time) → `sending`
(recipients snapshotted, messages being enqueued and delivered) ⇄ `paused` → `finished` (every
message has a final status), or `cancelled` at any point before it finished. Messages go through
the outbox like any other (`source = "campaign:<id>"`), so consent, suppressions, quiet hours,
caps and the control group apply to them as to flows. Rows are changed only by
`vafa.messaging.campaigns.services`; `CampaignEvent` keeps who did what and why.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from vafa.customers.models import Channel, Customer
from vafa.insights.models import Segment
from vafa.messaging.models import AppendOnlyError, Topic


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SCHEDULED = "scheduled", _("Scheduled")
    SENDING = "sending", _("Sending")
    PAUSED = "paused", _("Paused")
    FINISHED = "finished", _("Finished")
    CANCELLED = "cancelled", _("Cancelled")


def _setting(name: str, default: Decimal | int) -> Any:
    return getattr(settings, name, default)


# Auto-pause defaults, overridable per shop in settings and per campaign in the admin. Mailbox
# providers' published limits: Gmail and Yahoo ask bulk senders to keep spam complaints under
# 0.3% (better 0.1%); Amazon SES reviews an account at a 5% bounce rate.
def default_max_bounce_rate() -> Decimal:
    return Decimal(str(_setting("VAFA_CAMPAIGN_MAX_BOUNCE_PERCENT", Decimal(5))))


def default_max_complaint_rate() -> Decimal:
    return Decimal(str(_setting("VAFA_CAMPAIGN_MAX_COMPLAINT_PERCENT", Decimal("0.3"))))


def default_min_sample() -> int:
    return int(_setting("VAFA_CAMPAIGN_MIN_SAMPLE", 200))


def _percent_field(label: Any, default: Any, help_text: Any) -> models.DecimalField:
    return models.DecimalField(
        label, max_digits=5, decimal_places=2, default=default, help_text=help_text,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
    )


class Campaign(models.Model):
    """A marketing send to the customers of `segment` at the moment it starts.

    `channel_order` lists channels by preference ("email,sms"): each recipient gets the message
    on the first channel they can receive (an address, consent, no suppression), checked at
    enqueue time and again when it is sent.
    """

    name = models.CharField(_("name"), max_length=200)
    segment = models.ForeignKey(
        Segment, on_delete=models.PROTECT, related_name="campaigns", verbose_name=_("segment")
    )
    channel_order = models.CharField(
        _("channels in order of preference"), max_length=100, default=Channel.EMAIL,
        help_text=_("Comma-separated, e.g. email,sms: each customer gets the first one they can "
                    "receive."),
    )
    topic = models.CharField(_("topic"), max_length=20, choices=Topic.choices, default=Topic.OFFERS)
    send_at = models.DateTimeField(
        _("send at"), null=True, blank=True, help_text=_("Empty: as soon as it is scheduled.")
    )
    control_percent = models.DecimalField(
        _("control group (%)"), max_digits=5, decimal_places=2, null=True, blank=True,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
        help_text=_("Empty: the shop's default from the messaging settings."),
    )
    status = models.CharField(
        _("status"), max_length=20, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT
    )
    status_reason = models.CharField(_("reason"), max_length=300, blank=True)
    max_bounce_percent = _percent_field(
        _("pause above bounce rate (%)"), default_max_bounce_rate,
        _("Sending pauses itself when more of the recent messages bounce."),
    )
    max_complaint_percent = _percent_field(
        _("pause above complaint rate (%)"), default_max_complaint_rate,
        _("Sending pauses itself when more of the recent messages are reported as spam."),
    )
    min_sample = models.PositiveIntegerField(
        _("judge rates after (messages)"), default=default_min_sample,
        help_text=_("Rates are judged only once this many messages went out since the start or "
                    "the last resume."),
    )
    recipients_count = models.PositiveIntegerField(_("recipients"), default=0)
    enqueue_cursor = models.BigIntegerField(default=0, editable=False)
    created_by = models.CharField(_("created by"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("created at"), default=now, editable=False)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    enqueued_at = models.DateTimeField(_("all messages enqueued at"), null=True, blank=True)
    health_since = models.DateTimeField(null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "send_at"], name="campaign_status_due")]

    def __str__(self) -> str:
        return self.name

    @property
    def source(self) -> str:
        """The outbox `source` of this campaign's messages (and its control-group salt)."""
        return f"campaign:{self.pk}"

    @property
    def channels(self) -> list[str]:
        return [c for c in (p.strip() for p in self.channel_order.split(",")) if c]


class CampaignVariant(models.Model):
    """One version of the message (A/B). `template_key` names `MessageTemplate`s, one per
    channel and language; customers are split between variants by `weight`, each one stably
    (a keyed hash), so a resumed or re-run campaign gives everyone the same variant."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="variants", verbose_name=_("campaign")
    )
    name = models.CharField(_("name"), max_length=20, help_text=_("Short, e.g. A or B."))
    weight = models.PositiveIntegerField(_("weight"), default=1)
    template_key = models.SlugField(_("template key"), max_length=100)

    class Meta:
        verbose_name = _("variant")
        verbose_name_plural = _("variants")
        ordering = ["campaign", "name"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "name"], name="campaign_variant_name"),
            models.CheckConstraint(condition=Q(weight__gt=0), name="campaign_variant_weight_gt_0"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.name}"


class CampaignRecipient(models.Model):
    """A customer in the campaign's snapshot of its segment, taken when it started: customers
    who join the segment later are not added, and a resume continues with the same list."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="recipients", verbose_name=_("campaign")
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", verbose_name=_("customer")
    )
    variant = models.CharField(_("variant"), max_length=20)

    class Meta:
        verbose_name = _("recipient")
        verbose_name_plural = _("recipients")
        constraints = [
            models.UniqueConstraint(fields=["campaign", "customer"], name="campaign_recipient_once"),
        ]
        indexes = [models.Index(fields=["campaign", "id"], name="campaign_recipient_order")]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.customer_id}"


class CampaignEventKind(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    STARTED = "started", _("Started")
    ENQUEUED = "enqueued", _("All messages enqueued")
    PAUSED = "paused", _("Paused")
    AUTO_PAUSED = "auto_paused", _("Paused automatically")
    RESUMED = "resumed", _("Resumed")
    CANCELLED = "cancelled", _("Cancelled")
    FINISHED = "finished", _("Finished")
    TEMPLATE_ERRORS = "template_errors", _("Template errors")


class CampaignEvent(models.Model):
    """Something that happened to a campaign, with who did it and why; never edited."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="events", verbose_name=_("campaign")
    )
    event = models.CharField(_("event"), max_length=20, choices=CampaignEventKind.choices)
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    actor = models.CharField(_("by"), max_length=150, blank=True)
    at = models.DateTimeField(_("at"))

    class Meta:
        verbose_name = _("campaign event")
        verbose_name_plural = _("campaign events")
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.event}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("campaign events are append-only")
        super().save(*args, **kwargs)
