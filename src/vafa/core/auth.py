"""API-key authentication: `Authorization: Bearer vafa_…`, checked by hash, and the key's role.

A key carries one of the team roles of `vafa.core.roles`. Every role reads; writes are allowed
by `API_WRITES`: the owner (the shop's backend: customers, orders, events) writes everything,
support may adjust and redeem points and send survey or portal links, a marketer may send
survey and portal links, an analyst writes nothing. A refused write is a 403 `forbidden`.
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from vafa.core import idempotency, rawsql
from vafa.core.errors import AuthenticationError, PermissionDeniedError
from vafa.core.models import KEY_PREFIX, ApiKey, IdempotencyRecord, hash_key
from vafa.core.roles import ANALYST, MARKETER, OWNER, SAFE_METHODS, SUPPORT

# `last_used_at` is written at most this often per key, so reads do not each cost a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


_KEY_FIELDS = rawsql.fields(ApiKey)


def _key_sql(db: BaseDatabaseWrapper, *, with_idempotency: bool) -> str:
    """`SELECT <every ApiKey column> … WHERE key_hash = %s`, built once per database vendor;
    `with_idempotency` adds a last column: whether the key already stored an answer under the
    `Idempotency-Key` given as the first parameter (NULL when not)."""

    def build() -> str:
        q = db.ops.quote_name
        columns = ", ".join(f"k.{q(str(f.column))}" for f in _KEY_FIELDS)
        if with_idempotency:
            records = q(IdempotencyRecord._meta.db_table)
            columns += (
                f", (SELECT 1 FROM {records} r WHERE r.{q('api_key_id')} = k.{q('id')} "
                f"AND r.{q('key')} = %s)"
            )
        return f"SELECT {columns} FROM {q(ApiKey._meta.db_table)} k WHERE k.{q('key_hash')} = %s"

    return rawsql.statement(db, f"apikey:{with_idempotency}", build)


def apikey_authenticate(*, raw_key: str) -> ApiKey:
    """The active API key for a raw key; `AuthenticationError` for an unknown or revoked one.

    Keys are looked up by their SHA-256 (unique index), never compared in Python, so the time a
    refusal takes says nothing about how close a guess was.

    Every API request runs this, so it is one plain indexed `SELECT` through the connection's
    cursor rather than a `QuerySet` (whose compilation cost more CPU than the query itself). It
    is not cached across requests: a revoked key is refused from the very next request, in
    every process.
    """
    return _authenticate(raw_key, idempotency_key=None)[0]


def _authenticate(raw_key: str, *, idempotency_key: str | None) -> tuple[ApiKey, bool]:
    """`apikey_authenticate`, and with an `idempotency_key` also whether this key already
    stored an answer under it (read in the same statement; False without a key)."""
    raw_key = raw_key.strip()
    if not raw_key.startswith(KEY_PREFIX):
        raise AuthenticationError("not a Vafa API key (they start with vafa_)")
    db = rawsql.connection()
    checked = idempotency_key is not None
    params = [idempotency_key, hash_key(raw_key)] if checked else [hash_key(raw_key)]
    with rawsql.cursor(db) as cursor:
        cursor.execute(_key_sql(db, with_idempotency=checked), params)
        row = cursor.fetchone()
    if row is None:
        raise AuthenticationError("unknown API key")
    width = len(_KEY_FIELDS)
    api_key = rawsql.instance(db, ApiKey, row[:width])
    if api_key.revoked_at is not None:
        raise AuthenticationError("this API key has been revoked")
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key, checked and row[width] is not None


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
        # A write's `Idempotency-Key` is looked up in the key's own statement (one round trip
        # less per write); `idempotent_response` then trusts that answer for this request.
        idempotency_key = None
        if (request.method or "GET").upper() not in SAFE_METHODS:
            idempotency_key = request.headers.get(idempotency.HEADER, "").strip() or None
        api_key, used = _authenticate(token, idempotency_key=idempotency_key)
        if idempotency_key is not None:
            idempotency.note_key_checked(request, api_key, idempotency_key, used=used)
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
