"""Create the four team roles as Django groups (see `vafa.core.roles`)."""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

ROLES = ("owner", "marketer", "support", "analyst")


def create_role_groups(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    group = apps.get_model("auth", "Group")
    for name in ROLES:
        group.objects.get_or_create(name=name)


def delete_role_groups(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    # Only empty groups go: a shop's assignments are not thrown away by a rollback.
    group = apps.get_model("auth", "Group")
    group.objects.filter(name__in=ROLES, user__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("core", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_role_groups, delete_role_groups)]
