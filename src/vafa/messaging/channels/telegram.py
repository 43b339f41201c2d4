"""Telegram through the Bot API's `sendMessage`.

Telegram allows a bot about 30 messages a second overall (the outbox's channel rate limit) and
one a second to the same chat (kept here). A 429 answer carries `parameters.retry_after`, which
the outbox honours; a 403 ("bot was blocked by the user", "user is deactivated") means the
customer left, and the chat is suppressed with reason `blocked_bot`. The bot token is in the URL
path and never appears in a log line or an error reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from vafa.messaging.channels.base import (
    Delivery,
    NotConfigured,
    PermanentFailure,
    Recipient,
    TransientFailure,
)
from vafa.messaging.conf import MessagingEnv, redact
from vafa.messaging.models import OutboxMessage, SuppressionReason

PER_CHAT_INTERVAL = 1.0  # seconds between two messages to one chat
TIMEOUT = httpx.Timeout(15.0, connect=5.0)


class TelegramChannel:
    name = "telegram"
    provider = "telegram"

    def __init__(
        self,
        env: MessagingEnv,
        client: httpx.Client | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.env = env
        self.client = client or httpx.Client(timeout=TIMEOUT)
        self.sleep, self.clock = sleep, clock
        self.last_sent: dict[str, float] = {}

    def open(self) -> None:
        pass

    def close(self) -> None:
        self.client.close()

    def _pace(self, chat_id: str) -> None:
        last = self.last_sent.get(chat_id)
        if last is not None:
            wait = last + PER_CHAT_INTERVAL - self.clock()
            if wait > 0:
                self.sleep(wait)
        self.last_sent[chat_id] = self.clock()

    def call(self, method: str, payload: dict[str, Any]) -> httpx.Response:
        """Call a Bot API method; network errors become transient failures."""
        url = f"{self.env.telegram_base_url.rstrip('/')}/bot{self.env.telegram_bot_token}/{method}"
        try:
            return self.client.post(url, json=payload)
        except httpx.HTTPError as exc:
            raise TransientFailure(f"Telegram unreachable: {type(exc).__name__}") from None

    def send(self, message: OutboxMessage, recipient: Recipient) -> Delivery:
        if not self.env.telegram_bot_token:
            raise NotConfigured("Telegram is not configured (set VAFA_TELEGRAM_BOT_TOKEN)")
        self._pace(recipient.address)
        response = self.call(
            "sendMessage",
            {
                "chat_id": recipient.address,
                "text": message.body_text,
                "link_preview_options": {"is_disabled": True},
            },
        )
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.is_success and body.get("ok"):
            result = body.get("result") or {}
            return Delivery(
                provider=self.provider,
                provider_message_id=str(result.get("message_id", "")),
                to_address=recipient.address,
            )
        code = int(body.get("error_code") or response.status_code)
        description = redact(str(body.get("description") or response.reason_phrase), self.env.secrets)
        reason = f"Telegram {code}: {description}"[:300]
        if code == 429:
            parameters = body.get("parameters") or {}
            raise TransientFailure(reason, retry_after=float(parameters.get("retry_after") or 1))
        if code == 403:
            raise PermanentFailure(reason, suppress=SuppressionReason.BLOCKED_BOT)
        if code >= 500:
            raise TransientFailure(reason)
        raise PermanentFailure(reason)
