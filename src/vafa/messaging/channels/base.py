"""What every channel promises the outbox: `send()` either returns a `Delivery` (the provider
accepted the message) or raises a `TransientFailure` (try again later, maybe after
`retry_after` seconds) or a `PermanentFailure` (never retry; maybe suppress the address).

Failure reasons are short, written by us from status codes and the provider's own message, and
never contain a URL, a key or a token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from vafa.customers.models import Customer
    from vafa.messaging.models import OutboxMessage, PushSubscription


@dataclass(frozen=True)
class Recipient:
    """Where one message goes: the customer, their address on the channel and, for web push,
    their browsers' subscriptions."""

    customer: Customer
    address: str
    push: tuple[PushSubscription, ...] = ()


@dataclass(frozen=True)
class Delivery:
    """The provider accepted the message."""

    provider: str
    provider_message_id: str
    to_address: str
    gone: tuple[str, ...] = field(default=())  # push endpoints the push service says are gone


class DeliveryError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientFailure(DeliveryError):
    """Worth trying again: a timeout, a rate limit, a provider outage, missing configuration."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class NotConfigured(TransientFailure):
    """The channel has no provider configured yet; messages wait for it."""


class PermanentFailure(DeliveryError):
    """Never worth retrying. `suppress` names a suppression reason to record for the address
    (a hard bounce, a blocked bot, an unsubscribed number); `bounced` marks a hard bounce."""

    def __init__(
        self,
        reason: str,
        *,
        suppress: str | None = None,
        bounced: bool = False,
        gone: tuple[str, ...] = (),
    ) -> None:
        super().__init__(reason)
        self.suppress = suppress
        self.bounced = bounced
        self.gone = gone


class Channel(Protocol):
    """A configured channel, opened once per flush and closed at its end."""

    name: str

    def open(self) -> None: ...

    def close(self) -> None: ...

    def send(self, message: OutboxMessage, recipient: Recipient) -> Delivery: ...


class RedactingFilter(logging.Filter):
    """Scrubs secrets from log records of libraries that log request URLs (httpx logs every
    request at INFO, and Kavenegar and Telegram put the key in the URL path)."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        if any(secret in message for secret in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


_FILTERS: dict[str, RedactingFilter] = {}


def protect_logs(secrets: tuple[str, ...]) -> None:
    """Install (or update) the redacting filter on the HTTP libraries' loggers."""
    for name in (
        "httpx", "httpcore", "httpcore.http11", "httpcore.connection", "urllib3",
        "urllib3.connectionpool",
    ):
        existing = _FILTERS.get(name)
        if existing is None:
            existing = _FILTERS[name] = RedactingFilter(secrets)
            logging.getLogger(name).addFilter(existing)
        else:
            existing.secrets = tuple({*existing.secrets, *secrets})
