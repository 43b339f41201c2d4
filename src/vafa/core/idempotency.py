"""Idempotent writes: a retried request with the same `Idempotency-Key` gets the first answer.

Every write on the API must carry an `Idempotency-Key` header (a missing one is a 400: a client
that forgets it would silently lose the protection, and clients retry on timeouts). The first
successful response is stored in `IdempotencyRecord` *in the same transaction as the write*, so
either both exist or neither does. A repeat with the same key and the same request (method,
path and JSON body, key order ignored) gets that response again, with the header
`Idempotent-Replayed: true`, and writes nothing; the same key with a different request is a 409
`idempotency_key_reused`. Failed requests (4xx, 5xx) are not stored: nothing was written, so the
client may fix the request and retry with the same key.

Two requests with the same key at once: on SQLite writers are serialised, so the second sees the
first's record; on PostgreSQL the second blocks on the unique index until the first commits,
then gets an `IntegrityError`, rolls its own write back and replays the first answer.

Every API write runs this, so the two statements of a fresh key (is the key used? store the
answer) are plain SQL through the connection's cursor: building the equivalent `QuerySet`s cost
more CPU than the database spent on them. The first look-up runs before the transaction and
takes no lock: there is no row to lock for a fresh key, and a stored record never changes; the
unique index is what settles a race.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from django.db import IntegrityError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from vafa.core import batch, rawsql
from vafa.core.errors import ConflictError, VafaError
from vafa.core.models import ApiKey, IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255


class IdempotencyKeyMissing(VafaError):
    code = "idempotency_key_missing"
    status = 400


class IdempotencyKeyReused(ConflictError):
    code = "idempotency_key_reused"


# True while `idempotent_response` runs a `perform`: see `write_atomic`.
_performing: ContextVar[bool] = ContextVar("vafa_idempotent_perform", default=False)


def write_atomic() -> transaction.Atomic:
    """`transaction.atomic()` for a service's write, without its savepoint when the service runs
    inside `idempotent_response`'s `perform`.

    There the enclosing transaction is rolled back whole on any exception (nothing in between
    catches one), so a savepoint could never be rolled back to on its own: it would only cost
    two statements (`SAVEPOINT`, `RELEASE`) on every API write. Everywhere else (the dashboard,
    tasks, tests that catch an error and go on) it is a plain `atomic()` with its savepoint.
    So a `perform` must never catch an error from such a service and carry on: without the
    savepoint the transaction is broken (`TransactionManagementError` on the next statement).
    In an optimistic write (`vafa.core.batch`) there is no transaction: the batch's one
    statement is what makes the write atomic.
    """
    if batch.optimistic():
        return contextlib.nullcontext()  # type: ignore[return-value]
    return transaction.atomic(savepoint=not _performing.get())


def request_fingerprint(request: HttpRequest) -> str:
    """SHA-256 of method, path and body; a JSON body is canonicalised (sorted keys).

    A multipart upload is fingerprinted by its parsed parts (each field's values, each file's
    field name, file name and content digest) rather than its raw bytes: the parser has already
    streamed those, and a client's retry picks a new random boundary, so the same upload would
    never look the same twice."""
    digest = hashlib.sha256()
    for part in (request.method or "", request.path):
        digest.update(part.encode() + b"\0")
    if request.content_type == "multipart/form-data":
        _multipart_digest(request, digest)
        return digest.hexdigest()
    body = request.body
    with contextlib.suppress(ValueError):
        body = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    digest.update(body)
    return digest.hexdigest()


def _multipart_digest(request: HttpRequest, digest: Any) -> None:
    for name in sorted(request.POST):
        for value in request.POST.getlist(name):
            digest.update(f"field\0{name}\0{value}\0".encode())
    for name in sorted(request.FILES):
        for upload in request.FILES.getlist(name):
            content = hashlib.sha256()
            for chunk in upload.chunks():
                content.update(chunk)
            upload.seek(0)  # the view reads it again
            digest.update(f"file\0{name}\0{upload.name}\0{content.hexdigest()}\0".encode())


def _replay(record: IdempotencyRecord, fingerprint: str, key: str) -> HttpResponse:
    if record.request_hash != fingerprint:
        raise IdempotencyKeyReused(
            f"the Idempotency-Key {key!r} was already used for a different request "
            f"({record.method} {record.path}); use a new key for a new request",
            field=HEADER,
        )
    response = JsonResponse(record.response_body, status=record.status_code, safe=False)
    response[REPLAYED_HEADER] = "true"
    return response


_NAMES = (
    "api_key", "key", "method", "path", "request_hash", "status_code", "response_body",
    "created_at",
)
_FIELDS: list[Field[Any, Any]] = [
    f for f in IdempotencyRecord._meta.concrete_fields if f.name in _NAMES
]
_COLUMNS = tuple(str(f.column) for f in _FIELDS)
def _build_sql(db: BaseDatabaseWrapper, name: str) -> Callable[[], str]:
    """The builder of one of the two statements of a fresh key: `used` or `insert`."""

    def build() -> str:
        q = db.ops.quote_name
        table = q(IdempotencyRecord._meta.db_table)
        if name == "used":
            return f"SELECT 1 FROM {table} WHERE {q('api_key_id')} = %s AND {q('key')} = %s"
        columns = ", ".join(q(str(f.column)) for f in _FIELDS)
        marks = ", ".join(["%s"] * len(_FIELDS))
        return f"INSERT INTO {table} ({columns}) VALUES ({marks})"

    return build


def _sql(db: BaseDatabaseWrapper, name: str) -> str:
    """The two statements of a fresh key, built once per database vendor."""
    return rawsql.statement(db, f"idempotency:{name}", _build_sql(db, name))


# Where `ApiKeyAuth` leaves what it read about the request's key: (api key id, key, used).
_CHECKED = "_vafa_idempotency_checked"


def note_key_checked(request: HttpRequest, api_key: ApiKey, key: str, *, used: bool) -> None:
    """Record that `key` was already looked up for this request (by the authentication, in the
    API key's own statement), so `idempotent_response` need not ask again. Only a fresh key
    skips the look-up; a race with a concurrent request is still settled by the unique index."""
    setattr(request, _CHECKED, (api_key.pk, key, used))


def _key_used(request: HttpRequest, api_key: ApiKey, key: str) -> bool:
    checked = getattr(request, _CHECKED, None)
    if checked is not None and checked[:2] == (api_key.pk, key):
        return bool(checked[2])
    db = rawsql.connection()
    with rawsql.cursor(db) as cursor:
        cursor.execute(_sql(db, "used"), [api_key.pk, key])
        return cursor.fetchone() is not None


def _store(
    request: HttpRequest, api_key: ApiKey, key: str, fingerprint: str, status: int, body: Any
) -> None:
    """Insert the record (an `IntegrityError` when another request stored this key first)."""
    values = {
        "api_key": api_key.pk, "key": key, "method": (request.method or "")[:10],
        "path": request.path[:500], "request_hash": fingerprint, "status_code": status,
        "response_body": body, "created_at": timezone.now(),
    }
    db = rawsql.connection()
    prepared = [field.get_db_prep_save(values[field.name], db) for field in _FIELDS]
    held = batch.active()
    if held is not None:  # goes out with the write's own statement
        held.insert(IdempotencyRecord, _COLUMNS, prepared)
        return
    with rawsql.cursor(db) as cursor:
        cursor.execute(_sql(db, "insert"), prepared)


def _stored(api_key: ApiKey, key: str) -> IdempotencyRecord | None:
    return IdempotencyRecord.objects.filter(api_key=api_key, key=key).first()


def idempotent_response(
    request: HttpRequest,
    *,
    api_key: ApiKey,
    perform: Callable[[], tuple[int, Any]],
    key: str | None = None,
    optimistic: bool = False,
) -> HttpResponse:
    """Run `perform` (which writes and returns `(status, JSON body)`) at most once per key.

    `key` defaults to the request's `Idempotency-Key` header (required). With `optimistic`
    (for a `perform` whose services support it, see `vafa.core.batch`), PostgreSQL first runs
    it without a transaction, its write guarded by the version it read; when that gives up
    (`NeedsLock`, nothing written) it runs again in a transaction, as without.
    """
    key = key if key is not None else request.headers.get(HEADER, "").strip()
    if not key:
        raise IdempotencyKeyMissing(
            f"every write needs an {HEADER} header (a unique value per logical request, "
            "e.g. a UUID), so that a retry never writes twice",
            field=HEADER,
        )
    if len(key) > MAX_KEY_LENGTH:
        raise VafaError(f"{HEADER} longer than {MAX_KEY_LENGTH} characters", field=HEADER)
    fingerprint = request_fingerprint(request)
    if _key_used(request, api_key, key):
        record = _stored(api_key, key)
        if record is not None:
            return _replay(record, fingerprint, key)

    def attempt(*, optimistic: bool) -> tuple[int, Any]:
        # The write and its record go out as one statement (PostgreSQL's write batch).
        with batch.write(optimistic=optimistic):
            token = _performing.set(True)
            try:
                status, body = perform()
            finally:
                _performing.reset(token)
            _store(request, api_key, key, fingerprint, status, body)
        return status, body

    try:
        if optimistic and batch.supported() and rawsql.connection().get_autocommit():
            try:
                status, body = attempt(optimistic=True)
                return JsonResponse(body, status=status, safe=False)
            except batch.NeedsLock:
                pass  # nothing was written: take the locks and do it again
        with transaction.atomic():
            status, body = attempt(optimistic=False)
    except IntegrityError:
        # A concurrent request with the same key committed first; ours was rolled back.
        record = _stored(api_key, key)
        if record is None:
            raise
        return _replay(record, fingerprint, key)
    return JsonResponse(body, status=status, safe=False)
