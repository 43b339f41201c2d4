"""Provider webhooks: anymail normalises every email provider's delivery events (delivered,
bounced, complained, unsubscribed, opened, clicked) into one `tracking` signal; this receiver
hands each to `provider_event_record`. The project mounts anymail's webhook URLs."""

from __future__ import annotations

from typing import Any

from anymail.signals import AnymailTrackingEvent, tracking
from django.dispatch import receiver
from django.utils import timezone

from vafa.messaging.services import provider_event_record


@receiver(tracking, dispatch_uid="vafa.messaging.tracking")
def record_tracking(sender: Any, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any) -> None:
    provider_event_record(
        provider_message_id=str(event.message_id or ""),
        event=str(event.event_type or ""),
        recipient=str(event.recipient or ""),
        reason=str(event.description or event.mta_response or event.reject_reason or "")[:500],
        now=event.timestamp or timezone.now(),
    )
