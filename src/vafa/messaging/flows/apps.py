from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FlowsConfig(AppConfig):
    name = "vafa.messaging.flows"
    label = "flows"
    verbose_name = _("Lifecycle flows")
    default_auto_field = "django.db.models.BigAutoField"
