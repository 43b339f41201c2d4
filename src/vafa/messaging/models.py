"""What the messaging app remembers: consent history, suppressions, preferences, templates, the
outbox and its delivery log, and the addresses only messaging knows (Telegram chats, push
subscriptions).

The outbox is the source of truth for delivery, not the task broker: every message is one
`OutboxMessage` row, created once (its `dedupe_key` is unique), claimed by a worker, and moved to
a final status only after the provider answered. Every move after creation appends a
`DeliveryLog` row saying what happened and why. Rows are written only by
`vafa.messaging.services` and `vafa.messaging.outbox`.
"""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from vafa.customers.models import Channel, Customer


class AppendOnlyError(RuntimeError):
    """Somebody tried to change or delete a history row; history only grows."""


class MessageKind(models.TextChoices):
    """Transactional messages answer something the customer did (an order, a shipment) and need
    no marketing consent; marketing messages need consent, honour caps and quiet hours and
    carry unsubscribe links."""

    TRANSACTIONAL = "transactional", _("Transactional")
    MARKETING = "marketing", _("Marketing")


class Topic(models.TextChoices):
    """What a marketing message is about; a customer can switch topics off."""

    OFFERS = "offers", _("Offers")
    NEWS = "news", _("News")
    LOYALTY = "loyalty", _("Points and rewards")
    FEEDBACK = "feedback", _("Reviews and surveys")


class Frequency(models.TextChoices):
    """How often a customer wants marketing messages at most (on top of the shop's cap)."""

    ALL = "all", _("Any time")
    WEEKLY = "weekly", _("Once a week")
    MONTHLY = "monthly", _("Once a month")


class SuppressionReason(models.TextChoices):
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
    HARD_BOUNCE = "hard_bounce", _("Hard bounce")
    COMPLAINT = "complaint", _("Complaint")
    MANUAL = "manual", _("Manual")
    BLOCKED_BOT = "blocked_bot", _("Blocked the bot")


# Reasons that stop every message on the channel, transactional ones included: the address does
# not work (a bounce, a bot the customer blocked) or the shop said so. An unsubscribe or a
# complaint stops marketing only: an order confirmation still reaches the customer.
BLOCKS_TRANSACTIONAL = frozenset(
    {SuppressionReason.HARD_BOUNCE, SuppressionReason.BLOCKED_BOT, SuppressionReason.MANUAL}
)


class PolicyAction(models.TextChoices):
    DEFER = "defer", _("Defer until allowed")
    DROP = "drop", _("Drop")


class Status(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    BOUNCED = "bounced", _("Bounced")
    SUPPRESSED = "suppressed", _("Suppressed")
    CAPPED = "capped", _("Capped")
    DEFERRED = "deferred", _("Deferred")
    FAILED = "failed", _("Failed")
    DROPPED = "dropped", _("Dropped")
    HELD_OUT = "held_out", _("Held out (control group)")


# Statuses a worker may claim once `due_at` has come.
PENDING_STATUSES = frozenset({Status.QUEUED, Status.DEFERRED})
# Statuses after which nothing more is sent (a provider event may still move sent → delivered).
FINAL_STATUSES = frozenset(Status) - PENDING_STATUSES - {Status.SENDING}
# Statuses of messages the provider accepted: they count toward frequency caps.
ACCEPTED_STATUSES = frozenset({Status.SENT, Status.DELIVERED, Status.BOUNCED})


class LogEvent(models.TextChoices):
    """What a delivery-log row records: a status change or a later provider or tracking event."""

    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    BOUNCED = "bounced", _("Bounced")
    COMPLAINED = "complained", _("Complained")
    SUPPRESSED = "suppressed", _("Suppressed")
    CAPPED = "capped", _("Capped")
    DEFERRED = "deferred", _("Deferred")
    RETRY = "retry", _("Will retry")
    FAILED = "failed", _("Failed")
    DROPPED = "dropped", _("Dropped")
    RELEASED = "released", _("Released unsent")
    RESENT = "resent", _("Queued again")
    OPENED = "opened", _("Opened")
    CLICKED = "clicked", _("Clicked")


def _default_weekend() -> str:
    """Friday in Persian and Arabic shops, Saturday and Sunday elsewhere (ISO weekdays)."""
    return "5" if getattr(settings, "LANGUAGE_CODE", "fa")[:2] in {"fa", "ar"} else "6,7"


class MessagingSettings(models.Model):
    """The one row (id 1) of sending policy; read with `selectors.messaging_settings()`.

    Quiet hours, the weekend and the frequency cap apply to marketing messages and are counted in
    each customer's own time zone (`Customer.timezone`, else the shop's `TIME_ZONE`). The cap
    counts marketing messages the provider accepted on any channel during the last
    `cap_days` local calendar days, today included.
    """

    shop_name = models.CharField(_("shop name"), max_length=200, blank=True)
    quiet_start = models.TimeField(_("quiet hours start"), default=time(22, 0))
    quiet_end = models.TimeField(_("quiet hours end"), default=time(9, 0))
    quiet_action = models.CharField(
        _("during quiet hours"), max_length=10, choices=PolicyAction.choices,
        default=PolicyAction.DEFER,
    )
    cap_messages = models.PositiveSmallIntegerField(
        _("marketing messages at most"), default=3,
        help_text=_("0 switches the cap off."),
    )
    cap_days = models.PositiveSmallIntegerField(_("per days"), default=7)
    cap_action = models.CharField(
        _("over the cap"), max_length=10, choices=PolicyAction.choices, default=PolicyAction.DEFER
    )
    weekend_days = models.CharField(
        _("weekend days"), max_length=20, blank=True, default=_default_weekend,
        help_text=_("ISO weekdays separated by commas: 1 is Monday, 5 Friday, 7 Sunday."),
    )
    no_marketing_on_weekend = models.BooleanField(
        _("no marketing on the weekend"), default=False
    )
    control_percent = models.DecimalField(
        _("control group (%)"), max_digits=5, decimal_places=2, default=Decimal(10),
        help_text=_("Share of customers held out of every marketing flow and campaign."),
    )
    max_attempts = models.PositiveSmallIntegerField(_("attempts before giving up"), default=6)
    retry_base_seconds = models.PositiveIntegerField(_("first retry after (seconds)"), default=60)
    retry_max_seconds = models.PositiveIntegerField(
        _("longest wait between retries (seconds)"), default=6 * 3600
    )
    track_links = models.BooleanField(_("track opens and clicks"), default=True)
    site_url = models.URLField(
        _("site URL"), max_length=300, blank=True,
        help_text=_("Public address of this site, used in links inside messages. "
                    "Blank: the VAFA_SITE_URL environment variable."),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("messaging settings")
        verbose_name_plural = _("messaging settings")
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="messaging_settings_single_row"),
            models.CheckConstraint(
                condition=Q(control_percent__gte=0) & Q(control_percent__lte=100),
                name="messaging_control_percent_0_100",
            ),
            models.CheckConstraint(condition=Q(cap_days__gt=0), name="messaging_cap_days_gt_0"),
        ]

    def __str__(self) -> str:
        return str(_("Messaging settings"))

    @property
    def weekend(self) -> frozenset[int]:
        """The weekend as ISO weekday numbers."""
        return frozenset(int(d) for d in self.weekend_days.replace(" ", "").split(",") if d)


class EmailProvider(models.TextChoices):
    """Who delivers email: an SMTP server or an email service provider through anymail."""

    SMTP = "smtp", _("SMTP server")
    MAILGUN = "mailgun", "Mailgun"
    POSTMARK = "postmark", "Postmark"
    SENDGRID = "sendgrid", "SendGrid"
    BREVO = "brevo", "Brevo"
    MAILJET = "mailjet", "Mailjet"


class SmsProvider(models.TextChoices):
    KAVENEGAR = "kavenegar", _("Kavenegar")
    TWILIO = "twilio", "Twilio"


PROVIDER_CHOICES: dict[str, list[tuple[str, Any]]] = {
    Channel.EMAIL: EmailProvider.choices,
    Channel.SMS: SmsProvider.choices,
    Channel.TELEGRAM: [("telegram", _("Telegram Bot API"))],
    Channel.PUSH: [("webpush", _("Web push (VAPID)"))],
}
"""The providers each channel can use (the admin offers only the channel's own)."""


class ChannelSettings(models.Model):
    """Staff-editable, non-secret settings of one channel (one row per channel).

    A blank field means "use the environment" (see `vafa.messaging.conf` for the precedence);
    secrets never live here. A switched-off channel keeps its messages waiting in the outbox
    until it is switched on again.
    """

    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices, unique=True)
    enabled = models.BooleanField(
        _("enabled"), default=True,
        help_text=_("When off, messages for this channel wait in the outbox until it is on."),
    )
    provider = models.CharField(
        _("provider"), max_length=20, blank=True,
        choices=[*EmailProvider.choices, *SmsProvider.choices, ("telegram", _("Telegram Bot API")),
                 ("webpush", _("Web push (VAPID)"))],
        help_text=_("Blank: the provider named in the environment."),
    )
    from_name = models.CharField(_("sender name"), max_length=100, blank=True)
    from_address = models.EmailField(_("sender address"), blank=True)
    reply_to = models.EmailField(_("reply-to address"), blank=True)
    sender = models.CharField(
        _("SMS sender line"), max_length=40, blank=True,
        help_text=_("Kavenegar line number, or a Twilio number (E.164) or Messaging Service SID."),
    )
    bot_username = models.CharField(_("Telegram bot username"), max_length=64, blank=True)
    rate_per_second = models.DecimalField(
        _("messages per second"), max_digits=7, decimal_places=2, null=True, blank=True,
        help_text=_("Per worker; 0 means no limit. Blank: the environment's rate."),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("channel settings")
        verbose_name_plural = _("channel settings")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(rate_per_second__isnull=True) | Q(rate_per_second__gte=0),
                name="msg_channel_rate_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return str(Channel(self.channel).label)


class ConsentChange(models.Model):
    """One change of a customer's consent on a channel, never edited or deleted: the history
    behind `customers.Consent` (which holds only the current state)."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="consent_changes",
        verbose_name=_("customer"),
    )
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    granted = models.BooleanField(_("granted"))
    source = models.CharField(_("source"), max_length=100)
    changed_at = models.DateTimeField(_("changed at"))

    class Meta:
        verbose_name = _("consent change")
        verbose_name_plural = _("consent changes")
        ordering = ["-changed_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "channel", "changed_at"], name="msg_consent_hist"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}:{self.channel}={'yes' if self.granted else 'no'}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("consent history is append-only; record a new change")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise AppendOnlyError("consent history is append-only; record a new change")


class Suppression(models.Model):
    """Do not send on `channel` to this customer or address. Keyed by address too, so a
    re-imported customer with the same email or phone stays suppressed. A suppression is lifted
    (not deleted) when the customer opts in again; `lifted_at` keeps the record."""

    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="suppressions",
        verbose_name=_("customer"),
    )
    address = models.CharField(
        _("address"), max_length=320, blank=True,
        help_text=_("Email in lower case, phone in E.164, or Telegram chat id."),
    )
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    reason = models.CharField(_("reason"), max_length=20, choices=SuppressionReason.choices)
    source = models.CharField(_("source"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("created at"))
    lifted_at = models.DateTimeField(_("lifted at"), null=True, blank=True)

    class Meta:
        verbose_name = _("suppression")
        verbose_name_plural = _("suppressions")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["channel", "address"], name="msg_suppr_address"),
            models.Index(fields=["customer", "channel"], name="msg_suppr_customer"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(customer__isnull=False) | ~Q(address=""),
                name="msg_suppression_has_target",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.address or self.customer_id} ({self.reason})"


class Preference(models.Model):
    """What a customer chose in the preference centre, beyond per-channel consent."""

    customer = models.OneToOneField(
        Customer, on_delete=models.CASCADE, related_name="messaging_preference",
        verbose_name=_("customer"),
    )
    topics_off = models.JSONField(_("topics switched off"), default=list, blank=True)
    frequency = models.CharField(
        _("frequency"), max_length=10, choices=Frequency.choices, default=Frequency.ALL
    )
    paused_until = models.DateTimeField(_("paused until"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"))

    class Meta:
        verbose_name = _("messaging preference")
        verbose_name_plural = _("messaging preferences")

    def __str__(self) -> str:
        return f"{self.customer_id}:{self.frequency}"


class MessageTemplate(models.Model):
    """A merchant-editable message in one language for one channel.

    `subject` is the email subject, the push title, and unused for SMS and Telegram. `body_html`
    is used by email only (a fragment: the layout, direction and footer are added around it);
    `body_text` is the plain-text part of an email and the whole of an SMS, Telegram or push
    message. All three are Jinja2, rendered in a sandbox (see `vafa.messaging.templating`).
    """

    key = models.SlugField(_("key"), max_length=100)
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    language = models.CharField(_("language"), max_length=10, choices=settings.LANGUAGES)
    subject = models.CharField(_("subject"), max_length=300, blank=True)
    body_html = models.TextField(_("HTML body"), blank=True)
    body_text = models.TextField(_("text body"), blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        ordering = ["key", "channel", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["key", "channel", "language"], name="msg_template_key_channel_lang"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.channel}, {self.language})"


class OutboxMessage(models.Model):
    """One message to one customer, rendered when it was enqueued and sent at most once.

    `dedupe_key` names the message by (customer, source flow or campaign, step, occurrence), so
    enqueueing the same message twice finds the first row. `status` moves queued/deferred →
    sending (claimed by a worker until `locked_until`) → a final status; the claim's
    `claim_token` guards every write of the worker that holds it.
    """

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="outbox_messages",
        verbose_name=_("customer"),
    )
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    kind = models.CharField(_("kind"), max_length=20, choices=MessageKind.choices)
    topic = models.CharField(_("topic"), max_length=20, choices=Topic.choices, blank=True)
    language = models.CharField(_("language"), max_length=10)
    source = models.CharField(
        _("source"), max_length=100, help_text=_("The flow or campaign, e.g. flow:welcome.")
    )
    step = models.CharField(_("step"), max_length=50, blank=True)
    occurrence = models.CharField(_("occurrence"), max_length=100, blank=True)
    variant = models.CharField(_("variant"), max_length=20, blank=True)
    dedupe_key = models.CharField(_("deduplication key"), max_length=255, unique=True)
    template = models.ForeignKey(
        MessageTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("template"),
    )
    subject = models.CharField(_("subject"), max_length=300, blank=True)
    body_text = models.TextField(_("text body"), blank=True)
    body_html = models.TextField(_("HTML body"), blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.QUEUED
    )
    status_reason = models.CharField(_("reason"), max_length=200, blank=True)
    due_at = models.DateTimeField(_("due at"))
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    locked_until = models.DateTimeField(_("claimed until"), null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True, editable=False)
    to_address = models.CharField(_("sent to"), max_length=1000, blank=True)
    provider = models.CharField(_("provider"), max_length=30, blank=True)
    provider_message_id = models.CharField(
        _("provider message ID"), max_length=255, blank=True, db_index=True
    )
    created_at = models.DateTimeField(_("created at"), default=now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    opened_at = models.DateTimeField(_("first opened at"), null=True, blank=True)
    clicked_at = models.DateTimeField(_("first clicked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox messages")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "due_at"], name="msg_outbox_due"),
            models.Index(fields=["customer", "kind", "sent_at"], name="msg_outbox_cap"),
            models.Index(fields=["source", "status"], name="msg_outbox_source"),
        ]

    def __str__(self) -> str:
        return f"{self.dedupe_key} [{self.status}]"


class DeliveryLog(models.Model):
    """One thing that happened to a message: a status change, a retry, a provider or tracking
    event. `reason` is short and never contains a secret."""

    message = models.ForeignKey(
        OutboxMessage, on_delete=models.CASCADE, related_name="log", verbose_name=_("message")
    )
    event = models.CharField(_("event"), max_length=20, choices=LogEvent.choices)
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    provider_message_id = models.CharField(_("provider message ID"), max_length=255, blank=True)
    at = models.DateTimeField(_("at"))

    class Meta:
        verbose_name = _("delivery log entry")
        verbose_name_plural = _("delivery log")
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["message", "at"], name="msg_log_message")]

    def __str__(self) -> str:
        return f"{self.message_id}:{self.event}"


class TelegramLink(models.Model):
    """A customer's Telegram chat, linked when they open the bot through their `/start TOKEN`
    deep link. `chat_id` is empty until then."""

    customer = models.OneToOneField(
        Customer, on_delete=models.CASCADE, related_name="telegram_link",
        verbose_name=_("customer"),
    )
    token = models.CharField(_("link token"), max_length=64, unique=True)
    chat_id = models.CharField(_("chat ID"), max_length=32, blank=True, db_index=True)
    created_at = models.DateTimeField(_("created at"))
    linked_at = models.DateTimeField(_("linked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("Telegram link")
        verbose_name_plural = _("Telegram links")

    def __str__(self) -> str:
        return f"{self.customer_id}:{self.chat_id or '-'}"


class PushSubscription(models.Model):
    """A browser's web push subscription (the `PushSubscription.toJSON()` of the member portal's
    service worker)."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="push_subscriptions",
        verbose_name=_("customer"),
    )
    endpoint = models.URLField(_("endpoint"), max_length=1000, unique=True)
    p256dh = models.CharField(_("public key"), max_length=200)
    auth = models.CharField(_("auth secret"), max_length=100)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("push subscription")
        verbose_name_plural = _("push subscriptions")

    def __str__(self) -> str:
        return f"{self.customer_id}:{self.endpoint[:40]}"
