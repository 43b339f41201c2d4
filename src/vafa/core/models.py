"""Platform-wide records: API keys and idempotency records for every API write."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

KEY_PREFIX = "vafa_"


def hash_key(raw: str) -> str:
    """SHA-256 of an API key. Keys are 32 random bytes, so a fast hash is enough (no guessing)."""
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def active(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    """A key a shop's systems use on the API. Only its hash is stored; the key is shown once."""

    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=16, editable=False, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        verbose_name=_("created by"),
    )
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    role = models.CharField(
        _("role"), max_length=20, default="owner",
        choices=[("owner", _("Owner")), ("marketer", _("Marketer")), ("support", _("Support")),
                 ("analyst", _("Analyst"))],
        help_text=_("What the key may do: the shop's backend needs owner; an analyst key only "
                    "reads."),
    )

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def generate_raw_key() -> str:
        return KEY_PREFIX + secrets.token_urlsafe(32)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class IdempotencyRecord(models.Model):
    """The first response to a write that carried an `Idempotency-Key`, replayed on repeats."""

    # `api_key` leads the unique ("api_key", "key") index. A single-column one would only cost
    # every insert (and gives the planner a worse way to find a record: all of a key's, and a
    # shop often has a single key).
    api_key = models.ForeignKey(
        ApiKey, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["api_key", "key"], name="uniq_idempotency_key_per_api_key")
        ]
        indexes = [models.Index(fields=["created_at"])]
