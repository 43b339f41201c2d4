"""What the member portal stores: a member's request to export or delete their data.

The model belongs to the `dashboard` app (the portal is part of it); `vafa.dashboard.models`
imports it so Django and migrations see it.
"""

from __future__ import annotations

from django.db import models
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from vafa.customers.models import Customer


class DataRequestKind(models.TextChoices):
    EXPORT = "export", _("Export my data")
    DELETE = "delete", _("Delete my data")


class DataRequestStatus(models.TextChoices):
    OPEN = "open", _("Open")
    DONE = "done", _("Done")
    REFUSED = "refused", _("Refused")


class DataRequest(models.Model):
    """A member asked, through the portal, for a copy of their data or for its deletion.

    Deletion is never automatic: a shop may have to keep orders for tax law, so staff review
    each open request and record what they did. Exports are served at once and recorded here
    as done, so staff can see who downloaded what and when.
    """

    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="data_requests",
        verbose_name=_("customer"),
    )
    kind = models.CharField(_("kind"), max_length=10, choices=DataRequestKind.choices)
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=DataRequestStatus.choices,
        default=DataRequestStatus.OPEN,
    )
    note = models.CharField(_("note from the member"), max_length=1000, blank=True)
    created_at = models.DateTimeField(_("requested at"), default=now)
    handled_at = models.DateTimeField(_("handled at"), null=True, blank=True)
    handled_by = models.CharField(_("handled by"), max_length=150, blank=True)

    class Meta:
        app_label = "dashboard"
        verbose_name = _("data request")
        verbose_name_plural = _("data requests")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="portal_datareq_status")]
        constraints = [
            # One open deletion request per member: asking again does not pile up work.
            models.UniqueConstraint(
                fields=["customer"],
                condition=models.Q(kind="delete", status="open"),
                name="portal_one_open_delete_request",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.customer_id} @ {self.created_at:%Y-%m-%d}"


class MemberSession(models.Model):
    """A member's portal-session generation. Every member session cookie carries the version
    it was issued under and is honoured only while it matches this row ("sign out everywhere"
    adds one, so every browser and the shop's embed must sign in again). A member without a
    row is at version 0, which is what older cookies without a version mean."""

    customer = models.OneToOneField(
        Customer,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="portal_session",
        verbose_name=_("customer"),
    )
    version = models.PositiveIntegerField(_("session version"), default=0)
    signed_out_everywhere_at = models.DateTimeField(
        _("signed out everywhere at"), null=True, blank=True
    )

    class Meta:
        app_label = "dashboard"
        verbose_name = _("member session")
        verbose_name_plural = _("member sessions")

    def __str__(self) -> str:
        return f"{self.customer_id} v{self.version}"
