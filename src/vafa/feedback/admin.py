"""Admin: surveys are edited here; invitations and responses are read-only records; follow-up
tasks are the team's work list (assign, add notes, move the status)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from vafa.feedback.models import (
    CustomerPreference,
    FollowUpTask,
    Review,
    Survey,
    SurveyInvitation,
    SurveyResponse,
)
from vafa.feedback.reviews import review_moderate, review_reply


@admin.register(Survey)
class SurveyAdmin(admin.ModelAdmin):
    list_display = ("slug", "kind", "active", "created_at")
    list_filter = ("kind", "active")


@admin.register(SurveyInvitation)
class SurveyInvitationAdmin(admin.ModelAdmin):
    list_display = ("customer", "survey", "trigger", "channel", "created_at", "used_at",
                    "reward_granted_at")
    list_filter = ("survey", "trigger", "channel")
    raw_id_fields = ("customer",)
    readonly_fields = ("token", "used_at", "reward_granted_at")
    search_fields = ("customer__external_id", "customer__email", "reference")


@admin.register(SurveyResponse)
class SurveyResponseAdmin(admin.ModelAdmin):
    list_display = ("customer", "survey", "score", "channel", "answered_at", "completed_at")
    list_filter = ("survey", "channel")
    raw_id_fields = ("customer", "invitation")
    readonly_fields = ("text_normalized",)
    search_fields = ("customer__external_id", "text")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(FollowUpTask)
class FollowUpTaskAdmin(admin.ModelAdmin):
    list_display = ("customer", "kind", "status", "assignee", "due_at", "created_at")
    list_filter = ("status", "kind")
    list_editable = ("status",)
    raw_id_fields = ("customer", "response")
    search_fields = ("customer__external_id", "notes")


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    """Moderation goes through the service, so that publishing grants the review bonus."""

    list_display = ("product", "customer", "stars", "status", "created_at", "replied_at")
    list_filter = ("status", "stars")
    raw_id_fields = ("customer", "product", "order")
    readonly_fields = ("status", "published_at", "reward_granted_at", "replied_at",
                       "photo_preview")
    exclude = ("photo",)  # uploaded by the customer only, checked by `review_photo_set`
    search_fields = ("product__name", "customer__external_id", "text")
    actions = ("publish", "reject")

    @admin.display(description=_("photo"))
    def photo_preview(self, review: Review) -> str:
        """The customer's photo, so a moderator judges it with the text."""
        if not review.photo:
            return "—"
        url = reverse("feedback:review_photo", args=[review.pk])
        return format_html('<a href="{0}"><img src="{0}" alt="" style="max-width:20rem;'
                           'max-height:20rem"></a>', url)

    def save_model(self, request: HttpRequest, obj: Review, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if "reply" in form.changed_data and obj.reply.strip():
            review_reply(review=obj, text=obj.reply)

    @admin.action(description=_("Publish selected reviews"))
    def publish(self, request: HttpRequest, queryset: QuerySet[Review]) -> None:
        for review in queryset:
            review_moderate(review=review, publish=True)

    @admin.action(description=_("Reject selected reviews"))
    def reject(self, request: HttpRequest, queryset: QuerySet[Review]) -> None:
        for review in queryset:
            review_moderate(review=review, publish=False)


@admin.register(CustomerPreference)
class CustomerPreferenceAdmin(admin.ModelAdmin):
    """Read-only here: preferences come from the customer's answers (or a service call), so
    the source of every change is recorded."""

    list_display = ("customer", "reward_type", "channel", "updated_at", "source")
    list_filter = ("reward_type", "channel")
    raw_id_fields = ("customer",)
    search_fields = ("customer__external_id", "customer__email")
    readonly_fields = ("customer", "interests", "reward_type", "channel", "source", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
