"""The merchant dashboard: the pages a shop's team reads every day."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DashboardConfig(AppConfig):
    name = "vafa.dashboard"
    label = "dashboard"
    verbose_name = _("Dashboard")

    def ready(self) -> None:
        # A malformed VAFA_PORTAL_FRAME_ANCESTORS stops the server (and every command) at
        # start-up with its reason, instead of failing each portal page later.
        from vafa.dashboard.portal.framing import frame_ancestors

        frame_ancestors()
