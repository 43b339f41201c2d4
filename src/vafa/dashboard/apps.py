"""The merchant dashboard: the pages a shop's team reads every day."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DashboardConfig(AppConfig):
    name = "vafa.dashboard"
    label = "dashboard"
    verbose_name = _("Dashboard")
