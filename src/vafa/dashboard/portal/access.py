"""How a member gets into the portal: expiring links, then a member session of their own.

A link token is sealed with messaging's AES-GCM tokens (`vafa.messaging.tokens.seal`) under its
own purpose, so it is opaque (no customer id in the URL), unforgeable and useless as an
unsubscribe or click token. It carries the customer, the moment it expires and how it was
made (an emailed magic link or the shop's embed). A link may be opened more than once until it
expires: mail scanners open links before people do, and a single-use link would be spent by
them.

Opening a link starts a *member session*: a signed cookie (`vafa_member`, HttpOnly, SameSite=Lax,
path `/p/`) that holds only the customer id. It is separate from staff authentication on
purpose: a staff login or logout never touches it, a member never becomes a Django user, and
the cookie is only sent to portal URLs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core import signing
from django.http import HttpRequest, HttpResponse

from vafa.customers.models import Customer
from vafa.messaging import tokens
from vafa.messaging.errors import InvalidToken

LINK_PURPOSE = "portal-link"
MAGIC, EMBED = "magic", "embed"
_KINDS = (MAGIC, EMBED)
MAGIC_LINK_MINUTES = 30
EMBED_LINK_MINUTES = 15
MAX_EMBED_LINK_MINUTES = 24 * 60
SESSION_COOKIE = "vafa_member"
SESSION_SALT = "vafa.portal.session"
SESSION_DAYS = 30
SESSION_PATH = "/p/"


class LinkError(Exception):
    """A portal link that cannot be used; `reason` is `invalid` or `expired`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PortalLink:
    customer_id: int
    expires_at: datetime
    kind: str


def link_token(*, customer_id: int, expires_at: datetime, kind: str) -> str:
    """A sealed token for `customer_id`, good until `expires_at`."""
    if kind not in _KINDS:
        raise ValueError(f"unknown portal link kind {kind!r}")
    payload = struct.pack(">QqB", customer_id, int(expires_at.timestamp()), _KINDS.index(kind))
    return tokens.seal(payload, purpose=LINK_PURPOSE)


def read_link_token(token: str, *, now: datetime) -> PortalLink:
    """The link inside `token`; `LinkError("invalid")` for a forged, altered or foreign token
    and `LinkError("expired")` once its time is up."""
    try:
        customer_id, expires, kind = struct.unpack(
            ">QqB", tokens.unseal(token, purpose=LINK_PURPOSE)
        )
        link = PortalLink(customer_id, datetime.fromtimestamp(expires, tz=UTC), _KINDS[kind])
    except (InvalidToken, struct.error, IndexError, OverflowError, ValueError):
        raise LinkError("invalid") from None
    if link.expires_at <= now:
        raise LinkError("expired")
    return link


def link_expiry(*, now: datetime, minutes: int) -> datetime:
    """When a link made at `now` for `minutes` stops working."""
    return now + timedelta(minutes=minutes)


def session_start(response: HttpResponse, *, request: HttpRequest, customer: Customer) -> None:
    """Give the browser the member's session cookie."""
    response.set_signed_cookie(
        SESSION_COOKIE,
        str(customer.pk),
        salt=SESSION_SALT,
        max_age=SESSION_DAYS * 24 * 3600,
        path=SESSION_PATH,
        secure=request.is_secure(),
        httponly=True,
        samesite="Lax",
    )


def session_end(response: HttpResponse) -> None:
    response.delete_cookie(SESSION_COOKIE, path=SESSION_PATH, samesite="Lax")


def session_customer(request: HttpRequest) -> Customer | None:
    """The member this browser is signed in as, or None (no cookie, a forged or stale one, or a
    customer who no longer exists)."""
    try:
        raw = request.get_signed_cookie(
            SESSION_COOKIE, salt=SESSION_SALT, max_age=SESSION_DAYS * 24 * 3600
        )
        customer_id = int(raw or "")
    except (KeyError, signing.BadSignature, ValueError):
        return None
    return Customer.objects.filter(pk=customer_id).first()
