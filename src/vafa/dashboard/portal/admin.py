"""Staff see members' data requests in the admin and record how each one was handled."""

from __future__ import annotations

from django.contrib import admin

from vafa.dashboard.portal.models import DataRequest


@admin.register(DataRequest)
class DataRequestAdmin(admin.ModelAdmin):
    list_display = ("customer", "kind", "status", "created_at", "handled_at", "handled_by")
    list_filter = ("status", "kind")
    search_fields = ("customer__external_id", "customer__email", "customer__phone")
    readonly_fields = ("customer", "kind", "note", "created_at")
    fields = ("customer", "kind", "note", "created_at", "status", "handled_at", "handled_by")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: object) -> bool:
        return False  # requests come from members, through the portal
