"""Admin for the loyalty club: the merchant edits settings, earning rules and tiers here; members
and their ledger are read-only (points move only through `vafa.loyalty.services`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from vafa.core.admin import ReadOnlyMixin
from vafa.core.text import localize_number
from vafa.loyalty.errors import SimulationUnsupported
from vafa.loyalty.models import (
    Badge,
    Challenge,
    ChallengeCompletion,
    EarningRule,
    LeaderboardEntry,
    LedgerEntry,
    Lot,
    Member,
    MemberBadge,
    ProgramSettings,
    Redemption,
    Referral,
    ReferralCode,
    Reward,
    Tier,
    TierChange,
    WebhookDelivery,
    WebhookEndpoint,
)
from vafa.loyalty.selectors import rule_simulate

SIMULATION_WINDOW = timedelta(days=91)  # "last quarter": the 3 months to now


@admin.register(ProgramSettings)
class ProgramSettingsAdmin(admin.ModelAdmin):
    fieldsets = (
        (_("Points"), {"fields": ("currency", "point_value", "return_window_days")}),
        (
            _("Expiry"),
            {"fields": ("expiry_policy", "expiry_months", "expiry_calendar", "expiry_years_after")},
        ),
        (
            _("Caps"),
            {"fields": ("max_points_per_order", "max_points_per_period", "cap_period_days")},
        ),
        (_("Tiers"), {"fields": ("tier_metric", "tier_window_days", "tier_grace_days")}),
        (_("First reward"), {"fields": ("first_reward_points", "endowed_points")}),
        (_("VIP and referrals"), {"fields": (
            "retention_spend_fraction", "vip_earn_multiplier", "vip_free_shipping",
            "vip_early_access", "referral_cap",
        )}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not ProgramSettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: ProgramSettings, form: Any, change: bool
    ) -> None:
        obj.pk = 1  # the single row
        super().save_model(request, obj, form, change)


@admin.register(EarningRule)
class EarningRuleAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "kind",
        "active",
        "points",
        "per_amount",
        "currency",
        "multiplier",
        "starts_at",
        "ends_at",
    )
    list_filter = ("kind", "active")
    search_fields = ("name",)
    autocomplete_fields = ("category", "product")
    fieldsets = (
        (None, {"fields": ("name", "kind", "active", "starts_at", "ends_at")}),
        (
            _("Amounts"),
            {"fields": ("points", "per_amount", "currency", "multiplier", "category", "product")},
        ),
        (_("Caps"), {"fields": ("cap_per_order", "cap_per_period", "cap_period_days")}),
    )
    actions = ("simulate",)

    @admin.action(description=_("Simulate on the last 3 months of orders"))
    def simulate(self, request: HttpRequest, queryset: QuerySet[EarningRule]) -> None:
        """What each selected rule, switched on, would have cost over the last 3 months (switched
        off or on, nothing is written): "this rule would have cost N points, X Toman"."""
        end = timezone.now()
        start = end - SIMULATION_WINDOW
        language = get_language() or "en"
        for rule in queryset.order_by("pk"):
            try:
                result = rule_simulate(rule=rule, start=start, end=end)
            except SimulationUnsupported:
                self.message_user(request, _(
                    "“%(rule)s”: %(kind)s rules cannot be simulated: their events have no "
                    "history yet."
                ) % {"rule": rule.name, "kind": rule.get_kind_display()}, messages.WARNING)
                continue
            self.message_user(request, _(
                "“%(rule)s” would have cost %(points)s points (%(cost)s %(currency)s) over the "
                "last 3 months: %(members)s members, %(orders)s orders."
            ) % {
                "rule": rule.name,
                "points": localize_number(f"{result.points:,}", language),
                "cost": localize_number(f"{result.cost:,}", language),
                "currency": result.currency,
                "members": localize_number(f"{result.members:,}", language),
                "orders": localize_number(f"{result.orders:,}", language),
            })


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    list_display = (
        "rank",
        "name",
        "min_points",
        "min_spend",
        "earn_multiplier",
        "free_shipping",
        "early_access",
        "exclusive_rewards",
    )
    list_display_links = ("name",)
    ordering = ("rank",)


class LedgerEntryInline(ReadOnlyMixin, admin.TabularInline):
    model = LedgerEntry
    fields = ("created_at", "kind", "points", "balance_after", "order", "reason", "actor")
    readonly_fields = fields
    ordering = ("-id",)
    extra = 0
    show_change_link = False


class LotInline(ReadOnlyMixin, admin.TabularInline):
    model = Lot
    fields = ("points", "remaining", "available_at", "expires_at", "order")
    readonly_fields = fields
    extra = 0


class TierChangeInline(ReadOnlyMixin, admin.TabularInline):
    model = TierChange
    fields = ("changed_at", "from_tier", "to_tier", "metric_value")
    readonly_fields = fields
    extra = 0


@admin.register(Member)
class MemberAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("customer", "balance", "debt", "tier", "tier_since", "joined_at")
    list_filter = ("tier",)
    search_fields = ("customer__external_id", "customer__email", "customer__phone")
    list_select_related = ("customer", "tier")
    readonly_fields = (
        "customer",
        "balance",
        "debt",
        "tier",
        "tier_since",
        "tier_below_since",
        "joined_at",
    )
    inlines = [LedgerEntryInline, LotInline, TierChangeInline]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "member",
        "kind",
        "points",
        "balance_after",
        "order",
        "actor",
        "reason",
    )
    list_filter = ("kind",)
    search_fields = (
        "member__customer__external_id",
        "order__external_id",
        "idempotency_key",
        "reason",
    )
    list_select_related = ("member__customer", "order")
    date_hierarchy = "created_at"


@admin.register(Reward)
class RewardAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "kind",
        "points_cost",
        "active",
        "stock",
        "per_member_limit",
        "min_tier",
        "exclusive",
    )
    list_filter = ("kind", "active", "exclusive", "min_tier")
    search_fields = ("name",)
    autocomplete_fields = ("product",)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "name",
                    "description",
                    "kind",
                    "points_cost",
                    "active",
                    "starts_at",
                    "ends_at",
                )
            },
        ),
        (
            _("What it gives"),
            {"fields": ("discount_amount", "discount_percent", "currency", "product")},
        ),
        (_("Limits"), {"fields": ("stock", "per_member_limit", "min_tier", "exclusive")}),
        (_("Coupon"), {"fields": ("coupon_prefix", "coupon_valid_days")}),
    )


@admin.register(Redemption)
class RedemptionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("code", "reward", "member", "status", "created_at", "cancelled_at")
    list_filter = ("status", "reward")
    search_fields = ("code", "member__customer__external_id")
    list_select_related = ("reward", "member__customer")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("url", "active", "events", "created_at")
    list_filter = ("active",)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """The delivery log: every event sent (or still being retried) and the last answer."""

    list_display = (
        "id", "event", "endpoint", "status", "attempts", "last_status_code", "created_at",
        "next_attempt_at", "delivered_at",
    )
    list_filter = ("status", "event", "endpoint")
    list_select_related = ("endpoint",)
    readonly_fields = (
        "endpoint", "event", "payload", "status", "attempts", "created_at", "next_attempt_at",
        "last_status_code", "last_error", "delivered_at",
    )


@admin.register(Referral)
class ReferralAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("referrer", "referee", "code", "status", "created_at", "settled_at")
    list_filter = ("status",)
    search_fields = ("code", "referrer__customer__external_id", "referee__customer__external_id")
    list_select_related = ("referrer__customer", "referee__customer")


@admin.register(ReferralCode)
class ReferralCodeAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("code", "member", "created_at")
    search_fields = ("code", "member__customer__external_id")
    list_select_related = ("member__customer",)


@admin.register(Badge)
class BadgeAdmin(admin.ModelAdmin):
    list_display = ("name", "rule", "threshold", "active")
    list_filter = ("rule", "active")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(MemberBadge)
class MemberBadgeAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("member", "badge", "awarded_at")
    list_filter = ("badge",)
    list_select_related = ("member__customer", "badge")


@admin.register(Challenge)
class ChallengeAdmin(admin.ModelAdmin):
    list_display = ("name", "metric", "target", "reward_points", "starts_at", "ends_at", "active")
    list_filter = ("metric", "active")


@admin.register(ChallengeCompletion)
class ChallengeCompletionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("challenge", "member", "completed_at")
    list_filter = ("challenge",)
    list_select_related = ("member__customer", "challenge")


@admin.register(LeaderboardEntry)
class LeaderboardEntryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("pseudonym", "member", "opted_in_at")
    search_fields = ("pseudonym",)
    list_select_related = ("member__customer",)
