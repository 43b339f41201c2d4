"""Admin for flows: the merchant edits flows and their steps, switches them on and off, and
follows each customer's enrolment. Templates are edited in the messaging admin (linked from
each flow); enrolments are read-only here and move only through the services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from vafa.core.admin import ReadOnlyMixin
from vafa.core.errors import ValidationError
from vafa.messaging.flows.models import Flow, FlowEnrollment, FlowStep
from vafa.messaging.flows.services import flow_set_enabled, flow_validate


class FlowForm(forms.ModelForm):
    class Meta:
        model = Flow
        fields = ("key", "name", "trigger", "kind", "topic", "enabled", "reentry", "channels",
                  "conditions", "params", "control_percent")

    def clean(self) -> dict[str, Any]:
        """Refuse conditions and channels the runner does not know."""
        data = super().clean() or {}
        candidate = Flow(conditions=data.get("conditions") or {},
                         channels=data.get("channels") or [])
        try:
            flow_validate(flow=candidate)
        except ValidationError as exc:
            self.add_error("conditions", exc.message)
        return data


class FlowStepInline(admin.TabularInline):
    model = FlowStep
    extra = 0
    fields = ("position", "delay_minutes", "template_key", "conditions")


@admin.register(Flow)
class FlowAdmin(admin.ModelAdmin):
    form = FlowForm
    inlines = (FlowStepInline,)
    list_display = ("name", "key", "trigger", "kind", "enabled", "reentry", "templates")
    list_filter = ("enabled", "kind", "trigger")
    search_fields = ("key", "name")
    actions = ("switch_on", "switch_off")

    @admin.display(description=_("templates"))
    def templates(self, flow: Flow) -> str:
        url = reverse("admin:messaging_messagetemplate_changelist")
        keys = sorted({step.template_key for step in flow.steps.all()})
        return format_html_join(
            " ", '<a href="{}?key={}">{}</a>', ((url, key, key) for key in keys)
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Flow]:
        return super().get_queryset(request).prefetch_related("steps")

    def _switch(self, request: HttpRequest, queryset: QuerySet[Flow], enabled: bool) -> None:
        now = timezone.now()
        for flow in queryset:
            flow_set_enabled(flow=flow, enabled=enabled, now=now)
        self.message_user(request, _("%(count)d flows updated.") % {"count": queryset.count()},
                          messages.SUCCESS)

    @admin.action(description=_("Switch the selected flows on"))
    def switch_on(self, request: HttpRequest, queryset: QuerySet[Flow]) -> None:
        self._switch(request, queryset, True)

    @admin.action(description=_("Switch the selected flows off"))
    def switch_off(self, request: HttpRequest, queryset: QuerySet[Flow]) -> None:
        self._switch(request, queryset, False)


@admin.register(FlowEnrollment)
class FlowEnrollmentAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("flow", "customer_link", "occurrence", "state", "next_position", "next_at",
                    "reason", "entered_at")
    list_filter = ("state", "flow")
    search_fields = ("customer__external_id", "customer__email", "occurrence")
    list_select_related = ("flow", "customer")

    @admin.display(description=_("customer"))
    def customer_link(self, enrollment: FlowEnrollment) -> str:
        url = reverse("admin:customers_customer_change", args=[enrollment.customer_id])
        return format_html('<a href="{}">{}</a>', url, enrollment.customer)
