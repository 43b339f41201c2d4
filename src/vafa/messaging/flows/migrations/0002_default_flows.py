"""Install the default flows and their fa/ar/en email and SMS templates (idempotent: rows the
merchant already has, by key, are left alone)."""

from typing import Any

from django.db import migrations
from django.utils import timezone


def install(apps: Any, schema_editor: Any) -> None:
    from vafa.messaging.flows.defaults import flows_install_defaults

    flows_install_defaults(now=timezone.now(), apps=apps)


class Migration(migrations.Migration):
    dependencies = [
        ("flows", "0001_initial"),
        ("messaging", "0001_initial"),
    ]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
