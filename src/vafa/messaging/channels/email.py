"""Email through Django's email backends: SMTP configured by `VAFA_SMTP_URL` (a backend built
explicitly for each flush, one connection reused for the whole flush), an anymail ESP chosen in
the admin (its key from the environment, see `vafa.messaging.conf`) or any backend named by
`VAFA_EMAIL_BACKEND`.

Every message is multipart: the plain-text part and, when the template has one, the HTML part.
Marketing messages carry `List-Unsubscribe` (the one-click https URL, plus `mailto:` when
`VAFA_UNSUBSCRIBE_MAILTO` is set) and `List-Unsubscribe-Post: List-Unsubscribe=One-Click`
(RFC 8058). `Message-ID` is derived from the message's dedupe key, so a copy re-sent after a
crash carries the same id and receiving systems can recognise it.
"""

from __future__ import annotations

import contextlib
import hashlib
import smtplib
from typing import Any
from urllib.parse import quote

from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend

from vafa.messaging import links
from vafa.messaging.channels.base import (
    Delivery,
    NotConfigured,
    PermanentFailure,
    Recipient,
    TransientFailure,
)
from vafa.messaging.conf import MessagingEnv, redact
from vafa.messaging.models import MessageKind, OutboxMessage, SuppressionReason


def build_backend(env: MessagingEnv) -> BaseEmailBackend | None:
    """The email backend of this flush, or None when email is not configured."""
    if env.email_backend:
        # An ESP's API key and options go in as keyword arguments, which anymail reads before
        # Django's settings: secrets stay in the environment, never in settings or the DB.
        return get_connection(
            env.email_backend, fail_silently=False, **dict(env.email_backend_options)
        )
    if env.smtp is None:
        return None
    smtp = env.smtp
    return SmtpBackend(
        host=smtp.host,
        port=smtp.port,
        username=smtp.username or None,
        password=smtp.password or None,
        use_tls=smtp.use_tls,
        use_ssl=smtp.use_ssl,
        timeout=smtp.timeout,
        fail_silently=False,
    )


def message_id(message: OutboxMessage, from_email: str) -> str:
    domain = from_email.rpartition("@")[2].strip(">").strip() or "localhost"
    digest = hashlib.sha256(message.dedupe_key.encode()).hexdigest()[:32]
    return f"<{digest}.{message.pk}@{domain}>"


def unsubscribe_headers(message: OutboxMessage, env: MessagingEnv) -> dict[str, str]:
    """RFC 2369 and RFC 8058 headers of a marketing email."""
    # The same link as the visible one in the body (tokens differ per call), when recorded.
    url = message.data.get("unsubscribe_url") or links.unsubscribe_url(
        site_url=env.site_url, customer_id=message.customer_id, channel=message.channel
    )
    targets = [f"<{url}>"]
    if env.unsubscribe_mailto:
        subject = quote(f"unsubscribe {message.customer_id}")
        targets.append(f"<mailto:{env.unsubscribe_mailto}?subject={subject}>")
    return {
        "List-Unsubscribe": ", ".join(targets),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def build_email(
    message: OutboxMessage, recipient: Recipient, env: MessagingEnv,
    connection: BaseEmailBackend | None = None,
) -> EmailMultiAlternatives:
    headers = {
        "Message-ID": message_id(message, env.email_from),
        "Content-Language": message.language,
    }
    if message.kind == MessageKind.MARKETING:
        headers.update(unsubscribe_headers(message, env))
    email = EmailMultiAlternatives(
        subject=message.subject,
        body=message.body_text,
        from_email=env.email_from,
        to=[recipient.address],
        reply_to=[env.reply_to] if env.reply_to else None,
        headers=headers,
        connection=connection,
    )
    if message.body_html:
        email.attach_alternative(message.body_html, "text/html")
    return email


def _smtp_code_failure(code: int, text: Any, *, recipient: bool) -> Exception:
    detail = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    reason = f"SMTP {code}: {detail}"[:300]
    if 500 <= code < 600:
        if recipient:
            return PermanentFailure(reason, suppress=SuppressionReason.HARD_BOUNCE, bounced=True)
        return PermanentFailure(reason)
    return TransientFailure(reason)


class EmailChannel:
    """Sends through one backend opened for the whole flush."""

    name = "email"

    def __init__(self, env: MessagingEnv, backend: BaseEmailBackend | None = None) -> None:
        self.env = env
        self.backend = backend if backend is not None else build_backend(env)
        self.provider = env.email_provider or (
            env.email_backend.rsplit(".", 2)[-2] if env.email_backend else ""
        )

    def open(self) -> None:
        pass  # connected lazily by the first send, so an idle flush opens no connection

    def close(self) -> None:
        if self.backend is not None:
            # Closing a broken connection must not hide the real outcome.
            with contextlib.suppress(Exception):
                self.backend.close()

    def _connected(self) -> BaseEmailBackend:
        if self.backend is None:
            raise NotConfigured("email is not configured (set VAFA_SMTP_URL)")
        if getattr(self.backend, "connection", True) is None:
            self.backend.open()  # keep one connection; send_messages would close a new one
        return self.backend

    def send(self, message: OutboxMessage, recipient: Recipient) -> Delivery:
        try:
            backend = self._connected()
            email = build_email(message, recipient, self.env, backend)
            sent = backend.send_messages([email])
        except (NotConfigured, PermanentFailure, TransientFailure):
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            self.close()
            code, text = next(iter(exc.recipients.values()), (550, b"recipient refused"))
            raise _smtp_code_failure(code, text, recipient=True) from None
        except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as exc:
            self.close()
            # A refused sender is our configuration, not this message: worth retrying.
            failure = _smtp_code_failure(
                exc.smtp_code, exc.smtp_error, recipient=False
            ) if isinstance(exc, smtplib.SMTPDataError) else TransientFailure(
                f"SMTP {exc.smtp_code}: sender refused"
            )
            raise failure from None
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            self.close()
            reason = redact(f"{type(exc).__name__}: {exc}", self.env.secrets)[:300]
            raise TransientFailure(reason) from None
        if not sent:
            raise TransientFailure("the email backend did not send the message")
        status = getattr(email, "anymail_status", None)
        provider_id = getattr(status, "message_id", None) or email.extra_headers["Message-ID"]
        return Delivery(
            provider=self.provider, provider_message_id=str(provider_id),
            to_address=recipient.address,
        )
