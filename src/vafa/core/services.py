"""Writes to platform records: API keys (created, revoked).

The admin (an action on `ApiKey`) and the CLI (`vafa apikey …`) both call these.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from vafa.core.errors import ValidationError
from vafa.core.models import ApiKey, hash_key

PREFIX_LENGTH = 13  # "vafa_" and 8 random characters: enough to tell keys apart in a list


@transaction.atomic
def apikey_create(*, name: str, created_by: Any = None, role: str = "owner") -> tuple[ApiKey, str]:
    """Create an API key with a team role (see `vafa.core.auth.API_WRITES`); return it and the
    raw key, which is not stored and cannot be shown again (only its SHA-256 is kept)."""
    from vafa.core.roles import ROLES

    if role not in ROLES:
        raise ValidationError(f"unknown role {role!r}; the roles are {', '.join(ROLES)}",
                              field="role")
    name = name.strip()
    if not name:
        raise ValidationError("an API key needs a name", field="name")
    if len(name) > 100:
        raise ValidationError("name longer than 100 characters", field="name")
    raw = ApiKey.generate_raw_key()
    api_key = ApiKey.objects.create(
        name=name, prefix=raw[:PREFIX_LENGTH], key_hash=hash_key(raw), created_by=created_by,
        role=role,
    )
    return api_key, raw


@transaction.atomic
def apikey_revoke(*, api_key: ApiKey) -> ApiKey:
    """Revoke a key: every later request with it is refused (401). Revoking twice keeps the
    first revocation time."""
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    api_key.refresh_from_db(fields=["revoked_at"])
    return api_key
