"""Provider configuration: secrets from the environment, everything else from the admin.

Precedence, per setting:

1. **Secrets** (SMTP URL with its password, API keys and tokens, bot token, webhook secrets,
   VAPID private key, the control-group key) come only from the environment. They are never
   stored in the database, never shown in the admin (it shows only whether each one is set) and
   never written to a log: `MessagingEnv.secrets` lists them so `redact()` can scrub any text.
2. **Non-secret settings** (which provider a channel uses, whether it is switched on, sender
   identities, reply-to, per-channel rate limits, the site URL) are edited by staff in the admin
   (`MessagingSettings.site_url` and one `ChannelSettings` row per channel). A value saved
   there wins; a blank field falls back to the environment variable below, then to the default.
3. **A switched-off channel** keeps its messages waiting: the outbox does not claim them
   (they stay `queued`/`deferred`, no attempt is used, nothing is written per message, so a
   long pause of a big campaign costs nothing) and every flush logs a warning with how many
   wait. Switching the channel back on sends them; one that expired meanwhile is dropped then,
   as usual. Nothing is lost by switching a provider off for maintenance; to throw messages
   away, cancel their flow or campaign instead.

`load_env()` reads the environment only; `apply_stored()` lays the admin's settings over it
(`selectors.messaging_config()` does both and is what a flush uses).

Environment variables:

- `VAFA_SITE_URL`: public base URL for links in messages (default `http://localhost:8000`).
- `VAFA_EMAIL_PROVIDER`: `smtp` or an anymail ESP (`mailgun`, `postmark`, `sendgrid`, `brevo`,
  `mailjet`); default `smtp` when `VAFA_SMTP_URL` is set.
- `VAFA_SMTP_URL`: `smtp://host:port` (plain), `smtp+starttls://user:pass@host:587` (STARTTLS),
  `smtps://user:pass@host:465` (implicit TLS); `?timeout=S` optional. User and password are
  percent-decoded. Unset: email waits (transient failure) until it is configured.
- ESP secrets: `VAFA_MAILGUN_API_KEY` (and `VAFA_MAILGUN_SENDER_DOMAIN`),
  `VAFA_POSTMARK_SERVER_TOKEN`, `VAFA_SENDGRID_API_KEY`, `VAFA_BREVO_API_KEY`,
  `VAFA_MAILJET_API_KEY` + `VAFA_MAILJET_SECRET_KEY`; `VAFA_<ESP>_API_URL` points an ESP at
  another endpoint (a regional one, or a test server).
- `VAFA_EMAIL_BACKEND`: any Django email backend path (used when no provider is chosen).
- `VAFA_EMAIL_FROM`: the From address (default Django's `DEFAULT_FROM_EMAIL`);
  `VAFA_EMAIL_REPLY_TO`: a Reply-To address.
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
from dataclasses import dataclass, field, replace
from email.headerregistry import Address
from email.utils import parseaddr
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
class EspSpec:
    """An anymail email service provider: its backend, the environment variables holding its
    secrets and its non-secret options, each mapped to the backend's keyword argument."""

    label: str
    backend: str
    secrets: Mapping[str, str]
    options: Mapping[str, str] = field(default_factory=dict)


def _esp(label: str, name: str, secrets: Mapping[str, str], **options: str) -> EspSpec:
    upper = name.upper()
    return EspSpec(
        label=label,
        backend=f"anymail.backends.{name}.EmailBackend",
        secrets=secrets,
        options={f"VAFA_{upper}_API_URL": "api_url", **options},
    )


ESPS: Mapping[str, EspSpec] = {
    "mailgun": _esp(
        "Mailgun", "mailgun", {"VAFA_MAILGUN_API_KEY": "api_key"},
        VAFA_MAILGUN_SENDER_DOMAIN="sender_domain",
    ),
    "postmark": _esp("Postmark", "postmark", {"VAFA_POSTMARK_SERVER_TOKEN": "server_token"}),
    "sendgrid": _esp("SendGrid", "sendgrid", {"VAFA_SENDGRID_API_KEY": "api_key"}),
    "brevo": _esp("Brevo", "brevo", {"VAFA_BREVO_API_KEY": "api_key"}),
    "mailjet": _esp(
        "Mailjet", "mailjet",
        {"VAFA_MAILJET_API_KEY": "api_key", "VAFA_MAILJET_SECRET_KEY": "secret_key"},
    ),
}
"""The anymail ESPs a merchant can pick in the admin (any other backend: `VAFA_EMAIL_BACKEND`)."""

EMAIL_PROVIDERS = ("smtp", *ESPS)
SMS_PROVIDERS = ("kavenegar", "twilio")


@dataclass(frozen=True)
class MessagingEnv:
    """Everything the channels need from the environment, read once per flush."""

    site_url: str = "http://localhost:8000"
    smtp: SmtpConfig | None = None
    email_provider: str = ""
    email_backend: str = ""
    email_backend_options: Mapping[str, str] = field(default_factory=dict, repr=False)
    email_from: str = "webmaster@localhost"
    reply_to: str = ""
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
    disabled: frozenset[str] = frozenset()
    esp_secrets: tuple[str, ...] = field(default=(), repr=False)

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
            *self.esp_secrets,
        )
        return tuple(v for v in values if len(v) >= 6)


def load_env(environ: Mapping[str, str] | None = None) -> MessagingEnv:
    """Read the messaging settings from `environ` (default `os.environ`)."""
    env = os.environ if environ is None else environ
    smtp_url = env.get("VAFA_SMTP_URL", "").strip()
    provider = env.get("VAFA_EMAIL_PROVIDER", "").strip().lower()
    email = _email_provider(provider, env) if provider else {
        "email_provider": "smtp" if smtp_url and not env.get("VAFA_EMAIL_BACKEND") else "",
        "email_backend": env.get("VAFA_EMAIL_BACKEND", ""),
    }
    return MessagingEnv(
        site_url=env.get("VAFA_SITE_URL", "http://localhost:8000").rstrip("/"),
        smtp=parse_smtp_url(smtp_url) if smtp_url else None,
        **email,
        email_from=env.get("VAFA_EMAIL_FROM", "") or settings.DEFAULT_FROM_EMAIL,
        reply_to=env.get("VAFA_EMAIL_REPLY_TO", ""),
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


def _email_provider(provider: str, environ: Mapping[str, str]) -> dict[str, object]:
    """The `MessagingEnv` fields that make `provider` (`smtp` or an ESP) send the email."""
    if provider == "smtp":
        return {"email_provider": "smtp", "email_backend": "", "email_backend_options": {},
                "esp_secrets": ()}
    spec = ESPS.get(provider)
    if spec is None:
        raise ConfigError(
            f"email provider {provider!r} is unknown (use one of {', '.join(EMAIL_PROVIDERS)})"
        )
    options = {
        kwarg: environ[name]
        for name, kwarg in {**spec.secrets, **spec.options}.items()
        if environ.get(name)
    }
    return {
        "email_provider": provider,
        "email_backend": spec.backend,
        "email_backend_options": options,
        "esp_secrets": tuple(environ[name] for name in spec.secrets if environ.get(name)),
    }


@dataclass(frozen=True)
class StoredChannel:
    """One channel's settings saved in the admin; blank means "not set, use the environment"."""

    enabled: bool = True
    provider: str = ""
    from_name: str = ""
    from_address: str = ""
    reply_to: str = ""
    sender: str = ""
    bot_username: str = ""
    rate: float | None = None


@dataclass(frozen=True)
class StoredSettings:
    """The non-secret provider settings staff saved in the admin, free of Django models so
    this module stays testable without a database."""

    site_url: str = ""
    channels: Mapping[str, StoredChannel] = field(default_factory=dict)


def apply_stored(
    env: MessagingEnv, stored: StoredSettings, environ: Mapping[str, str] | None = None
) -> MessagingEnv:
    """`env` with the admin's non-secret settings laid over it (a saved value wins over the
    environment's; secrets always come from `environ`, default `os.environ`)."""
    environ = os.environ if environ is None else environ
    changes: dict[str, object] = {}
    if stored.site_url.strip():
        changes["site_url"] = stored.site_url.strip().rstrip("/")
    email = stored.channels.get("email", StoredChannel())
    if email.provider:
        changes.update(_email_provider(email.provider, environ))
    if email.from_address or email.from_name:
        name, address = parseaddr(env.email_from)
        # Unencoded (Django encodes the header when it sends); quoted where the name needs it.
        changes["email_from"] = str(Address(
            display_name=email.from_name or name, addr_spec=email.from_address or address
        ))
    if email.reply_to:
        changes["reply_to"] = email.reply_to
    sms = stored.channels.get("sms", StoredChannel())
    if sms.provider:
        changes["sms_provider"] = sms.provider
    if sms.sender:
        changes["kavenegar_sender"] = changes["twilio_from"] = sms.sender
    telegram = stored.channels.get("telegram", StoredChannel())
    if telegram.bot_username:
        changes["telegram_bot_username"] = telegram.bot_username.lstrip("@")
    rates = dict(env.rates)
    for name, channel in stored.channels.items():
        if channel.rate is not None:
            rates[name] = max(0.0, float(channel.rate))
    changes["rates"] = rates
    changes["disabled"] = frozenset(
        name for name, channel in stored.channels.items() if not channel.enabled
    )
    return replace(env, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ChannelStatus:
    """Whether a channel can send, for the admin: the provider in use and the environment
    variables it needs, split into present and missing (names only, never values)."""

    channel: str
    provider: str
    enabled: bool
    present: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def ready(self) -> bool:
        return self.enabled and bool(self.provider) and not self.missing


def _needs(channel: str, env: MessagingEnv) -> tuple[str, tuple[str, ...]]:
    """The provider `channel` uses under `env` and the environment variables it needs."""
    if channel == "email":
        if env.email_provider == "smtp" or (not env.email_provider and not env.email_backend):
            return "smtp", ("VAFA_SMTP_URL",)
        spec = ESPS.get(env.email_provider)
        if spec is not None:
            return env.email_provider, tuple(spec.secrets)
        return env.email_backend.rsplit(".", 2)[-2], ()  # a backend path: nothing we can check
    if channel == "sms":
        if env.sms_provider == "twilio":
            needed = ("VAFA_TWILIO_ACCOUNT_SID", "VAFA_TWILIO_AUTH_TOKEN")
            return "twilio", needed if env.twilio_from else (*needed, "VAFA_TWILIO_FROM")
        return "kavenegar", ("VAFA_KAVENEGAR_API_KEY",)
    if channel == "telegram":
        return "telegram", ("VAFA_TELEGRAM_BOT_TOKEN", "VAFA_TELEGRAM_WEBHOOK_SECRET")
    if channel == "push":
        return "webpush", ("VAFA_VAPID_PRIVATE_KEY", "VAFA_VAPID_PUBLIC_KEY", "VAFA_VAPID_SUBJECT")
    return "", ()


def channel_status(
    channel: str, env: MessagingEnv, environ: Mapping[str, str] | None = None
) -> ChannelStatus:
    """What `channel` sends with and which of its environment variables are set or missing."""
    environ = os.environ if environ is None else environ
    provider, needed = _needs(channel, env)
    present = tuple(name for name in needed if environ.get(name, "").strip())
    missing = tuple(name for name in needed if name not in present)
    return ChannelStatus(
        channel=channel, provider=provider, enabled=channel not in env.disabled,
        present=present, missing=missing,
    )


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret replaced by `***` (for logs, error reasons, the admin)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
