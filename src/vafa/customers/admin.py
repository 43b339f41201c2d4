"""Admin for the shop's data: search and filters for support staff and analysts."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from vafa.customers.models import (
    Category,
    Consent,
    Customer,
    Event,
    Order,
    OrderLine,
    Product,
    Ticket,
)


class ConsentInline(admin.TabularInline):
    model = Consent
    extra = 0
    fields = ("channel", "granted", "changed_at", "source")
    readonly_fields = ("changed_at", "source")


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("external_id", "full_name", "email", "phone", "city", "acquisition_source",
                    "signup_at")
    list_filter = ("gender", "country", "language", "acquisition_source", "city",
                   ("signup_at", admin.DateFieldListFilter))
    search_fields = ("external_id", "email", "phone", "first_name", "last_name")
    date_hierarchy = "signup_at"
    inlines = [ConsentInline]
    readonly_fields = ("created_at", "updated_at")
    list_per_page = 50
    show_full_result_count = False  # COUNT(*) on every page is slow on big shops
    fieldsets = (
        (None, {"fields": ("external_id", ("first_name", "last_name"), "gender", "birth_date")}),
        (_("Contact"), {"fields": ("email", "phone", "language", "timezone")}),
        (_("Location"), {"fields": ("city", "country")}),
        (_("Acquisition"), {"fields": ("signup_at", "acquisition_source")}),
        (_("Other"), {"fields": ("attributes", "created_at", "updated_at")}),
    )

    @admin.display(description=_("name"))
    def full_name(self, obj: Customer) -> str:
        return obj.full_name


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "parent")
    search_fields = ("name",)


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("external_id", "name", "category", "price", "currency")
    list_filter = ("category", "currency")
    search_fields = ("external_id", "name")
    list_select_related = ("category",)


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    fields = ("line_no", "product", "quantity", "unit_price")
    raw_id_fields = ("product",)


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("external_id", "customer", "placed_at", "status", "total", "discount",
                    "currency", "channel")
    list_filter = ("status", "currency", "channel", ("placed_at", admin.DateFieldListFilter))
    search_fields = ("external_id", "customer__external_id", "customer__email",
                     "customer__phone")
    date_hierarchy = "placed_at"
    raw_id_fields = ("customer",)
    list_select_related = ("customer",)
    inlines = [OrderLineInline]
    show_full_result_count = False


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("type", "customer", "occurred_at", "received_at")
    list_filter = ("type", ("occurred_at", admin.DateFieldListFilter))
    search_fields = ("type", "customer__external_id", "idempotency_key")
    date_hierarchy = "occurred_at"
    raw_id_fields = ("customer",)
    list_select_related = ("customer",)
    show_full_result_count = False


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ("external_id", "customer", "channel", "opened_at", "first_response_at",
                    "resolved_at", "satisfaction")
    list_filter = ("channel", "satisfaction", ("opened_at", admin.DateFieldListFilter))
    search_fields = ("external_id", "subject", "customer__external_id", "customer__email")
    raw_id_fields = ("customer",)
    list_select_related = ("customer",)


@admin.register(Consent)
class ConsentAdmin(admin.ModelAdmin):
    list_display = ("customer", "channel", "granted", "changed_at", "source")
    list_filter = ("channel", "granted", "source")
    search_fields = ("customer__external_id", "customer__email", "customer__phone")
    raw_id_fields = ("customer",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Consent]:
        return super().get_queryset(request).select_related("customer")
