"""Provider configuration, read from the environment when a flush starts.

Secrets (SMTP passwords, API keys, bot tokens, VAPID private keys) come only from the
environment and are never stored in the database or written to a log: `MessagingEnv.secrets`
lists them so `redact()` can scrub any text before it is logged or saved.

Environment variables:

- `VAFA_SITE_URL`: public base URL for links in messages (default `http://localhost:8000`).
- `VAFA_SMTP_URL`: `smtp://host:port` (plain), `smtp+starttls://user:pass@host:587` (STARTTLS),
  `smtps://user:pass@host:465` (implicit TLS); `?timeout=S` optional. User and password are
  percent-decoded. Unset: email waits (transient failure) until it is configured.
- `VAFA_EMAIL_BACKEND`: a Django email backend path instead of SMTP, e.g. an anymail backend.
- `VAFA_EMAIL_FROM`: the From address (default Django's `DEFAULT_FROM_EMAIL`).
- `VAFA_UNSUBSCRIBE_MAILTO`: an address for `mailto:` unsubscribes in `List-Unsubscribe`.
- `VAFA_SMS_PROVIDER`: `kavenegar` or `twilio`.
- `VAFA_KAVENEGAR_API_KEY`, `VAFA_KAVENEGAR_SENDER`, `VAFA_KAVENEGAR_BASE_URL`.
- `VAFA_TWILIO_ACCOUNT_SID`, `VAFA_TWILIO_AUTH_TOKEN`, `VAFA_TWILIO_FROM`, `VAFA_TWILIO_BASE_URL`.
- `VAFA_SMS_INBOUND_SECRET`: the secret path part of the inbound SMS webhook URL.
- `VAFA_TELEGRAM_BOT_TOKEN`, `VAFA_TELEGRAM_BOT_USERNAME`, `VAFA_TELEGRAM_BASE_URL`,
  `VAFA_TELEGRAM_WEBHOOK_SECRET` (path part and `X-Telegram-Bot-Api-Secret-Token` header).
- `VAFA_VAPID_PRIVATE_KEY` (base64url raw or DER), `VAFA_VAPID_PUBLIC_KEY`,
  `VAFA_VAPID_SUBJECT` (`mailto:` or `https:` contact).
- `VAFA_HOLDOUT_KEY`: key of the control-group hash (default: derived from `SECRET_KEY`; set it
  so groups survive a secret-key rotation).
- `VAFA_TELEGRAM_RATE`, `VAFA_SMS_RATE`, `VAFA_EMAIL_RATE`, `VAFA_PUSH_RATE`: messages per
  second per worker (0 = unlimited; Telegram defaults to 30).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from django.conf import settings


class ConfigError(ValueError):
    """A provider setting that cannot be read (e.g. a malformed `VAFA_SMTP_URL`)."""


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str = ""
    password: str = field(default="", repr=False)
    use_tls: bool = False
    use_ssl: bool = False
    timeout: float = 30.0


_SMTP_SCHEMES = {
    "smtp": (25, False, False),
    "smtp+starttls": (587, True, False),
    "smtps": (465, False, True),
}


def parse_smtp_url(url: str) -> SmtpConfig:
    """Read `smtp://host:port`, `smtp+starttls://user:pass@host:port` or
    `smtps://user:pass@host:port` (implicit TLS) into the arguments of Django's SMTP backend."""
    parts = urlsplit(url.strip())
    if parts.scheme not in _SMTP_SCHEMES:
        raise ConfigError(
            f"VAFA_SMTP_URL: unsupported scheme {parts.scheme!r} "
            "(use smtp://, smtp+starttls:// or smtps://)"
        )
    if not parts.hostname:
        raise ConfigError("VAFA_SMTP_URL: no host")
    default_port, use_tls, use_ssl = _SMTP_SCHEMES[parts.scheme]
    try:
        port = parts.port or default_port
    except ValueError:
        raise ConfigError("VAFA_SMTP_URL: the port is not a number") from None
    query = parse_qs(parts.query)
    try:
        timeout = float(query.get("timeout", ["30"])[0])
    except ValueError:
        raise ConfigError("VAFA_SMTP_URL: timeout is not a number") from None
    return SmtpConfig(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        use_tls=use_tls,
        use_ssl=use_ssl,
        timeout=timeout,
    )


def _rate(environ: Mapping[str, str], name: str, default: float) -> float:
    try:
        return max(0.0, float(environ.get(name, default)))
    except ValueError:
        raise ConfigError(f"{name}: not a number") from None


@dataclass(frozen=True)
class MessagingEnv:
    """Everything the channels need from the environment, read once per flush."""

    site_url: str = "http://localhost:8000"
    smtp: SmtpConfig | None = None
    email_backend: str = ""
    email_from: str = "webmaster@localhost"
    unsubscribe_mailto: str = ""
    sms_provider: str = ""
    kavenegar_api_key: str = field(default="", repr=False)
    kavenegar_sender: str = ""
    kavenegar_base_url: str = "https://api.kavenegar.com"
    twilio_account_sid: str = ""
    twilio_auth_token: str = field(default="", repr=False)
    twilio_from: str = ""
    twilio_base_url: str = "https://api.twilio.com"
    sms_inbound_secret: str = field(default="", repr=False)
    telegram_bot_token: str = field(default="", repr=False)
    telegram_bot_username: str = ""
    telegram_base_url: str = "https://api.telegram.org"
    telegram_webhook_secret: str = field(default="", repr=False)
    vapid_private_key: str = field(default="", repr=False)
    vapid_public_key: str = ""
    vapid_subject: str = ""
    holdout_key: str = field(default="", repr=False)
    rates: Mapping[str, float] = field(default_factory=dict)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value, for `redact()`; short values are skipped (they would match
        ordinary text)."""
        values: Iterable[str] = (
            self.smtp.password if self.smtp else "",
            self.kavenegar_api_key,
            self.twilio_auth_token,
            self.sms_inbound_secret,
            self.telegram_bot_token,
            self.telegram_webhook_secret,
            self.vapid_private_key,
            self.holdout_key,
        )
        return tuple(v for v in values if len(v) >= 6)


def load_env(environ: Mapping[str, str] | None = None) -> MessagingEnv:
    """Read the messaging settings from `environ` (default `os.environ`)."""
    env = os.environ if environ is None else environ
    smtp_url = env.get("VAFA_SMTP_URL", "").strip()
    return MessagingEnv(
        site_url=env.get("VAFA_SITE_URL", "http://localhost:8000").rstrip("/"),
        smtp=parse_smtp_url(smtp_url) if smtp_url else None,
        email_backend=env.get("VAFA_EMAIL_BACKEND", ""),
        email_from=env.get("VAFA_EMAIL_FROM", "") or settings.DEFAULT_FROM_EMAIL,
        unsubscribe_mailto=env.get("VAFA_UNSUBSCRIBE_MAILTO", ""),
        sms_provider=env.get("VAFA_SMS_PROVIDER", "").strip().lower(),
        kavenegar_api_key=env.get("VAFA_KAVENEGAR_API_KEY", ""),
        kavenegar_sender=env.get("VAFA_KAVENEGAR_SENDER", ""),
        kavenegar_base_url=env.get("VAFA_KAVENEGAR_BASE_URL", "https://api.kavenegar.com"),
        twilio_account_sid=env.get("VAFA_TWILIO_ACCOUNT_SID", ""),
        twilio_auth_token=env.get("VAFA_TWILIO_AUTH_TOKEN", ""),
        twilio_from=env.get("VAFA_TWILIO_FROM", ""),
        twilio_base_url=env.get("VAFA_TWILIO_BASE_URL", "https://api.twilio.com"),
        sms_inbound_secret=env.get("VAFA_SMS_INBOUND_SECRET", ""),
        telegram_bot_token=env.get("VAFA_TELEGRAM_BOT_TOKEN", ""),
        telegram_bot_username=env.get("VAFA_TELEGRAM_BOT_USERNAME", ""),
        telegram_base_url=env.get("VAFA_TELEGRAM_BASE_URL", "https://api.telegram.org"),
        telegram_webhook_secret=env.get("VAFA_TELEGRAM_WEBHOOK_SECRET", ""),
        vapid_private_key=env.get("VAFA_VAPID_PRIVATE_KEY", ""),
        vapid_public_key=env.get("VAFA_VAPID_PUBLIC_KEY", ""),
        vapid_subject=env.get("VAFA_VAPID_SUBJECT", ""),
        holdout_key=env.get("VAFA_HOLDOUT_KEY", ""),
        rates={
            "telegram": _rate(env, "VAFA_TELEGRAM_RATE", 30),
            "sms": _rate(env, "VAFA_SMS_RATE", 0),
            "email": _rate(env, "VAFA_EMAIL_RATE", 0),
            "push": _rate(env, "VAFA_PUSH_RATE", 0),
        },
    )


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret replaced by `***` (for logs, error reasons, the admin)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
