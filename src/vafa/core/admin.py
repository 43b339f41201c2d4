"""Admin for API keys: create (the key is shown once) and revoke, through the core services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from vafa.core.models import ApiKey
from vafa.core.services import apikey_create, apikey_revoke


class ReadOnlyMixin:
    """Show rows, never add, change or delete them in the admin (ledgers, logs, computed scores:
    they change only through their services)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


admin.site.site_header = _("Vafa: customer club")
admin.site.site_title = _("Vafa")
admin.site.index_title = _("Shop administration")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "role", "created_at", "created_by", "last_used_at",
                    "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "prefix")
    fields = ("name", "role", "prefix", "created_at", "created_by", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "created_at", "created_by", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created_by = request.user if request.user.is_authenticated else None
        api_key, raw = apikey_create(name=obj.name, created_by=created_by, role=obj.role)
        # The admin redirects to the object it saved: hand it the row the service created.
        obj.pk = api_key.pk
        obj.__dict__.update({f.attname: getattr(api_key, f.attname) for f in ApiKey._meta.fields})
        messages.warning(
            request,
            _("The new API key is %(key)s — copy it now, it will not be shown again.")
            % {"key": raw},
        )

    @admin.action(description=_("Revoke the selected API keys"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        keys = list(queryset.filter(revoked_at__isnull=True))
        for api_key in keys:
            apikey_revoke(api_key=api_key)
        self.message_user(request, _("%(count)d key(s) revoked.") % {"count": len(keys)})
