"""A test message from the admin, sent through the same channel classes, provider settings and
secrets a flush uses, so "it works in the admin" means "it works for customers".

The test goes to a staff address, not to a customer: it is not an outbox row (no consent,
suppression, cap or quiet-hours check, nothing counted toward anyone's cap) and it is sent even
while the channel is switched off, so staff can try a provider before switching it on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.utils import translation
from django.utils.translation import gettext

from vafa.core.errors import ValidationError
from vafa.core.text import PhoneError, normalize_phone
from vafa.customers.models import Channel as ChannelName
from vafa.customers.models import Customer
from vafa.messaging.channels import build_channels
from vafa.messaging.channels.base import Channel, DeliveryError, Recipient
from vafa.messaging.conf import MessagingEnv, redact
from vafa.messaging.models import MessageKind, OutboxMessage, PushSubscription


@dataclass(frozen=True)
class ProbeResult:
    """What the provider answered: accepted (with its message ID) or refused, and why."""

    ok: bool
    provider: str
    provider_message_id: str = ""
    reason: str = ""


def probe_recipient(*, channel: str, address: str) -> Recipient:
    """Where the test goes: an email address, a phone number (read into E.164), a Telegram
    chat ID, or for web push a customer ID whose browsers get it."""
    address = address.strip()
    if channel == ChannelName.EMAIL:
        try:
            validate_email(address)
        except DjangoValidationError:
            raise ValidationError(gettext("Enter a valid email address."), field="address") from None
        return Recipient(customer=Customer(), address=address)
    if channel == ChannelName.SMS:
        try:
            return Recipient(customer=Customer(), address=normalize_phone(address))
        except PhoneError:
            raise ValidationError(gettext("Enter a valid phone number."), field="address") from None
    if channel == ChannelName.TELEGRAM:
        if not address.lstrip("-").isdigit():
            raise ValidationError(gettext("Enter a numeric Telegram chat ID."), field="address")
        return Recipient(customer=Customer(), address=address)
    if channel == ChannelName.PUSH:
        customer = Customer.objects.filter(external_id=address).first()
        subscriptions = tuple(PushSubscription.objects.filter(customer=customer)) if customer else ()
        if customer is None or not subscriptions:
            raise ValidationError(
                gettext("Enter the ID of a customer who allowed push notifications."),
                field="address",
            )
        return Recipient(customer=customer, address="push", push=subscriptions)
    raise ValidationError(gettext("Unknown channel."), field="channel")


def probe_message(*, channel: str, language: str, shop_name: str, now: datetime) -> OutboxMessage:
    """An unsaved transactional message (no unsubscribe links: it goes to staff)."""
    with translation.override(language):
        subject = gettext("Test message from %(shop)s") % {"shop": shop_name or "Vafa"}
        text = gettext(
            "This is a test message. If you can read it, the %(channel)s channel works."
        ) % {"channel": ChannelName(channel).label}
    return OutboxMessage(
        id=0, channel=channel, kind=MessageKind.TRANSACTIONAL, language=language,
        source="admin:test", dedupe_key=f"admin-test:{channel}:{now.isoformat()}",
        subject=subject, body_text=text, body_html=f"<p>{text}</p>" if channel == "email" else "",
        data={}, due_at=now, created_at=now,
    )


def send_test_message(
    *,
    channel: str,
    address: str,
    config: MessagingEnv,
    now: datetime,
    language: str = "en",
    shop_name: str = "",
    channels: Mapping[str, Channel] | None = None,
) -> ProbeResult:
    """Send a short test to `address` on `channel` with the providers `config` describes (or
    the given `channels`, for tests) and report the provider's answer. Raises
    `ValidationError` for an address the channel cannot use."""
    recipient = probe_recipient(channel=channel, address=address)
    message = probe_message(channel=channel, language=language, shop_name=shop_name, now=now)
    built = build_channels(config) if channels is None else channels
    sender = built[channel]
    provider = str(getattr(sender, "provider", "") or channel)
    try:
        sender.open()
        delivery = sender.send(message, recipient)
    except DeliveryError as failure:
        return ProbeResult(ok=False, provider=provider,
                           reason=redact(failure.reason, config.secrets)[:300])
    finally:
        if channels is None:
            for each in built.values():
                each.close()
    return ProbeResult(ok=True, provider=delivery.provider or provider,
                       provider_message_id=delivery.provider_message_id)
