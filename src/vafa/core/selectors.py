"""Reads of platform records: API keys by id or prefix."""

from __future__ import annotations

from vafa.core.errors import NotFoundError, ValidationError
from vafa.core.models import ApiKey


def apikey_find(*, prefix_or_id: str) -> ApiKey:
    """The API key with this numeric id or whose prefix starts with the given text (which must
    match exactly one key)."""
    text = prefix_or_id.strip()
    if text.isdigit():
        found = ApiKey.objects.filter(pk=int(text)).first()
        if found is None:
            raise NotFoundError(f"no API key with id {text}")
        return found
    if len(text) < 6:
        raise ValidationError("give at least 6 characters of the key's prefix (vafa_…)")
    matches = list(ApiKey.objects.filter(prefix__startswith=text[:16])[:2])
    if not matches:
        raise NotFoundError(f"no API key with prefix {text!r}")
    if len(matches) > 1:
        raise ValidationError(f"several API keys start with {text!r}; give more of the prefix")
    return matches[0]
