"""Admin for campaigns: the merchant writes a draft (segment, channels, variants, control group,
auto-pause limits), previews what its SMS will cost, then schedules, pauses, resumes or cancels
it through the services. Once scheduled a campaign is read-only here; its status counts and
its event log show what happened."""

from __future__ import annotations

import os
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from vafa.core.admin import ReadOnlyMixin
from vafa.core.errors import VafaError
from vafa.core.money import normalize_currency
from vafa.messaging.campaigns import services
from vafa.messaging.campaigns.models import (
    Campaign,
    CampaignEvent,
    CampaignStatus,
    CampaignVariant,
)
from vafa.messaging.campaigns.selectors import (
    campaign_health,
    campaign_sms_estimate,
    campaign_status_counts,
)


def _editable(obj: Campaign | None) -> bool:
    return obj is None or obj.status == CampaignStatus.DRAFT


class CampaignVariantInline(admin.TabularInline):
    model = CampaignVariant
    fields = ("name", "weight", "template_key")
    extra = 1

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _editable(obj) and super().has_delete_permission(request, obj)


class CampaignEventInline(ReadOnlyMixin, admin.TabularInline):
    model = CampaignEvent
    fields = ("at", "event", "reason", "actor")
    readonly_fields = fields
    extra = 0


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = (
        "name", "segment", "status", "send_at", "recipients_count", "started_at", "finished_at",
    )
    list_filter = ("status", "topic")
    search_fields = ("name",)
    inlines = [CampaignVariantInline, CampaignEventInline]
    actions = ["schedule", "pause", "resume", "cancel"]
    fields = (
        "name", "segment", "channel_order", "topic", "send_at", "control_percent",
        "max_bounce_percent", "max_complaint_percent", "min_sample",
        "status", "status_reason", "recipients_count", "status_counts", "rates", "sms_cost",
    )
    readonly_fields = ("status", "status_reason", "recipients_count", "status_counts", "rates",
                       "sms_cost")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _editable(obj) and super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Campaign, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = str(request.user)[:150]
        super().save_model(request, obj, form, change)

    # -- what the merchant sees ----------------------------------------------------------------

    @admin.display(description=_("messages by status"))
    def status_counts(self, obj: Campaign) -> str:
        if obj.pk is None:
            return "-"
        counts = campaign_status_counts(obj)
        if not counts:
            return "-"
        return format_html_join(
            ", ", "{}: {}", ((name, count) for name, count in sorted(counts.items()))
        )

    @admin.display(description=_("bounces and complaints"))
    def rates(self, obj: Campaign) -> str:
        if obj.pk is None or obj.started_at is None:
            return "-"
        health = campaign_health(obj)
        return format_html(
            "{} / {}: {}% / {}%", health.bounced, health.complaints,
            f"{health.bounce_percent:.2f}", f"{health.complaint_percent:.2f}",
        )

    @admin.display(description=_("SMS cost"))
    def sms_cost(self, obj: Campaign) -> str:
        if obj.pk is None or "sms" not in obj.channels:
            return "-"
        url = reverse("admin:campaigns_campaign_sms_cost", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Estimate before sending"))

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<int:pk>/sms-cost/",
                self.admin_site.admin_view(self.sms_cost_view),
                name="campaigns_campaign_sms_cost",
            )
        ]
        return own + super().get_urls()

    def sms_cost_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The SMS part of the campaign rendered for a sample of its real audience and scaled
        up: recipients on SMS, segments per message (UCS-2 for Persian and Arabic), cost at
        `?price=` per segment (default `VAFA_SMS_PRICE_PER_SEGMENT`)."""
        campaign = get_object_or_404(Campaign, pk=pk)
        raw_price = request.GET.get("price") or os.environ.get("VAFA_SMS_PRICE_PER_SEGMENT", "0")
        currency = request.GET.get("currency", "")
        error = ""
        try:
            price = Decimal(raw_price.strip())
            currency = normalize_currency(currency or settings.VAFA_DEFAULT_CURRENCY)
        except (InvalidOperation, VafaError, ValueError):
            price, error = Decimal(0), str(_("The price is not a number."))
        try:
            estimate = campaign_sms_estimate(
                campaign, now=timezone.now(), price_per_segment=price, currency=currency or settings.VAFA_DEFAULT_CURRENCY
            )
        except VafaError as exc:
            estimate, error = None, exc.message
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": _("SMS cost of %(campaign)s") % {"campaign": campaign},
            "campaign": campaign,
            "estimate": estimate,
            "price": raw_price,
            "currency": currency,
            "error": error,
        }
        return TemplateResponse(request, "admin/campaigns/sms_cost.html", context)

    # -- actions, each through a service -------------------------------------------------------

    def _apply(
        self,
        request: HttpRequest,
        queryset: QuerySet[Campaign],
        action: Callable[..., Campaign],
        done_message: Any,
    ) -> None:
        done = 0
        for campaign in queryset:
            try:
                action(campaign=campaign, now=timezone.now(), actor=str(request.user)[:150])
                done += 1
            except VafaError as exc:
                self.message_user(request, f"{campaign}: {exc.message}", messages.ERROR)
        if done:
            self.message_user(request, done_message % {"count": done}, messages.SUCCESS)

    @admin.action(description=_("Schedule the selected drafts (at their send time, or now)"))
    def schedule(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._apply(request, queryset, services.campaign_schedule,
                    _("%(count)d campaign(s) scheduled."))

    @admin.action(description=_("Pause sending"))
    def pause(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._apply(request, queryset, services.campaign_pause, _("%(count)d campaign(s) paused."))

    @admin.action(description=_("Resume sending"))
    def resume(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._apply(request, queryset, services.campaign_resume,
                    _("%(count)d campaign(s) resumed."))

    @admin.action(description=_("Cancel (messages not sent yet are dropped)"))
    def cancel(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._apply(request, queryset, services.campaign_cancel,
                    _("%(count)d campaign(s) cancelled."))
