"""Admin for analysis runs and the per-customer scores."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from vafa.core.text import localize_number
from vafa.insights.models import AnalysisRun, CustomerNote, CustomerScore, Goal


@admin.register(AnalysisRun)
class AnalysisRunAdmin(admin.ModelAdmin):
    list_display = ("started_at", "status", "as_of", "customers", "triggered_by", "finished_at",
                    "report_link")
    list_filter = ("status",)
    readonly_fields = ("started_at", "finished_at", "as_of", "status", "triggered_by",
                       "customers", "error")
    exclude = ("summary",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description=_("report"))
    def report_link(self, obj: AnalysisRun) -> str:
        if obj.status != AnalysisRun.Status.DONE:
            return "–"
        return format_html('<a href="{}">{}</a>', reverse("insights:report"), _("open"))


@admin.register(CustomerScore)
class CustomerScoreAdmin(admin.ModelAdmin):
    list_display = ("customer", "rfm_segment", "loyalty_label", "chance_active", "clv", "vip")
    list_filter = ("vip", "rfm_segment", "loyalty_label")
    search_fields = ("customer__external_id", "customer__email", "customer__phone",
                     "customer__last_name")
    list_select_related = ("customer",)
    raw_id_fields = ("customer", "run")
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description=_("probability still active"), ordering="p_alive")
    def chance_active(self, obj: CustomerScore) -> str:
        if obj.p_alive is None:
            return "–"
        return localize_number(f"{obj.p_alive:.0%}", (get_language() or "en")[:2])

    @admin.display(description=_("predicted CLV"), ordering="predicted_clv")
    def clv(self, obj: CustomerScore) -> str:
        if obj.predicted_clv is None:
            return "–"
        return localize_number(f"{obj.predicted_clv:,.0f}", (get_language() or "en")[:2])


@admin.register(Goal)
class GoalAdmin(admin.ModelAdmin):
    """Goals are set on the dashboard's goals page; the admin lists and corrects them."""

    list_display = ("name", "metric", "target", "baseline", "start", "deadline", "owner")
    list_filter = ("metric",)
    search_fields = ("name",)


@admin.register(CustomerNote)
class CustomerNoteAdmin(admin.ModelAdmin):
    """Notes are written on the customer page; here they can be found and removed."""

    list_display = ("customer", "author", "created_at")
    search_fields = ("customer__external_id", "body", "author")
    raw_id_fields = ("customer",)
    readonly_fields = ("idempotency_key",)
