"""Writes of the member portal: sending a magic link and recording a data request.

Redeeming a reward, saving a push subscription and changing preferences are loyalty's and
messaging's own services (`reward_redeem`, `push_subscription_save`, `preferences_update`); the
portal's views call them directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse

from vafa.customers.models import Customer
from vafa.dashboard.portal import access
from vafa.dashboard.portal.models import (
    DataRequest,
    DataRequestKind,
    DataRequestStatus,
    MemberSession,
)
from vafa.dashboard.portal.selectors import customer_by_identifier
from vafa.messaging.models import MessageKind, MessageTemplate
from vafa.messaging.selectors import messaging_config
from vafa.messaging.services import message_enqueue

LOGIN_TEMPLATE_KEY = "portal-login"
LOGIN_SOURCE = "portal:login"
# One login message per customer and channel per this many minutes: asking again within the
# window finds the message already queued (the outbox's unique key) instead of sending more.
LOGIN_WINDOW_MINUTES = 10

# Default texts of the login message, created on first need and editable by the merchant
# afterwards (in the admin's message templates, key `portal-login`). `portal_url` and
# `minutes` are filled in by `magic_link_send`.
LOGIN_TEMPLATES: dict[str, dict[str, dict[str, str]]] = {
    "fa": {
        "email": {
            "subject": "ورود به باشگاه مشتریان",
            "body_html": (
                "<p>سلام{% if customer.first_name %} {{ customer.first_name }}{% endif %}،</p>"
                '<p><a href="{{ portal_url }}">ورود به صفحهٔ امتیازهای من</a></p>'
                "<p>این پیوند تا {{ minutes }} دقیقه معتبر است. اگر شما درخواست نکرده‌اید، "
                "این پیام را نادیده بگیرید.</p>"
            ),
            "body_text": "",
        },
        "sms": {
            "subject": "",
            "body_html": "",
            "body_text": "ورود به باشگاه مشتریان ({{ minutes }} دقیقه معتبر): {{ portal_url }}",
        },
    },
    "ar": {
        "email": {
            "subject": "الدخول إلى نادي العملاء",
            "body_html": (
                "<p>مرحباً{% if customer.first_name %} {{ customer.first_name }}{% endif %}،</p>"
                '<p><a href="{{ portal_url }}">الدخول إلى صفحة نقاطي</a></p>'
                "<p>هذا الرابط صالح لمدة {{ minutes }} دقيقة. إذا لم تطلبه فتجاهل هذه "
                "الرسالة.</p>"
            ),
            "body_text": "",
        },
        "sms": {
            "subject": "",
            "body_html": "",
            "body_text": "الدخول إلى نادي العملاء (صالح {{ minutes }} دقيقة): {{ portal_url }}",
        },
    },
    "en": {
        "email": {
            "subject": "Your sign-in link to the members' club",
            "body_html": (
                "<p>Hello{% if customer.first_name %} {{ customer.first_name }}{% endif %},</p>"
                '<p><a href="{{ portal_url }}">Open my points page</a></p>'
                "<p>This link works for {{ minutes }} minutes. If you did not ask for it, "
                "ignore this message.</p>"
            ),
            "body_text": "",
        },
        "sms": {
            "subject": "",
            "body_html": "",
            "body_text": "Sign in to the members' club (valid {{ minutes }} min): {{ portal_url }}",
        },
    },
}


def portal_url(
    *, customer: Customer, now: datetime, minutes: int, kind: str
) -> tuple[str, datetime]:
    """An absolute link that opens the portal as `customer`, and when it stops working."""
    expires_at = access.link_expiry(now=now, minutes=minutes)
    token = access.link_token(customer_id=customer.pk, expires_at=expires_at, kind=kind)
    path = reverse("portal:enter", args=[token])
    return f"{messaging_config().site_url}{path}", expires_at


def _login_templates_ensure(channel: str) -> None:
    """Create the default login templates of `channel` in every language that lacks one (the
    merchant's edits are never overwritten)."""
    for language, texts in LOGIN_TEMPLATES.items():
        MessageTemplate.objects.get_or_create(
            key=LOGIN_TEMPLATE_KEY, channel=channel, language=language, defaults=texts[channel]
        )


@dataclass(frozen=True)
class MagicLinkResult:
    """What happened to a request; the page shows the same answer either way, so nobody can
    learn from it whether an address belongs to a customer."""

    sent: bool
    channel: str = ""


def magic_link_send(*, identifier: str, now: datetime) -> MagicLinkResult:
    """Queue a transactional message with a portal link to the customer with this email
    address or phone number: by email when it is an email address, else by SMS. Nothing is
    sent for an unknown address."""
    customer, channel = customer_by_identifier(identifier)
    if customer is None:
        return MagicLinkResult(sent=False)
    url, _ = portal_url(
        customer=customer, now=now, minutes=access.MAGIC_LINK_MINUTES, kind=access.MAGIC
    )
    _login_templates_ensure(channel)
    window = int(now.timestamp()) // (LOGIN_WINDOW_MINUTES * 60)
    message_enqueue(
        customer=customer,
        channel=channel,
        kind=MessageKind.TRANSACTIONAL,
        source=LOGIN_SOURCE,
        step=channel,
        occurrence=str(window),
        template_key=LOGIN_TEMPLATE_KEY,
        now=now,
        expires_at=access.link_expiry(now=now, minutes=access.MAGIC_LINK_MINUTES),
        extra_context={"portal_url": url, "minutes": access.MAGIC_LINK_MINUTES},
    )
    return MagicLinkResult(sent=True, channel=channel)


def data_request_create(
    *, customer: Customer, kind: str, now: datetime, note: str = ""
) -> DataRequest:
    """Record a member's data request for staff.

    A deletion request stays open until staff handle it (asking again returns the open one).
    An export is served by the portal at once, so it is recorded as done by the portal.
    """
    if kind not in DataRequestKind.values:
        raise ValueError(f"unknown data request kind {kind!r}")
    note = note.strip()[:1000]
    if kind == DataRequestKind.EXPORT:
        return DataRequest.objects.create(
            customer=customer,
            kind=kind,
            status=DataRequestStatus.DONE,
            note=note,
            created_at=now,
            handled_at=now,
            handled_by="portal",
        )
    open_request = DataRequest.objects.filter(
        customer=customer, kind=kind, status=DataRequestStatus.OPEN
    ).first()
    if open_request is not None:
        return open_request
    try:
        with transaction.atomic():
            return DataRequest.objects.create(
                customer=customer, kind=kind, note=note, created_at=now
            )
    except IntegrityError:  # the same request sent twice at once: the first one stands
        return DataRequest.objects.get(customer=customer, kind=kind, status=DataRequestStatus.OPEN)


def member_sign_out_everywhere(*, customer: Customer, now: datetime) -> int:
    """End every portal session of `customer` (other phones, a shared computer, the shop's
    embed) by raising their session version; returns the new version. Links already sent
    stop working too (they carry the version they were made under)."""
    with transaction.atomic():
        session, created = MemberSession.objects.get_or_create(
            customer=customer, defaults={"version": 1, "signed_out_everywhere_at": now}
        )
        if not created:
            MemberSession.objects.filter(pk=session.pk).update(
                version=F("version") + 1, signed_out_everywhere_at=now
            )
            session.refresh_from_db(fields=["version"])
    return session.version
