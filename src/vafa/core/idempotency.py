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
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse

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


def request_fingerprint(request: HttpRequest) -> str:
    """SHA-256 of method, path and body; a JSON body is canonicalised (sorted keys)."""
    body = request.body
    with contextlib.suppress(ValueError):
        body = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256()
    for part in (request.method or "", request.path):
        digest.update(part.encode() + b"\0")
    digest.update(body)
    return digest.hexdigest()


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


def idempotent_response(
    request: HttpRequest,
    *,
    api_key: ApiKey,
    perform: Callable[[], tuple[int, Any]],
    key: str | None = None,
) -> HttpResponse:
    """Run `perform` (which writes and returns `(status, JSON body)`) at most once per key.

    `key` defaults to the request's `Idempotency-Key` header (required).
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
    try:
        with transaction.atomic():
            record = (
                IdempotencyRecord.objects.select_for_update()
                .filter(api_key=api_key, key=key)
                .first()
            )
            if record is not None:
                return _replay(record, fingerprint, key)
            status, body = perform()
            IdempotencyRecord.objects.create(
                api_key=api_key, key=key, method=(request.method or "")[:10],
                path=request.path[:500], request_hash=fingerprint, status_code=status,
                response_body=body,
            )
    except IntegrityError:
        # A concurrent request with the same key committed first; ours was rolled back.
        record = IdempotencyRecord.objects.filter(api_key=api_key, key=key).first()
        if record is None:
            raise
        return _replay(record, fingerprint, key)
    return JsonResponse(body, status=status, safe=False)
