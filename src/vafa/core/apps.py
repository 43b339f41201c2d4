from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "vafa.core"
    label = "core"
    verbose_name = _("Core")

    def ready(self) -> None:
        """Keep the team roles' admin permissions in step with the models after migrations."""
        from vafa.core.permissions import sync_role_permissions

        post_migrate.connect(sync_role_permissions, dispatch_uid="vafa.core.role_permissions")
