"""How a member gets into the portal: expiring links, then a member session of their own.

A link token is sealed with messaging's AES-GCM tokens (`vafa.messaging.tokens.seal`) under its
own purpose, so it is opaque (no customer id in the URL), unforgeable and useless as an
unsubscribe or click token. It carries the customer, the moment it expires, how it was
made (an emailed magic link or the shop's embed) and the member's session version when it was
made. A link may be opened more than once until it expires: mail scanners open links before
people do, and a single-use link would be spent by them.

Opening a link starts a *member session*: a signed cookie (`vafa_member`, HttpOnly, SameSite=Lax,
path `/p/`) that holds only the customer id and the member's session version. It is separate
from staff authentication on purpose: a staff login or logout never touches it, a member never
becomes a Django user, and the cookie is only sent to portal URLs. "Sign out everywhere" raises
the version (`MemberSession`), which every portal request checks, so cookies issued before it
stop working on every device at once, and so do links made before it (a forwarded or
intercepted sign-in email is the likely reason to sign out everywhere).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from vafa.customers.models import Customer
from vafa.dashboard.portal.framing import frame_ancestors
from vafa.dashboard.portal.models import MemberSession
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
    version: int  # the member's session version when the link was made


_LINK = struct.Struct(">QqBI")
_LINK_BEFORE_VERSIONS = struct.Struct(">QqB")  # links made before they carried the version


def link_token(
    *, customer_id: int, expires_at: datetime, kind: str, version: int | None = None
) -> str:
    """A sealed token for `customer_id`, good until `expires_at` and while the member's session
    version stays `version` (by default the current one)."""
    if kind not in _KINDS:
        raise ValueError(f"unknown portal link kind {kind!r}")
    if version is None:
        version = session_version(customer_id)
    payload = _LINK.pack(customer_id, int(expires_at.timestamp()), _KINDS.index(kind), version)
    return tokens.seal(payload, purpose=LINK_PURPOSE)


def read_link_token(token: str, *, now: datetime) -> PortalLink:
    """The link inside `token`; `LinkError("invalid")` for a forged, altered or foreign token
    and `LinkError("expired")` once its time is up. Whether the member has signed out
    everywhere since is for `link_still_valid`."""
    try:
        payload = tokens.unseal(token, purpose=LINK_PURPOSE)
        if len(payload) == _LINK_BEFORE_VERSIONS.size:
            customer_id, expires, kind, version = (*_LINK_BEFORE_VERSIONS.unpack(payload), 0)
        else:
            customer_id, expires, kind, version = _LINK.unpack(payload)
        link = PortalLink(
            customer_id, datetime.fromtimestamp(expires, tz=UTC), _KINDS[kind], version
        )
    except (InvalidToken, struct.error, IndexError, OverflowError, ValueError):
        raise LinkError("invalid") from None
    if link.expires_at <= now:
        raise LinkError("expired")
    return link


def link_still_valid(link: PortalLink) -> bool:
    """False once the member has signed out everywhere after the link was made."""
    return link.version >= session_version(link.customer_id)


def link_expiry(*, now: datetime, minutes: int) -> datetime:
    """When a link made at `now` for `minutes` stops working."""
    return now + timedelta(minutes=minutes)


def session_version(customer_id: int) -> int:
    """The member's current session version (0 until they first signed out everywhere)."""
    version = (MemberSession.objects.filter(customer_id=customer_id)
               .values_list("version", flat=True).first())
    return int(version or 0)


def _same_site(request: HttpRequest) -> Literal["Lax", "None"]:
    """`Lax`, unless the shop may frame the portal and the connection is HTTPS: a browser sends
    a Lax cookie to a frame inside another site's page never, so the embedded portal would
    forget its member on the first click; `None` (which browsers accept only with `Secure`)
    lets it through, still HttpOnly and limited to /p/."""
    return "None" if request.is_secure() and frame_ancestors() else "Lax"


def session_start(response: HttpResponse, *, request: HttpRequest, link: PortalLink) -> None:
    """Give the browser the session cookie of the link's member, under the session version the
    link was made with (checked current by `link_still_valid`: a sign-out everywhere in
    between then ends this session too)."""
    response.set_signed_cookie(
        SESSION_COOKIE,
        f"{link.customer_id}:{link.version}",
        salt=SESSION_SALT,
        max_age=SESSION_DAYS * 24 * 3600,
        path=SESSION_PATH,
        secure=request.is_secure(),
        httponly=True,
        samesite=_same_site(request),
    )


def session_end(response: HttpResponse, *, request: HttpRequest) -> None:
    response.delete_cookie(SESSION_COOKIE, path=SESSION_PATH, samesite=_same_site(request))


def session_customer(request: HttpRequest) -> Customer | None:
    """The member this browser is signed in as, or None (no cookie, a forged or stale one, one
    issued before the member signed out everywhere, or a customer who no longer exists).
    One query: the customer with their session version."""
    try:
        raw = request.get_signed_cookie(
            SESSION_COOKIE, salt=SESSION_SALT, max_age=SESSION_DAYS * 24 * 3600
        )
        # "id:version"; a bare id is a cookie from before versions existed (version 0).
        customer_part, _sep, version_part = (raw or "").partition(":")
        customer_id = int(customer_part)
        version = int(version_part or "0")
    except (KeyError, signing.BadSignature, ValueError):
        return None
    customer = Customer.objects.filter(pk=customer_id).select_related("portal_session").first()
    if customer is None:
        return None
    try:
        current = customer.portal_session.version
    except MemberSession.DoesNotExist:
        current = 0
    return customer if version == current else None


# -- how often one network may ask for sign-in links ------------------------------------------

SIGN_IN_LIMIT = 10
"""Sign-in link requests one address may make per window (`VAFA_PORTAL_SIGN_IN_LIMIT`). Generous
on purpose: mobile carriers put many customers behind one address."""
SIGN_IN_WINDOW_MINUTES = 15


def _client_network(ip: str) -> str:
    """The unit a limit applies to: the IPv4 address, or the /64 an IPv6 address is in (one
    subscriber usually holds a whole /64)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def sign_in_request_allowed(*, client_ip: str, now: datetime) -> bool:
    """Count one sign-in link request from `client_ip` and say whether it is within the limit
    (`SIGN_IN_LIMIT` per `SIGN_IN_WINDOW_MINUTES`, in fixed windows, kept in Django's cache).

    The limit protects members' inboxes and the shop's SMS budget from someone asking for
    links in a loop; it needs a cache shared by all processes (Redis) to hold across workers.
    """
    limit = int(getattr(settings, "VAFA_PORTAL_SIGN_IN_LIMIT", SIGN_IN_LIMIT))
    window = SIGN_IN_WINDOW_MINUTES * 60
    key = f"vafa:portal:sign-in:{_client_network(client_ip)}:{int(now.timestamp()) // window}"
    cache.add(key, 0, timeout=window + 60)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr: this request starts a new count
        cache.set(key, 1, timeout=window + 60)
        count = 1
    return count <= limit
