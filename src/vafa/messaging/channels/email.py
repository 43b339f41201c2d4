"""Email through Django's email backends: SMTP configured by `VAFA_SMTP_URL` (a backend built
explicitly for each flush, one connection reused for the whole flush), an anymail ESP chosen in
the admin (its key from the environment, see `vafa.messaging.conf`) or any backend named by
`VAFA_EMAIL_BACKEND`.

Every message is multipart: the plain-text part and, when the template has one, the HTML part.
Marketing messages carry `List-Unsubscribe` (the one-click https URL, plus `mailto:` when
`VAFA_UNSUBSCRIBE_MAILTO` is set) and `List-Unsubscribe-Post: List-Unsubscribe=One-Click`
(RFC 8058). `Message-ID` is derived from the message's dedupe key, so a copy re-sent after a
crash carries the same id and receiving systems can recognise it.

Over SMTP the message is not built with `EmailMultiAlternatives.message()`: Python's email
package spent most of a flush's CPU generating MIME. `raw_email` writes the same structure
directly (headers encoded by Django's own `forbid_multi_line_headers`/`sanitize_address`, so
names, subjects and addresses come out as Django would write them; a body goes as 8bit UTF-8,
or base64 when a line is too long for SMTP) and hands the bytes to the backend's open
connection. ESPs still get an `EmailMultiAlternatives`, which their backends need.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import smtplib
import uuid
from email.utils import formatdate, parseaddr
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.core.mail.message import forbid_multi_line_headers, sanitize_address

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


LINE_LIMIT = 998  # RFC 5322: at most 998 characters on a line, CRLF excluded
# A bare address made only of RFC 5322 atom characters: it needs no quoting nor encoding.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")
_WORD_BYTES = 45  # 45 bytes -> 60 base64 characters: an encoded word fits a 76-character line


@lru_cache(maxsize=256)
def _address(address: str) -> str:
    """`sanitize_address(address, "utf-8")` (cached: the sender is the same on every message)."""
    return sanitize_address(address, "utf-8")


def envelope_address(address: str) -> str:
    """An address as the SMTP envelope and the header need it; Django's `sanitize_address`
    (IDN, encoded names) unless it is a plain ASCII address, which it returns unchanged."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return address
    return _address(address)


@lru_cache(maxsize=256)
def _addr_spec(address: str) -> str:
    return parseaddr(_address(address))[1]


def envelope_sender(address: str) -> str:
    """The bare address (`local@domain`) of `address` for SMTP's `MAIL FROM`/`RCPT TO`."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return address
    return _addr_spec(address)


def needs_smtputf8(address: str) -> bool:
    """Whether `address` has non-ASCII characters before the `@`: only SMTPUTF8 (RFC 6531)
    carries such a mailbox (a non-ASCII domain has an ASCII form, IDNA)."""
    local, _, _ = parseaddr(address)[1].rpartition("@")
    return not local.isascii()


def utf8_address(address: str) -> str:
    """The bare address as an SMTPUTF8 transaction sends it, in the envelope and the `To`
    header: the local part as written (UTF-8), the domain in its ASCII form (IDNA)."""
    local, _, domain = parseaddr(address)[1].rpartition("@")
    with contextlib.suppress(UnicodeError):  # not a valid IDNA name: sent as written
        domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain}"


def encode_subject(subject: str) -> str:
    """A Subject value as RFC 2047 wants it: kept when ASCII and short, else base64 encoded
    words of UTF-8 (never a character split between two words), folded with CRLF + space;
    what `email.header.Header(subject, "utf-8").encode()` gives, without its cost."""
    if "\n" in subject or "\r" in subject:
        return forbid_multi_line_headers("Subject", subject, "utf-8")[1]  # raises BadHeaderError
    if subject.isascii():
        if len(subject) <= 76 - len("Subject: ") and "=?" not in subject:
            return subject
        return forbid_multi_line_headers("Subject", subject, "utf-8")[1]
    words, chunk = [], b""
    for char in subject:
        data = char.encode()
        if len(chunk) + len(data) > _WORD_BYTES:
            words.append(chunk)
            chunk = b""
        chunk += data
    if chunk:
        words.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(word).decode()}?=" for word in words)


def _email_headers(
    message: OutboxMessage, recipient: Recipient, env: MessagingEnv, *, smtputf8: bool = False
) -> list[tuple[str, str]]:
    """The headers `build_email(...).message()` would write, in the same order, encoded
    (Subject and addresses by the helpers above; any other header by Django's check, which
    refuses a newline in a value). With `smtputf8` the `To` address is written in UTF-8, as
    RFC 6532 allows in such a transaction (an encoded word is not an address)."""
    to = utf8_address(recipient.address) if smtputf8 else envelope_address(recipient.address)
    headers = [
        ("Subject", encode_subject(message.subject)),
        ("From", envelope_address(env.email_from)),
        ("To", to),
    ]
    if env.reply_to:
        headers.append(("Reply-To", envelope_address(env.reply_to)))
    other = [
        ("Date", formatdate(localtime=settings.EMAIL_USE_LOCALTIME)),
        ("Message-ID", message_id(message, env.email_from)),
        ("Content-Language", message.language),
    ]
    if message.kind == MessageKind.MARKETING:
        other.extend(unsubscribe_headers(message, env).items())
    for name, value in other:
        if value.isascii() and "\n" not in value and "\r" not in value:
            headers.append((name, value))
        else:
            headers.append(forbid_multi_line_headers(name, value, "utf-8"))
    return headers


def _text_part(body: str, subtype: str) -> bytes:
    """One `text/<subtype>` UTF-8 part, headers and body, with CRLF line ends and no line end
    added after the body (in a multipart message the CRLF before the next boundary belongs to
    the boundary): 8bit when every line fits SMTP's limit (as Django sends it), base64 when
    one does not."""
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    encoded = [line.encode() for line in lines]
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nMIME-Version: 1.0\r\n'
    if all(len(line) <= LINE_LIMIT for line in encoded):
        return f"{head}Content-Transfer-Encoding: 8bit\r\n\r\n".encode() + b"\r\n".join(encoded)
    data = base64.encodebytes(b"\r\n".join(encoded)).rstrip(b"\n").replace(b"\n", b"\r\n")
    return f"{head}Content-Transfer-Encoding: base64\r\n\r\n".encode() + data


def raw_email(
    message: OutboxMessage, recipient: Recipient, env: MessagingEnv, *, smtputf8: bool = False
) -> tuple[str, list[str], bytes]:
    """The envelope sender, the envelope recipients and the whole message as SMTP sends it:
    the parts and headers of `build_email`, written without the email package. `smtputf8`:
    for a server that offers SMTPUTF8, the recipient's address goes in UTF-8."""
    header_block = "".join(
        f"{name}: {value}\r\n".replace("\n ", "\r\n ").replace("\r\r", "\r")
        for name, value in _email_headers(message, recipient, env, smtputf8=smtputf8)
    ).encode()
    text = _text_part(message.body_text, "plain")
    if message.body_html:
        html = _text_part(message.body_html, "html")
        boundary = f"===============vafa{uuid.uuid4().hex}=="
        while boundary.encode() in text or boundary.encode() in html:  # never in practice
            boundary = f"===============vafa{uuid.uuid4().hex}=="
        mark = f"--{boundary}\r\n".encode()
        body = (
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'
            "MIME-Version: 1.0\r\n".encode()
            + header_block + b"\r\n"
            + mark + text + b"\r\n" + mark + html + b"\r\n"
            + f"--{boundary}--\r\n".encode()
        )
    else:
        head, _, part = text.partition(b"\r\n\r\n")
        body = head + b"\r\n" + header_block + b"\r\n" + part
    to = utf8_address(recipient.address) if smtputf8 else envelope_sender(recipient.address)
    return envelope_sender(env.email_from), [to], body


def _abandon(client: smtplib.SMTP, code: int) -> None:
    """After a refusal: drop a connection the server is closing (421), else reset it."""
    if code == 421:
        client.close()
        return
    with contextlib.suppress(smtplib.SMTPServerDisconnected):
        client.rset()


def _envelope_failure(
    client: smtplib.SMTP, replies: list[tuple[int, bytes]], sender: str, recipients: list[str]
) -> smtplib.SMTPException | None:
    """What `sendmail` raises for these replies to `MAIL` and the `RCPT`s (the connection
    reset or closed as it leaves it), or None when the envelope was accepted."""
    code, reply = replies[0]
    if code != 250:
        _abandon(client, code)
        return smtplib.SMTPSenderRefused(code, reply, sender)
    refused = {
        address: answer
        for address, answer in zip(recipients, replies[1:], strict=True)
        if answer[0] not in (250, 251)
    }
    if any(answer[0] == 421 for answer in refused.values()):
        client.close()
        return smtplib.SMTPRecipientsRefused(refused)
    if len(refused) == len(recipients):
        _abandon(client, 0)
        return smtplib.SMTPRecipientsRefused(refused)
    return None


_LEADING_DOT = re.compile(rb"(?m)^\.")


def _send_data(client: smtplib.SMTP, data: bytes) -> tuple[int, bytes]:
    """The message after the server's `354`: dot-stuffed, ended by `.` (as `SMTP.data`)."""
    data = _LEADING_DOT.sub(b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    client.send(data + b".\r\n")
    return client.getreply()


def smtp_send(
    client: smtplib.SMTP, sender: str, recipients: list[str], data: bytes, *,
    smtputf8: bool = False,
) -> None:
    """`client.sendmail(sender, recipients, data)` for bare addresses (`envelope_sender`):
    the same commands, replies and exceptions, without parsing each address again (smtplib
    runs the email package's address parser on every `MAIL` and `RCPT`). When the server
    offers PIPELINING (RFC 2920; Postfix and most relays do), `MAIL`, the `RCPT`s and `DATA`
    go in one write and their replies are read together: one round trip instead of three.
    `smtputf8` (the server must offer it): `MAIL FROM` asks for SMTPUTF8 and the commands go
    in UTF-8, as `sendmail(..., mail_options=["SMTPUTF8"])` does."""
    if not smtputf8:
        _smtp_send(client, sender, recipients, data, "")
        return
    client.command_encoding = "utf-8"
    try:
        _smtp_send(client, sender, recipients, data, " SMTPUTF8")
    finally:
        client.command_encoding = "ascii"


def _smtp_send(
    client: smtplib.SMTP, sender: str, recipients: list[str], data: bytes, extra: str
) -> None:
    client.ehlo_or_helo_if_needed()
    options = f" SIZE={len(data)}" if client.does_esmtp and client.has_extn("size") else ""
    options += extra
    commands = [f"MAIL FROM:<{sender}>{options}", *(f"RCPT TO:<{a}>" for a in recipients)]
    if client.does_esmtp and client.has_extn("pipelining"):
        client.send("".join(f"{command}\r\n" for command in [*commands, "DATA"]))
        replies = [client.getreply() for _ in range(len(commands) + 1)]
        (data_code, data_reply), replies = replies[-1], replies[:-1]
        envelope_ok = replies[0][0] == 250 and any(r[0] in (250, 251) for r in replies[1:])
        if data_code == 354 and not envelope_ok:
            # DATA taken after a refused envelope (RFC 2920 says the server refuses it): end
            # the transaction empty before reporting the refusal.
            client.send(b".\r\n")
            client.getreply()
        failure = _envelope_failure(client, replies, sender, recipients)
        if failure is not None:
            raise failure
        if data_code != 354:
            _abandon(client, data_code)
            raise smtplib.SMTPDataError(data_code, data_reply)
        code, reply = _send_data(client, data)
    else:
        code, reply = client.docmd(commands[0])
        replies = [(code, reply)]
        if code == 250:
            replies.extend(client.docmd(command) for command in commands[1:])
        failure = _envelope_failure(client, replies, sender, recipients)
        if failure is not None:
            raise failure
        code, reply = client.data(data)
    if code != 250:
        _abandon(client, code)
        raise smtplib.SMTPDataError(code, reply)


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

    def _send_raw(self, backend: SmtpBackend, message: OutboxMessage, recipient: Recipient) -> str:
        """Send over the backend's open SMTP connection; returns the Message-ID."""
        connection = backend.connection
        if connection is None:
            raise TransientFailure("the SMTP connection is not open")
        with backend._lock:  # the backend's own lock around its connection
            smtputf8 = needs_smtputf8(recipient.address)
            if smtputf8:
                connection.ehlo_or_helo_if_needed()
                if not connection.has_extn("smtputf8"):
                    raise PermanentFailure(
                        "the address has non-ASCII characters before the @ and the mail "
                        "server does not offer SMTPUTF8 (RFC 6531), which such an address needs"
                    )
            sender, recipients, data = raw_email(message, recipient, self.env, smtputf8=smtputf8)
            smtp_send(connection, sender, recipients, data, smtputf8=smtputf8)
        return message_id(message, self.env.email_from)

    def send(self, message: OutboxMessage, recipient: Recipient) -> Delivery:
        try:
            backend = self._connected()
            if type(backend) is SmtpBackend:
                provider_id = self._send_raw(backend, message, recipient)
                return Delivery(
                    provider=self.provider, provider_message_id=provider_id,
                    to_address=recipient.address,
                )
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
