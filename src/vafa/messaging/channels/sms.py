"""SMS through Kavenegar or Twilio over httpx, and the segment arithmetic that prices a message
before it is sent.

A message in the GSM 03.38 alphabet costs one segment up to 160 septets and 153 per segment
beyond (the rest carries the concatenation header); characters of the extension table (`€`,
`[`, `{`…) take two septets and an escape pair is never split. Anything else (Persian, Arabic,
emoji) is UCS-2: 70 UTF-16 code units in one segment, 67 per segment beyond, and a surrogate
pair is never split. So «سلام» costs a segment of 70, not of 160.

Kavenegar takes the API key in the URL path; the key never leaves this module in a log line
or an error reason (see `base.protect_logs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from vafa.core.money import quantize
from vafa.messaging.channels.base import (
    Delivery,
    NotConfigured,
    PermanentFailure,
    Recipient,
    TransientFailure,
)
from vafa.messaging.conf import MessagingEnv, redact
from vafa.messaging.models import OutboxMessage, SuppressionReason

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67
TIMEOUT = httpx.Timeout(15.0, connect=5.0)


@dataclass(frozen=True)
class Segments:
    encoding: str  # "gsm7" or "ucs2"
    characters: int
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def _pack(widths: list[int], per_segment: int) -> int:
    """Segments needed when items of these widths are packed in order without splitting one."""
    segments, used = 1, 0
    for width in widths:
        if used + width > per_segment:
            segments, used = segments + 1, 0
        used += width
    return segments


def count_segments(text: str) -> Segments:
    """How many SMS segments `text` costs, and in which encoding."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        widths = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        units = sum(widths)
        count = 1 if units <= GSM7_SINGLE else _pack(widths, GSM7_MULTI)
        return Segments("gsm7", len(text), units, count if text else 0)
    widths = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    units = sum(widths)
    count = 1 if units <= UCS2_SINGLE else _pack(widths, UCS2_MULTI)
    return Segments("ucs2", len(text), units, count)


@dataclass(frozen=True)
class SmsCost:
    segments: Segments
    recipients: int
    price_per_segment: Decimal
    currency: str

    @property
    def total_segments(self) -> int:
        return self.segments.segments * self.recipients

    @property
    def cost(self) -> Decimal:
        return quantize(self.price_per_segment * self.total_segments, self.currency)


def sms_cost_preview(
    *, text: str, price_per_segment: Decimal, currency: str, recipients: int = 1
) -> SmsCost:
    """What sending `text` to `recipients` people costs, shown before a campaign is sent."""
    return SmsCost(count_segments(text), recipients, Decimal(price_per_segment), currency)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def kavenegar_receptor(phone: str) -> str:
    """Kavenegar reads Iranian mobiles as 09…; other countries with the 00 prefix."""
    digits = phone.lstrip("+")
    if phone.startswith("+98"):
        return "0" + digits[2:]
    return "00" + digits if phone.startswith("+") else phone


# Kavenegar's documented `return.status` codes: which mean "this number is wrong", which are
# worth retrying (server busy, credit exhausted, account/key problems the merchant can fix),
# the rest are permanent for the message.
KAVENEGAR_BAD_RECEPTOR = frozenset({411})
KAVENEGAR_RETRY = frozenset({401, 403, 407, 409, 416, 418, 419, 429})


class _HttpSmsChannel:
    """What both SMS gateways share: one HTTP client per flush, closed at its end."""

    name = "sms"

    def __init__(self, env: MessagingEnv, client: httpx.Client | None = None) -> None:
        self.env = env
        self.client = client or httpx.Client(timeout=TIMEOUT)

    def open(self) -> None:
        pass

    def close(self) -> None:
        self.client.close()


class KavenegarChannel(_HttpSmsChannel):
    """`POST {base}/v1/{API-KEY}/sms/send.json` with `receptor`, `sender`, `message`."""

    provider = "kavenegar"

    def send(self, message: OutboxMessage, recipient: Recipient) -> Delivery:
        if not self.env.kavenegar_api_key:
            raise NotConfigured("Kavenegar is not configured (set VAFA_KAVENEGAR_API_KEY)")
        url = f"{self.env.kavenegar_base_url.rstrip('/')}/v1/{self.env.kavenegar_api_key}/sms/send.json"
        form = {"receptor": kavenegar_receptor(recipient.address), "message": message.body_text}
        if self.env.kavenegar_sender:
            form["sender"] = self.env.kavenegar_sender
        try:
            response = self.client.post(url, data=form)
        except httpx.HTTPError as exc:
            raise TransientFailure(f"Kavenegar unreachable: {type(exc).__name__}") from None
        body = _json(response)
        raw_return = body.get("return")
        returned: dict[str, Any] = raw_return if isinstance(raw_return, dict) else {}
        status = int(returned.get("status") or response.status_code)
        detail = redact(str(returned.get("message") or response.reason_phrase), self.env.secrets)
        if status == 200 and response.is_success:
            entries = body.get("entries") or [{}]
            return Delivery(
                provider=self.provider,
                provider_message_id=str(entries[0].get("messageid", "")),
                to_address=recipient.address,
            )
        reason = f"Kavenegar {status}: {detail}"[:300]
        if status in KAVENEGAR_BAD_RECEPTOR:
            raise PermanentFailure(reason, suppress=SuppressionReason.HARD_BOUNCE, bounced=True)
        if status in KAVENEGAR_RETRY or response.status_code >= 500:
            raise TransientFailure(reason)
        raise PermanentFailure(reason)


# Twilio error codes (https://www.twilio.com/docs/api/errors): the number is not valid or not a
# mobile, the recipient replied STOP to the sender, the request was throttled.
TWILIO_BAD_NUMBER = frozenset({21211, 21614, 21401})
TWILIO_UNSUBSCRIBED = frozenset({21610})
TWILIO_RETRY = frozenset({20003, 20429, 20500, 20503, 30001})


class TwilioChannel(_HttpSmsChannel):
    """`POST {base}/2010-04-01/Accounts/{sid}/Messages.json` with `To`, `From` (or
    `MessagingServiceSid`) and `Body`, authenticated with HTTP basic auth."""

    provider = "twilio"

    def send(self, message: OutboxMessage, recipient: Recipient) -> Delivery:
        env = self.env
        if not (env.twilio_account_sid and env.twilio_auth_token and env.twilio_from):
            raise NotConfigured("Twilio is not configured (VAFA_TWILIO_ACCOUNT_SID, …)")
        url = (
            f"{env.twilio_base_url.rstrip('/')}/2010-04-01/Accounts/"
            f"{env.twilio_account_sid}/Messages.json"
        )
        sender_field = "MessagingServiceSid" if env.twilio_from.startswith("MG") else "From"
        form = {"To": recipient.address, sender_field: env.twilio_from, "Body": message.body_text}
        try:
            response = self.client.post(
                url, data=form, auth=(env.twilio_account_sid, env.twilio_auth_token)
            )
        except httpx.HTTPError as exc:
            raise TransientFailure(f"Twilio unreachable: {type(exc).__name__}") from None
        body = _json(response)
        if response.is_success:
            return Delivery(
                provider=self.provider,
                provider_message_id=str(body.get("sid", "")),
                to_address=recipient.address,
            )
        code = int(body.get("code") or 0)
        detail = redact(str(body.get("message") or response.reason_phrase), env.secrets)
        reason = f"Twilio {response.status_code}/{code}: {detail}"[:300]
        if code in TWILIO_UNSUBSCRIBED:
            raise PermanentFailure(reason, suppress=SuppressionReason.UNSUBSCRIBED)
        if code in TWILIO_BAD_NUMBER:
            raise PermanentFailure(reason, suppress=SuppressionReason.HARD_BOUNCE, bounced=True)
        if response.status_code == 429 or response.status_code >= 500 or code in TWILIO_RETRY:
            retry_after = response.headers.get("Retry-After")
            raise TransientFailure(
                reason, retry_after=float(retry_after) if retry_after and retry_after.isdigit()
                else None,
            )
        raise PermanentFailure(reason)


def segments_for_display(text: str) -> str:
    """`2 × 70 (UCS-2)`: a short label for the admin."""
    info = count_segments(text)
    per = (UCS2_SINGLE if info.segments <= 1 else UCS2_MULTI) if info.encoding == "ucs2" else (
        GSM7_SINGLE if info.segments <= 1 else GSM7_MULTI
    )
    return f"{info.segments} × {per} ({'UCS-2' if info.encoding == 'ucs2' else 'GSM-7'})"

