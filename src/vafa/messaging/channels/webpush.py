"""Web push with VAPID through pywebpush: the payload is encrypted for each of the customer's
browser subscriptions (aes128gcm) and posted to the subscription's endpoint.

A 404 or 410 from the push service means the subscription is gone: it is reported back so the
outbox deletes it. The message counts as sent when at least one browser accepted it.
"""

from __future__ import annotations

import json

from pywebpush import WebPushException, webpush

from vafa.messaging.channels.base import (
    Delivery,
    NotConfigured,
    PermanentFailure,
    Recipient,
    TransientFailure,
)
from vafa.messaging.conf import MessagingEnv
from vafa.messaging.models import OutboxMessage

TTL_SECONDS = 24 * 3600
TIMEOUT_SECONDS = 15.0


class WebPushChannel:
    name = "push"
    provider = "webpush"

    def __init__(self, env: MessagingEnv) -> None:
        self.env = env

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def payload(self, message: OutboxMessage) -> str:
        """What the member portal's service worker receives: title, body and where to go."""
        return json.dumps(
            {
                "title": message.subject,
                "body": message.body_text,
                "url": message.data.get("url", ""),
                "lang": message.language,
                "dir": "rtl" if message.language in {"fa", "ar"} else "ltr",
            },
            ensure_ascii=False,
        )

    def send(self, message: OutboxMessage, recipient: Recipient) -> Delivery:
        env = self.env
        if not (env.vapid_private_key and env.vapid_subject):
            raise NotConfigured("web push is not configured (set VAFA_VAPID_PRIVATE_KEY, …)")
        data = self.payload(message)
        accepted: list[str] = []
        gone: list[str] = []
        transient: list[str] = []
        permanent: list[str] = []
        for subscription in recipient.push:
            info = {
                "endpoint": subscription.endpoint,
                "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
            }
            try:
                response = webpush(
                    subscription_info=info,
                    data=data,
                    vapid_private_key=env.vapid_private_key,
                    vapid_claims={"sub": env.vapid_subject},  # a fresh dict: webpush adds to it
                    timeout=TIMEOUT_SECONDS,
                    ttl=TTL_SECONDS,
                )
            except WebPushException as exc:
                status = exc.response.status_code if exc.response is not None else 0
                if status in (404, 410):
                    gone.append(subscription.endpoint)
                elif status == 429 or status >= 500 or status == 0:
                    transient.append(f"push service {status or 'unreachable'}")
                else:
                    permanent.append(f"push service {status}")
                continue
            except Exception as exc:  # network errors from requests, bad keys
                transient.append(f"push failed: {type(exc).__name__}")
                continue
            accepted.append(str(getattr(response, "headers", {}).get("Location", "")))
        if accepted:
            return Delivery(
                provider=self.provider, provider_message_id=accepted[0],
                to_address=f"{len(accepted)} browser(s)", gone=tuple(gone),
            )
        if transient:
            raise TransientFailure("; ".join(transient)[:300])
        if permanent:
            raise PermanentFailure("; ".join(permanent)[:300], gone=tuple(gone))
        raise PermanentFailure("every push subscription has expired", gone=tuple(gone))
