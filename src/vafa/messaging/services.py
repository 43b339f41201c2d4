"""Writes of the messaging app: consent and suppression, preferences, unsubscribes, enqueueing
messages, linking Telegram chats and push subscriptions, provider and tracking events.

Every function is keyword-only, takes `now` explicitly (tests freeze time by passing it) and
writes inside one transaction. Delivery itself (`outbox_flush`) lives in `vafa.messaging.outbox`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q

from vafa.core.errors import ValidationError
from vafa.core.text import PhoneError, normalize_digits, normalize_phone
from vafa.customers.models import Channel, Consent, Customer
from vafa.messaging import tokens
from vafa.messaging.compose import (
    RenderedMessage,
    message_context,
    message_language,
    render_message,
)
from vafa.messaging.errors import InvalidToken
from vafa.messaging.measurement import holdout_key, is_held_out
from vafa.messaging.models import (
    ConsentChange,
    DeliveryLog,
    Frequency,
    LogEvent,
    MessageKind,
    MessageTemplate,
    OutboxMessage,
    Preference,
    PushSubscription,
    Status,
    Suppression,
    SuppressionReason,
    TelegramLink,
    Topic,
)
from vafa.messaging.selectors import (
    messaging_config,
    messaging_settings,
    normalized_address,
    template_for,
)

PAUSE_DAYS = 30
RESENDABLE = frozenset(
    {Status.FAILED, Status.BOUNCED, Status.DROPPED, Status.CAPPED, Status.SUPPRESSED}
)


def _require(value: str, allowed: Sequence[str], field: str) -> None:
    if value not in allowed:
        raise ValidationError(f"{field} must be one of {', '.join(allowed)}", field=field)


# ---------------------------------------------------------------------------------------------
# Consent and suppression.


def current_address(customer: Customer, channel: str) -> str:
    """The customer's address on `channel` as suppressions store it (empty if none)."""
    if channel == Channel.EMAIL:
        return normalized_address(channel, customer.email)
    if channel == Channel.SMS:
        return normalized_address(channel, customer.phone)
    if channel == Channel.TELEGRAM:
        link = TelegramLink.objects.filter(customer=customer).exclude(chat_id="").first()
        return link.chat_id if link else ""
    return ""


@transaction.atomic
def consent_set(
    *, customer: Customer, channel: str, granted: bool, source: str, now: datetime
) -> ConsentChange | None:
    """Record the customer's consent on `channel`; returns the history row, or None when
    nothing changed.

    Granting consent is an explicit opt-in, so it also lifts an earlier `unsubscribed`
    suppression of the channel (bounces and complaints stay: the address is still bad).
    """
    _require(channel, Channel.values, "channel")
    if not source:
        raise ValidationError("a consent change needs its source", field="source")
    current = Consent.objects.select_for_update().filter(customer=customer, channel=channel).first()
    lifted = 0
    if granted:
        address = current_address(customer, channel)
        target = Q(customer=customer) | (Q(address=address) if address else Q(pk__in=[]))
        lifted = Suppression.objects.filter(
            target, channel=channel, reason=SuppressionReason.UNSUBSCRIBED, lifted_at__isnull=True
        ).update(lifted_at=now)
    if current is not None and current.granted == granted and not lifted:
        return None
    Consent.objects.update_or_create(
        customer=customer, channel=channel,
        defaults={"granted": granted, "changed_at": now, "source": source[:100]},
    )
    return ConsentChange.objects.create(
        customer=customer, channel=channel, granted=granted, source=source[:100], changed_at=now
    )


@transaction.atomic
def suppression_add(
    *,
    channel: str,
    reason: str,
    now: datetime,
    customer: Customer | None = None,
    address: str = "",
    source: str = "",
) -> Suppression:
    """Stop sending on `channel` to the customer and/or address (the customer's current
    address when only the customer is given). Adding the same active suppression again
    returns the existing row."""
    _require(channel, Channel.values, "channel")
    _require(reason, SuppressionReason.values, "reason")
    address = normalized_address(channel, address)
    if not address and customer is not None:
        address = current_address(customer, channel)
    if customer is None and not address:
        raise ValidationError("a suppression needs a customer or an address", field="address")
    existing = Suppression.objects.filter(
        customer=customer, address=address, channel=channel, reason=reason, lifted_at__isnull=True
    ).first()
    if existing is not None:
        return existing
    return Suppression.objects.create(
        customer=customer, address=address, channel=channel, reason=reason,
        source=source[:100], created_at=now,
    )


@transaction.atomic
def suppression_lift(*, suppression: Suppression, now: datetime) -> Suppression:
    """End a suppression (the merchant fixed the address, or lifted a manual block)."""
    if suppression.lifted_at is None:
        Suppression.objects.filter(pk=suppression.pk).update(lifted_at=now)
        suppression.lifted_at = now
    return suppression


# ---------------------------------------------------------------------------------------------
# Unsubscribe and preferences.


@dataclass(frozen=True)
class Unsubscribed:
    customer: Customer
    channel: str


@transaction.atomic
def recipient_unsubscribe(*, token: str, source: str, now: datetime) -> Unsubscribed:
    """Unsubscribe the link's customer from marketing on the link's channel (the one-click
    POST of RFC 8058). Idempotent: a second POST changes nothing."""
    target = tokens.read_recipient_token(token)
    customer = Customer.objects.filter(pk=target.customer_id).first()
    if customer is None:
        raise InvalidToken("this link is not valid")
    consent_set(customer=customer, channel=target.channel, granted=False, source=source, now=now)
    suppression_add(
        channel=target.channel, reason=SuppressionReason.UNSUBSCRIBED, customer=customer,
        source=source, now=now,
    )
    return Unsubscribed(customer=customer, channel=target.channel)


def recipient_from_token(token: str) -> tuple[Customer, str]:
    """The customer and channel of a preference link (a read; raises `InvalidToken`)."""
    target = tokens.read_recipient_token(token)
    customer = Customer.objects.filter(pk=target.customer_id).first()
    if customer is None:
        raise InvalidToken("this link is not valid")
    return customer, target.channel


@transaction.atomic
def preferences_update(
    *,
    customer: Customer,
    now: datetime,
    source: str,
    channels: Mapping[str, bool] | None = None,
    topics_off: Sequence[str] | None = None,
    frequency: str | None = None,
    pause: bool | None = None,
) -> Preference:
    """Apply what the customer chose in the preference centre: consent per channel, topics
    switched off, a frequency, and a pause of `PAUSE_DAYS` days (`pause=False` resumes)."""
    for channel, granted in (channels or {}).items():
        consent_set(customer=customer, channel=channel, granted=granted, source=source, now=now)
    preference = Preference.objects.select_for_update().filter(customer=customer).first()
    if preference is None:
        preference = Preference(customer=customer, updated_at=now)
    if topics_off is not None:
        for topic in topics_off:
            _require(topic, Topic.values, "topics_off")
        preference.topics_off = sorted(set(topics_off))
    if frequency is not None:
        _require(frequency, Frequency.values, "frequency")
        preference.frequency = frequency
    if pause is True:
        preference.paused_until = now + timedelta(days=PAUSE_DAYS)
    elif pause is False:
        preference.paused_until = None
    preference.updated_at = now
    preference.save()
    return preference


# ---------------------------------------------------------------------------------------------
# Enqueueing.


def dedupe_key_for(*, customer_id: int, source: str, step: str = "", occurrence: str = "") -> str:
    """The name of a message: one per (customer, flow or campaign, step, occurrence)."""
    key = f"{customer_id}:{source}:{step}:{occurrence}"
    if len(key) <= 255:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{customer_id}:{source[:100]}:sha256:{digest}"


@dataclass(frozen=True)
class Enqueued:
    message: OutboxMessage
    created: bool


def message_enqueue(
    *,
    customer: Customer,
    channel: str,
    kind: str,
    source: str,
    now: datetime,
    template: MessageTemplate | None = None,
    template_key: str | None = None,
    step: str = "",
    occurrence: str = "",
    topic: str = "",
    due_at: datetime | None = None,
    expires_at: datetime | None = None,
    extra_context: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    control_percent: Decimal | int | None = None,
) -> Enqueued:
    """Render a message for `customer` and put it in the outbox, once.

    The same (customer, source, step, occurrence) finds the existing row and renders nothing.
    A template error raises `TemplateError` and enqueues nothing. A marketing message to a
    customer in the control group of `source` is stored as `held_out` ("would have sent"),
    never sent; `control_percent` overrides the shop's default share (0 disables it).
    """
    _require(channel, Channel.values, "channel")
    _require(kind, MessageKind.values, "kind")
    if topic:
        _require(topic, Topic.values, "topic")
    if not source:
        raise ValidationError("a message needs its source flow or campaign", field="source")
    key = dedupe_key_for(customer_id=customer.pk, source=source, step=step, occurrence=occurrence)
    existing = OutboxMessage.objects.filter(dedupe_key=key).first()
    if existing is not None:
        return Enqueued(existing, False)
    language = message_language(customer)
    if template is None:
        if not template_key:
            raise ValidationError("give a template or a template key", field="template")
        template = template_for(key=template_key, channel=channel, language=language)
    elif template.channel != channel:
        raise ValidationError("the template is for another channel", field="template")
    env = messaging_config()  # the admin's site URL wins over VAFA_SITE_URL
    policy = messaging_settings()
    context = message_context(
        customer=customer, channel=channel, now=now, site_url=env.site_url,
        language=template.language, extra=dict(extra_context or {}),
    )
    rendered = render_message(
        template=template, context=context, kind=kind, dedupe_key=key, site_url=env.site_url,
        track=policy.track_links,
    )
    status, reason = Status.QUEUED, ""
    percent = policy.control_percent if control_percent is None else Decimal(control_percent)
    if kind == MessageKind.MARKETING and percent > 0 and is_held_out(
        customer_id=customer.pk, salt=source, percent=percent, key=holdout_key(env.holdout_key)
    ):
        status, reason = Status.HELD_OUT, "control group: would have sent"
    try:
        with transaction.atomic():
            message = OutboxMessage.objects.create(
                customer=customer, channel=channel, kind=kind, topic=topic,
                language=template.language, source=source, step=step, occurrence=occurrence,
                dedupe_key=key, template=template, subject=rendered.subject[:300],
                body_text=rendered.text, body_html=rendered.html,
                data={**(data or {}), "unsubscribe_url": context["unsubscribe_url"]},
                status=status, status_reason=reason, due_at=due_at or now,
                expires_at=expires_at, created_at=now,
            )
    except IntegrityError:  # enqueued concurrently by another worker: that row wins
        return Enqueued(OutboxMessage.objects.get(dedupe_key=key), False)
    return Enqueued(message, True)


def template_preview(
    *,
    template: MessageTemplate,
    customer: Customer,
    now: datetime,
    kind: str = MessageKind.MARKETING,
    extra_context: Mapping[str, Any] | None = None,
) -> RenderedMessage:
    """Render `template` for a real customer exactly as it would be sent, without enqueueing
    anything; a broken template raises `TemplateError` for the merchant to fix."""
    env = messaging_config()  # the admin's site URL wins over VAFA_SITE_URL
    context = message_context(
        customer=customer, channel=template.channel, now=now, site_url=env.site_url,
        language=template.language, extra=dict(extra_context or {}),
    )
    return render_message(
        template=template, context=context, kind=kind, dedupe_key=f"preview:{customer.pk}",
        site_url=env.site_url, track=False,
    )


@transaction.atomic
def message_resend(*, message: OutboxMessage, now: datetime) -> OutboxMessage:
    """Queue a failed, bounced, dropped, capped or suppressed message again (the send-time
    checks run again). A sent or held-out message is never re-sent."""
    locked = OutboxMessage.objects.select_for_update().get(pk=message.pk)
    if locked.status not in RESENDABLE:
        raise ValidationError(f"a {locked.status} message cannot be re-sent", field="status")
    OutboxMessage.objects.filter(pk=locked.pk).update(
        status=Status.QUEUED, status_reason="", due_at=now, attempts=0, updated_at=now
    )
    DeliveryLog.objects.create(
        message=locked, event=LogEvent.RESENT, reason=f"was {locked.status}", at=now
    )
    locked.refresh_from_db()
    return locked


# ---------------------------------------------------------------------------------------------
# Telegram and web push.


def telegram_link_start(*, customer: Customer, bot_username: str, now: datetime) -> str:
    """The `https://t.me/<bot>?start=TOKEN` deep link that links the customer's chat."""
    token = secrets.token_urlsafe(24)  # 32 characters of [A-Za-z0-9_-], as Telegram allows
    TelegramLink.objects.update_or_create(
        customer=customer, defaults={"token": token, "created_at": now}
    )
    return f"https://t.me/{bot_username.lstrip('@')}?start={token}"


@transaction.atomic
def telegram_link_complete(*, token: str, chat_id: str, now: datetime) -> TelegramLink | None:
    """Link the chat that sent `/start TOKEN`; the token is replaced so it works once. Pressing
    Start is an opt-in to Telegram (and undoes an earlier block of the bot)."""
    link = TelegramLink.objects.select_for_update().filter(token=token).first()
    if link is None or not chat_id:
        return None
    link.chat_id = str(chat_id)
    link.linked_at = now
    link.token = secrets.token_urlsafe(24)
    link.save()
    Suppression.objects.filter(
        Q(customer_id=link.customer_id) | Q(address=link.chat_id),
        channel=Channel.TELEGRAM, reason=SuppressionReason.BLOCKED_BOT, lifted_at__isnull=True,
    ).update(lifted_at=now)
    consent_set(
        customer=link.customer, channel=Channel.TELEGRAM, granted=True,
        source="telegram:start", now=now,
    )
    return link


@transaction.atomic
def telegram_chat_blocked(*, chat_id: str, now: datetime) -> int:
    """The customer blocked the bot (or Telegram answered 403): opt them out of Telegram."""
    count = 0
    for link in TelegramLink.objects.filter(chat_id=str(chat_id)).select_related("customer"):
        suppression_add(
            channel=Channel.TELEGRAM, reason=SuppressionReason.BLOCKED_BOT,
            customer=link.customer, address=link.chat_id, source="telegram", now=now,
        )
        count += 1
    return count


@transaction.atomic
def telegram_chat_opt_out(*, chat_id: str, now: datetime) -> int:
    """The customer sent `/stop` to the bot: no more marketing on Telegram."""
    count = 0
    for link in TelegramLink.objects.filter(chat_id=str(chat_id)).select_related("customer"):
        consent_set(
            customer=link.customer, channel=Channel.TELEGRAM, granted=False,
            source="telegram:stop", now=now,
        )
        suppression_add(
            channel=Channel.TELEGRAM, reason=SuppressionReason.UNSUBSCRIBED,
            customer=link.customer, address=link.chat_id, source="telegram:stop", now=now,
        )
        count += 1
    return count


@transaction.atomic
def push_subscription_save(
    *, customer: Customer, endpoint: str, p256dh: str, auth: str, now: datetime
) -> PushSubscription:
    """Remember a browser's push subscription; subscribing is the customer's opt-in to push."""
    if not endpoint.startswith(("https://", "http://")) or not p256dh or not auth:
        raise ValidationError("a push subscription needs an endpoint and its keys", field="endpoint")
    subscription, _ = PushSubscription.objects.update_or_create(
        endpoint=endpoint,
        defaults={"customer": customer, "p256dh": p256dh, "auth": auth, "created_at": now},
    )
    consent_set(
        customer=customer, channel=Channel.PUSH, granted=True, source="push:subscribe", now=now
    )
    return subscription


def push_subscriptions_remove(*, endpoints: Sequence[str]) -> int:
    """Forget subscriptions the push service says are gone (404/410)."""
    deleted, _ = PushSubscription.objects.filter(endpoint__in=list(endpoints)).delete()
    return deleted


# ---------------------------------------------------------------------------------------------
# Inbound SMS keywords.

# Whole-message keywords, compared after `_keyword()` folds case, digits and letter forms.
# `لغو۱۱` is what Iranian operators print under advertising SMS.
OPT_OUT_KEYWORDS = frozenset(
    {
        "stop", "stopall", "unsubscribe", "cancel", "end", "quit", "optout", "opt out",
        "لغو", "لغو11", "لغو 11", "توقف", "انصراف", "خروج",
        "الغاء", "إلغاء", "ايقاف", "إيقاف", "الغاء الاشتراك", "إلغاء الاشتراك",
    }
)
OPT_IN_KEYWORDS = frozenset({"start", "unstop"})
_PUNCTUATION = re.compile(r"[\s.!،,؛;:\-_*]+")


def _keyword(text: str) -> str:
    value = unicodedata.normalize("NFKC", normalize_digits(text)).casefold()
    value = value.replace("\u200c", " ").replace("ي", "ی").replace("ك", "ک")
    return _PUNCTUATION.sub(" ", value).strip()


_FOLDED_OPT_OUT = frozenset(_keyword(k) for k in OPT_OUT_KEYWORDS) | {
    _keyword(k).replace(" ", "") for k in OPT_OUT_KEYWORDS
}
_FOLDED_OPT_IN = frozenset(_keyword(k) for k in OPT_IN_KEYWORDS)


def sms_keyword(text: str) -> str:
    """`opt_out`, `opt_in` or `` for an inbound SMS body."""
    folded = _keyword(text)
    if folded in _FOLDED_OPT_OUT or folded.replace(" ", "") in _FOLDED_OPT_OUT:
        return "opt_out"
    if folded in _FOLDED_OPT_IN:
        return "opt_in"
    return ""


@dataclass(frozen=True)
class InboundResult:
    action: str
    customers: int


@transaction.atomic
def sms_inbound_record(*, sender: str, text: str, now: datetime) -> InboundResult:
    """Act on an SMS a customer sent to the shop's number: an opt-out keyword unsubscribes
    the number from SMS (every customer with it, and the number itself), START opts back in."""
    action = sms_keyword(text)
    if not action:
        return InboundResult("", 0)
    try:
        phone = normalize_phone(sender)
    except PhoneError:
        return InboundResult(action, 0)
    customers = list(Customer.objects.filter(phone=phone))
    if action == "opt_out":
        suppression_add(
            channel=Channel.SMS, reason=SuppressionReason.UNSUBSCRIBED, address=phone,
            source="sms:keyword", now=now,
        )
    else:
        Suppression.objects.filter(
            channel=Channel.SMS, address=phone, reason=SuppressionReason.UNSUBSCRIBED,
            lifted_at__isnull=True,
        ).update(lifted_at=now)
    for customer in customers:
        consent_set(
            customer=customer, channel=Channel.SMS, granted=action == "opt_in",
            source="sms:keyword", now=now,
        )
        if action == "opt_out":
            suppression_add(
                channel=Channel.SMS, reason=SuppressionReason.UNSUBSCRIBED, customer=customer,
                address=phone, source="sms:keyword", now=now,
            )
    return InboundResult(action, len(customers))


# ---------------------------------------------------------------------------------------------
# Provider and tracking events.


@transaction.atomic
def provider_event_record(
    *,
    provider_message_id: str,
    event: str,
    now: datetime,
    recipient: str = "",
    reason: str = "",
) -> OutboxMessage | None:
    """Apply a provider's delivery event (anymail's normalised `delivered`, `bounced`,
    `complained`, `unsubscribed`, `opened`, `clicked`) to the message it is about."""
    message = (
        OutboxMessage.objects.select_for_update()
        .select_related("customer")
        .filter(provider_message_id=provider_message_id)
        .first()
        if provider_message_id
        else None
    )
    if message is None:
        return None
    updates: dict[str, Any] = {"updated_at": now}
    log_event: str | None = None
    address = recipient or message.to_address
    if event == "delivered" and message.status == Status.SENT:
        updates.update(status=Status.DELIVERED, delivered_at=now)
        log_event = LogEvent.DELIVERED
    elif event in {"bounced", "rejected"}:
        updates.update(status=Status.BOUNCED, status_reason=reason[:200] or event)
        log_event = LogEvent.BOUNCED
        suppression_add(
            channel=message.channel, reason=SuppressionReason.HARD_BOUNCE,
            customer=message.customer, address=address, source=f"provider:{event}", now=now,
        )
    elif event == "complained":
        log_event = LogEvent.COMPLAINED
        suppression_add(
            channel=message.channel, reason=SuppressionReason.COMPLAINT,
            customer=message.customer, address=address, source="provider:complained", now=now,
        )
    elif event == "unsubscribed":
        consent_set(
            customer=message.customer, channel=message.channel, granted=False,
            source="provider:unsubscribed", now=now,
        )
        suppression_add(
            channel=message.channel, reason=SuppressionReason.UNSUBSCRIBED,
            customer=message.customer, address=address, source="provider:unsubscribed", now=now,
        )
    elif event == "opened":
        return message_opened(dedupe_key=message.dedupe_key, now=now)
    elif event == "clicked":
        return message_clicked(dedupe_key=message.dedupe_key, now=now)
    OutboxMessage.objects.filter(pk=message.pk).update(**updates)
    if log_event is not None:
        DeliveryLog.objects.create(
            message=message, event=log_event, reason=reason[:500],
            provider_message_id=provider_message_id[:255], at=now,
        )
    message.refresh_from_db()
    return message


def _first_touch(*, dedupe_key: str, field: str, event: str, now: datetime) -> OutboxMessage | None:
    message = OutboxMessage.objects.filter(dedupe_key=dedupe_key).first()
    if message is None:
        return None
    # Only the first open or click is logged: scanners and repeated opens would flood the log.
    if OutboxMessage.objects.filter(pk=message.pk, **{f"{field}__isnull": True}).update(
        **{field: now}
    ):
        DeliveryLog.objects.create(message=message, event=event, at=now)
    return message


@transaction.atomic
def message_opened(*, dedupe_key: str, now: datetime) -> OutboxMessage | None:
    return _first_touch(dedupe_key=dedupe_key, field="opened_at", event=LogEvent.OPENED, now=now)


@transaction.atomic
def message_clicked(*, dedupe_key: str, now: datetime) -> OutboxMessage | None:
    message = _first_touch(
        dedupe_key=dedupe_key, field="clicked_at", event=LogEvent.CLICKED, now=now
    )
    if message is not None:  # a click implies an open the pixel may have missed
        OutboxMessage.objects.filter(pk=message.pk, opened_at__isnull=True).update(opened_at=now)
    return message
