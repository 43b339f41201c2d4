"""Admin permissions of the team roles, kept in step with the models after every migration.

The roles are Django groups (`vafa.core.roles`); what each may do in the admin is given here as
app labels and models, and `sync_role_permissions` (a `post_migrate` receiver) grants exactly
that, so a new model gets its permissions without a data migration:

- owner: everything;
- marketer: campaigns, flows, message templates, saved segments and goals (add, change,
  delete); reads the rest of the shop's data;
- support: answers follow-up tasks and moderates reviews; reads customers, orders, tickets,
  points, surveys and messages;
- analyst: reads everything, changes nothing.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

from vafa.core.roles import ANALYST, MARKETER, OWNER, SUPPORT

OUR_APPS = ("core", "customers", "loyalty", "messaging", "flows", "campaigns", "insights",
            "feedback", "dashboard")
READ_APPS = tuple(app for app in OUR_APPS if app != "core")
MARKETER_MANAGES = Q(content_type__app_label__in=("campaigns", "flows")) | Q(
    content_type__app_label="messaging", content_type__model="messagetemplate"
) | Q(content_type__app_label="insights", content_type__model__in=("segment", "goal"))
SUPPORT_MANAGES = Q(content_type__app_label="feedback",
                    content_type__model__in=("followuptask", "review"),
                    codename__startswith="change_")


def _reads(apps: tuple[str, ...]) -> Q:
    return Q(content_type__app_label__in=apps, codename__startswith="view_")


def role_permissions() -> dict[str, Q]:
    """Each role's permissions, as a filter on `Permission`."""
    return {
        OWNER: Q(content_type__app_label__in=(*OUR_APPS, "auth")),
        MARKETER: _reads(READ_APPS) | MARKETER_MANAGES,
        SUPPORT: _reads(READ_APPS) | SUPPORT_MANAGES,
        ANALYST: _reads(READ_APPS),
    }


def sync_role_permissions(**kwargs: Any) -> None:
    """Give each role group exactly its permissions (groups that do not exist are created)."""
    using = kwargs.get("using", "default")
    for role, condition in role_permissions().items():
        group, _ = Group.objects.using(using).get_or_create(name=role)
        wanted = set(Permission.objects.using(using).filter(condition).values_list("pk", flat=True))
        current = set(group.permissions.values_list("pk", flat=True))
        if wanted != current:
            group.permissions.set(wanted)
