"""API-key authentication: `Authorization: Bearer vafa_…`, checked by hash."""

from __future__ import annotations

from datetime import timedelta

from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from vafa.core.errors import AuthenticationError
from vafa.core.models import KEY_PREFIX, ApiKey, hash_key

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


class ApiKeyAuth(HttpBearer):
    """django-ninja auth: sets `request.auth` to the `ApiKey`."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey:
        return apikey_authenticate(raw_key=token)


def request_api_key(request: HttpRequest) -> ApiKey:
    """The API key that authenticated the request (set by `ApiKeyAuth`)."""
    api_key = getattr(request, "auth", None)
    if not isinstance(api_key, ApiKey):
        raise AuthenticationError("missing API key: send Authorization: Bearer <key>")
    return api_key
