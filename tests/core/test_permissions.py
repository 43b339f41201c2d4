"""The team roles' admin permissions, granted after migrations: a marketer manages campaigns in
the admin, support moderates reviews, an analyst only looks."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from vafa.core.permissions import sync_role_permissions

pytestmark = pytest.mark.django_db


def member(role: str) -> Client:
    user = User.objects.create_user(f"{role}-1", password="a-long-password-1", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture(autouse=True)
def synced() -> None:
    sync_role_permissions()  # what post_migrate did when the test database was created


@pytest.mark.parametrize(
    ("role", "url", "status"),
    [
        ("marketer", "/admin/campaigns/campaign/add/", 200),
        ("marketer", "/admin/flows/flow/", 200),
        ("marketer", "/admin/customers/customer/", 200),
        ("marketer", "/admin/core/apikey/", 403),
        ("support", "/admin/campaigns/campaign/add/", 403),
        ("support", "/admin/customers/ticket/", 200),
        ("analyst", "/admin/customers/customer/", 200),
        ("analyst", "/admin/campaigns/campaign/add/", 403),
        ("owner", "/admin/core/apikey/add/", 200),
    ],
)
def test_each_role_opens_what_it_manages_in_the_admin(role: str, url: str, status: int) -> None:
    assert member(role).get(url, HTTP_ACCEPT_LANGUAGE="en").status_code == status


def test_syncing_again_changes_nothing_and_restores_a_removed_permission() -> None:
    analyst = Group.objects.get(name="analyst")
    before = set(analyst.permissions.values_list("codename", flat=True))
    assert before and all(code.startswith("view_") for code in before)
    analyst.permissions.clear()
    sync_role_permissions()
    assert set(analyst.permissions.values_list("codename", flat=True)) == before
