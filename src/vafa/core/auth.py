"""API-key authentication: `Authorization: Bearer vafa_…`, checked by hash, and the key's role.

A key carries one of the team roles of `vafa.core.roles`. Every role reads; writes are allowed
by `API_WRITES`: the owner (the shop's backend: customers, orders, events) writes everything,
support may adjust and redeem points and send survey or portal links, a marketer may send
survey and portal links, an analyst writes nothing. A refused write is a 403 `forbidden`.
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from vafa.core.errors import AuthenticationError, PermissionDeniedError
from vafa.core.models import KEY_PREFIX, ApiKey, hash_key
from vafa.core.roles import ANALYST, MARKETER, OWNER, SAFE_METHODS, SUPPORT

# `last_used_at` is written at most this often per key, so reads do not each cost a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def apikey_authenticate(*, raw_key: str) -> ApiKey:
    """The active API key for a raw key; `AuthenticationError` for an unknown or revoked one.

    Keys are looked up by their SHA-256 (unique index), never compared in Python, so the time a
    refusal takes says nothing about how close a guess was.
    """
    raw_key = raw_key.strip()
    if not raw_key.startswith(KEY_PREFIX):
        raise AuthenticationError("not a Vafa API key (they start with vafa_)")
    api_key = ApiKey.objects.filter(key_hash=hash_key(raw_key)).first()
    if api_key is None:
        raise AuthenticationError("unknown API key")
    if api_key.revoked_at is not None:
        raise AuthenticationError("this API key has been revoked")
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


_MEMBER = r"/api/v1/members/[^/]+"
_SEND_LINKS = (r"/api/v1/survey-invitations", _MEMBER + r"/portal-link", _MEMBER + r"/referral-code")
API_WRITES: dict[str, tuple[re.Pattern[str], ...]] = {
    MARKETER: tuple(re.compile(p + "/?") for p in _SEND_LINKS),
    SUPPORT: tuple(re.compile(p + "/?") for p in (
        *_SEND_LINKS, _MEMBER + r"/adjustments", _MEMBER + r"/redemptions",
        r"/api/v1/redemptions/[^/]+/cancel", r"/api/v1/coupons/[^/]+/use",
    )),
    ANALYST: (),
}
"""The writes (non-GET requests, by path) each role other than the owner may make."""


def apikey_may(api_key: ApiKey, *, method: str, path: str) -> bool:
    """Whether the key's role allows this request: every role reads, the owner writes anything,
    the others only the paths of `API_WRITES`."""
    if method.upper() in SAFE_METHODS or api_key.role == OWNER:
        return True
    return any(pattern.fullmatch(path) for pattern in API_WRITES.get(api_key.role, ()))


class ApiKeyAuth(HttpBearer):
    """django-ninja auth: sets `request.auth` to the `ApiKey`; refuses (403) a write its role
    does not allow."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey:
        api_key = apikey_authenticate(raw_key=token)
        if not apikey_may(api_key, method=request.method or "GET", path=request.path):
            raise PermissionDeniedError(
                f"this API key's role ({api_key.role}) may not make this request"
            )
        return api_key


def request_api_key(request: HttpRequest) -> ApiKey:
    """The API key that authenticated the request (set by `ApiKeyAuth`)."""
    api_key = getattr(request, "auth", None)
    if not isinstance(api_key, ApiKey):
        raise AuthenticationError("missing API key: send Authorization: Bearer <key>")
    return api_key
