"""Provider webhooks: anymail normalises every email provider's delivery events (delivered,
bounced, complained, unsubscribed, opened, clicked) into one `tracking` signal; this receiver
hands each to `provider_event_record`. The project mounts anymail's webhook URLs."""

from __future__ import annotations

from typing import Any

from anymail.signals import AnymailTrackingEvent, tracking
from django.dispatch import receiver
from django.utils import timezone

from vafa.messaging.services import provider_event_record

# Postmark reports soft bounces (a full mailbox, a DNS hiccup, an auto-reply) as bounces too, and
# anymail passes them on as "bounced"; only these of its bounce types mean the address is dead.
POSTMARK_HARD_BOUNCES = frozenset({"HardBounce", "BadEmailAddress", "ManuallyDeactivated"})


def event_name(event: AnymailTrackingEvent, esp_name: str) -> str:
    """anymail's normalised event, with a provider's soft bounce read as `deferred` (the message
    may still arrive; the address is not suppressed)."""
    name = str(event.event_type or "")
    raw = event.esp_event
    soft = (esp_name.lower() == "postmark" and isinstance(raw, dict)
            and raw.get("Type") not in POSTMARK_HARD_BOUNCES)
    return "deferred" if name == "bounced" and soft else name


@receiver(tracking, dispatch_uid="vafa.messaging.tracking")
def record_tracking(sender: Any, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any) -> None:
    provider_event_record(
        provider_message_id=str(event.message_id or ""),
        event=event_name(event, esp_name),
        recipient=str(event.recipient or ""),
        reason=str(event.description or event.mta_response or event.reject_reason or "")[:500],
        now=event.timestamp or timezone.now(),
    )
