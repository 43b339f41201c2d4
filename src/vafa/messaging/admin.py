"""Admin for messaging: the merchant edits the sending policy and the templates (checked in the
sandbox before they are saved, and previewed against a real customer); the outbox, its log,
consent history and suppressions are read here and changed only through the services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone, translation
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from vafa.core.admin import ReadOnlyMixin
from vafa.core.errors import ValidationError
from vafa.customers.models import Channel, Customer
from vafa.messaging import services
from vafa.messaging.channels.probe import send_test_message
from vafa.messaging.channels.sms import segments_for_display
from vafa.messaging.compose import template_check
from vafa.messaging.conf import ChannelStatus
from vafa.messaging.errors import TemplateError
from vafa.messaging.models import (
    PROVIDER_CHOICES,
    ChannelSettings,
    ConsentChange,
    DeliveryLog,
    MessageTemplate,
    MessagingSettings,
    OutboxMessage,
    Preference,
    PushSubscription,
    Suppression,
    TelegramLink,
)
from vafa.messaging.selectors import channel_statuses, messaging_config, messaging_settings


@admin.register(MessagingSettings)
class MessagingSettingsAdmin(admin.ModelAdmin):
    fieldsets = (
        (None, {"fields": ("shop_name",)}),
        (_("Quiet hours"), {"fields": ("quiet_start", "quiet_end", "quiet_action")}),
        (_("Frequency cap"), {"fields": ("cap_messages", "cap_days", "cap_action")}),
        (_("Weekend"), {"fields": ("weekend_days", "no_marketing_on_weekend")}),
        (_("Measurement"), {"fields": ("control_percent", "track_links")}),
        (_("Retries"), {"fields": ("max_attempts", "retry_base_seconds", "retry_max_seconds")}),
        (_("Links"), {"fields": ("site_url",)}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not MessagingSettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: MessagingSettings, form: Any, change: bool) -> None:
        obj.pk = 1
        super().save_model(request, obj, form, change)


# The fields each channel uses; the others are hidden on its page.
CHANNEL_FIELDS: dict[str, tuple[str, ...]] = {
    Channel.EMAIL: ("from_name", "from_address", "reply_to"),
    Channel.SMS: ("sender",),
    Channel.TELEGRAM: ("bot_username",),
    Channel.PUSH: (),
}


class ChannelSettingsForm(forms.ModelForm):
    class Meta:
        model = ChannelSettings
        fields = ("enabled", "provider", "from_name", "from_address", "reply_to", "sender",
                  "bot_username", "rate_per_second")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        channel = self.instance.channel if self.instance else ""
        if "provider" in self.fields and channel in PROVIDER_CHOICES:
            choices = [("", _("From the environment")), *PROVIDER_CHOICES[channel]]
            self.fields["provider"] = forms.ChoiceField(
                label=_("provider"), choices=choices, required=False,
                help_text=self.fields["provider"].help_text,
            )


class SendTestForm(forms.Form):
    address = forms.CharField(
        label=_("Send to"), max_length=320,
        help_text=_("An email address, a phone number, a Telegram chat ID, or for web push a "
                    "customer ID."),
    )


@admin.register(ChannelSettings)
class ChannelSettingsAdmin(admin.ModelAdmin):
    """One row per channel: switch, provider and sender identities; the environment's secrets
    are shown as present or missing (never their values), and a test message can be sent."""

    form = ChannelSettingsForm
    list_display = ("channel", "enabled", "provider_in_use", "environment", "test_link")
    list_display_links = ("channel",)
    readonly_fields = ("channel", "environment")
    actions = ["send_test"]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        own = CHANNEL_FIELDS.get(obj.channel, ()) if obj else ()
        return (
            (None, {"fields": ("channel", "enabled", "provider", *own, "rate_per_second")}),
            (_("Secrets in the environment"), {"fields": ("environment",)}),
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # one row per channel, created by the migration

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @staticmethod
    def _status(obj: ChannelSettings) -> ChannelStatus | None:
        # Read fresh each time (a few tiny queries for four rows): the admin instance is shared
        # between requests, so nothing request-specific is cached on it.
        return channel_statuses().get(obj.channel)

    @admin.display(description=_("provider in use"))
    def provider_in_use(self, obj: ChannelSettings) -> str:
        status = self._status(obj)
        return status.provider if status and status.provider else "-"

    @admin.display(description=_("environment"))
    def environment(self, obj: ChannelSettings) -> str:
        """Which secrets are set and which are missing: names only, never values."""
        status = self._status(obj)
        if status is None:
            return "-"
        present = ", ".join(status.present) or "-"
        if not status.missing:
            return format_html('<span class="vafa-ready">✓ {}</span> <small>({})</small>',
                               _("ready"), present)
        return format_html(
            '<span class="vafa-missing">✗ {} {}</span><br><small>{} {}</small>',
            _("missing:"), ", ".join(status.missing), _("set:"), present,
        )

    @admin.display(description=_("test"))
    def test_link(self, obj: ChannelSettings) -> str:
        url = reverse("admin:messaging_channelsettings_test", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Send a test message"))

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<int:pk>/test/",
                self.admin_site.admin_view(self.test_view),
                name="messaging_channelsettings_test",
            )
        ]
        return own + super().get_urls()

    @admin.action(description=_("Send a test message"))
    def send_test(self, request: HttpRequest, queryset: QuerySet[ChannelSettings]) -> Any:
        if queryset.count() != 1:
            self.message_user(request, _("Select one channel to test."), messages.WARNING)
            return None
        row = queryset.get()
        return HttpResponseRedirect(reverse("admin:messaging_channelsettings_test", args=[row.pk]))

    def test_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Ask for an address, send the test through the channel's real provider, show what
        the provider answered."""
        row = get_object_or_404(ChannelSettings, pk=pk)
        if not self.has_change_permission(request, row):
            raise PermissionDenied
        form = SendTestForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                result = send_test_message(
                    channel=row.channel, address=form.cleaned_data["address"],
                    config=messaging_config(), now=timezone.now(),
                    language=translation.get_language() or "en",
                    shop_name=messaging_settings().shop_name,
                )
            except ValidationError as exc:
                form.add_error("address", exc.message)
            else:
                if result.ok:
                    self.message_user(
                        request,
                        _("The provider %(provider)s accepted the test message (%(id)s).")
                        % {"provider": result.provider, "id": result.provider_message_id or "-"},
                        messages.SUCCESS,
                    )
                else:
                    self.message_user(
                        request,
                        _("The test message was not sent: %(reason)s")
                        % {"reason": result.reason},
                        messages.ERROR,
                    )
                return HttpResponseRedirect(request.path)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": _("Send a test message by %(channel)s") % {"channel": row},
            "row": row,
            "form": form,
            "status": self._status(row),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/messaging/send_test.html", context)


class MessageTemplateForm(forms.ModelForm):
    class Meta:
        model = MessageTemplate
        fields = ("key", "channel", "language", "subject", "body_html", "body_text")

    def clean(self) -> dict[str, Any]:
        """Render the template for a sample customer so a broken one is never saved."""
        data = super().clean() or {}
        candidate = MessageTemplate(**{f: data.get(f) or "" for f in self.Meta.fields})
        try:
            template_check(candidate)
        except TemplateError as exc:
            field = exc.field if exc.field in self.fields else None
            self.add_error(field, exc.message)
        return data


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    form = MessageTemplateForm
    list_display = ("key", "channel", "language", "subject", "updated_at", "preview_link")
    list_filter = ("channel", "language")
    search_fields = ("key", "subject")

    @admin.display(description=_("preview"))
    def preview_link(self, obj: MessageTemplate) -> str:
        url = reverse("admin:messaging_messagetemplate_preview", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Preview"))

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<int:pk>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="messaging_messagetemplate_preview",
            )
        ]
        return own + super().get_urls()

    def preview_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Render the template for a real customer (`?customer=<customer ID>`, default the
        newest) exactly as it would be sent, or show the error."""
        template = get_object_or_404(MessageTemplate, pk=pk)
        wanted = request.GET.get("customer", "").strip()
        customers = Customer.objects.all()
        customer = (
            customers.filter(external_id=wanted).first() if wanted else customers.first()
        )
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": _("Preview of %(template)s") % {"template": template},
            "template_obj": template,
            "customer": customer,
            "wanted": wanted,
        }
        if customer is not None:
            try:
                rendered = services.template_preview(
                    template=template, customer=customer, now=timezone.now()
                )
            except TemplateError as exc:
                context["error"] = exc.message
            else:
                context["rendered"] = rendered
                context["segments"] = segments_for_display(rendered.text)
        return TemplateResponse(request, "admin/messaging/preview.html", context)


class DeliveryLogInline(ReadOnlyMixin, admin.TabularInline):
    model = DeliveryLog
    fields = ("at", "event", "reason", "provider_message_id")
    readonly_fields = fields
    extra = 0


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "id", "customer", "channel", "kind", "source", "step", "status", "status_reason",
        "due_at", "sent_at", "attempts",
    )
    list_filter = ("status", "channel", "kind", "source")
    search_fields = ("dedupe_key", "customer__external_id", "provider_message_id", "to_address")
    date_hierarchy = "created_at"
    inlines = [DeliveryLogInline]
    actions = ["resend"]
    list_select_related = ("customer",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description=_("Send the selected failed messages again"))
    def resend(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]) -> None:
        done = skipped = 0
        for message in queryset:
            try:
                services.message_resend(message=message, now=timezone.now())
                done += 1
            except ValidationError:
                skipped += 1
        self.message_user(
            request,
            _("%(done)d message(s) queued again, %(skipped)d skipped (sent or held out).")
            % {"done": done, "skipped": skipped},
            messages.SUCCESS if done else messages.WARNING,
        )


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ("channel", "address", "customer", "reason", "source", "created_at", "lifted_at")
    list_filter = ("channel", "reason", ("lifted_at", admin.EmptyFieldListFilter))
    search_fields = ("address", "customer__external_id")
    fields = ("channel", "address", "customer", "reason", "source")
    raw_id_fields = ("customer",)
    actions = ["lift"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Suppression, form: Any, change: bool) -> None:
        created = services.suppression_add(
            channel=obj.channel, reason=obj.reason, customer=obj.customer, address=obj.address,
            source=obj.source or f"admin:{request.user.pk}", now=timezone.now(),
        )
        obj.pk = created.pk

    @admin.action(description=_("Lift the selected suppressions"))
    def lift(self, request: HttpRequest, queryset: QuerySet[Suppression]) -> None:
        for suppression in queryset:
            services.suppression_lift(suppression=suppression, now=timezone.now())


@admin.register(ConsentChange)
class ConsentChangeAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("customer", "channel", "granted", "source", "changed_at")
    list_filter = ("channel", "granted")
    search_fields = ("customer__external_id", "source")


@admin.register(Preference)
class PreferenceAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("customer", "frequency", "topics_off", "paused_until", "updated_at")


@admin.register(TelegramLink)
class TelegramLinkAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("customer", "chat_id", "linked_at")
    exclude = ("token",)


@admin.register(PushSubscription)
class PushSubscriptionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("customer", "endpoint", "created_at")
