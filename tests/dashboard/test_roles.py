"""Team roles: who may read and who may write, through `vafa.core.roles` and real requests."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, Group, User
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory

from tests.dashboard.conftest import MakeMember
from vafa.core.roles import (
    ANALYST,
    MARKETER,
    OWNER,
    ROLES,
    SUPPORT,
    has_role,
    role_required,
    user_roles,
)

pytestmark = pytest.mark.db


@role_required(SUPPORT)
def _support_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


@role_required(SUPPORT, write=True)
def _support_form(request: HttpRequest) -> HttpResponse:
    return HttpResponse("saved" if request.method == "POST" else "form")


def _call(view: object, user: object, method: str = "get") -> int | str:
    request = getattr(RequestFactory(), method)("/x/")
    request.user = user
    try:
        return view(request).status_code  # type: ignore[operator]
    except Exception as exc:  # PermissionDenied becomes a 403 in the real stack
        return type(exc).__name__


def test_the_migration_creates_the_four_role_groups(db: None) -> None:
    assert set(Group.objects.filter(name__in=ROLES).values_list("name", flat=True)) == set(ROLES)
    executor = MigrationExecutor(connection)
    assert ("core", "0002_role_groups") in executor.loader.applied_migrations


def test_a_superuser_counts_as_the_owner(db: None) -> None:
    boss = User.objects.create_superuser("boss", password="a-long-password-9")
    assert user_roles(boss) == {OWNER}


def test_anonymous_inactive_and_customer_accounts_hold_no_role(make_member: MakeMember) -> None:
    assert user_roles(AnonymousUser()) == frozenset()
    gone = make_member(SUPPORT, username="gone")
    gone.is_active = False
    assert user_roles(gone) == frozenset()
    customer = User.objects.create_user("reza", password="a-long-password-9")
    customer.groups.add(Group.objects.get(name=SUPPORT))
    assert user_roles(customer) == frozenset()


def test_roles_are_read_once_per_user_object(
    make_member: MakeMember, django_assert_num_queries: object
) -> None:
    user = User.objects.get(pk=make_member(MARKETER, SUPPORT).pk)
    with django_assert_num_queries(1):  # type: ignore[operator]
        assert user_roles(user) == {MARKETER, SUPPORT}
        assert has_role(user, SUPPORT)
        assert not has_role(user, OWNER, write=True)


def test_the_owner_may_do_everything_and_the_analyst_only_read(make_member: MakeMember) -> None:
    owner, analyst = make_member(OWNER), make_member(ANALYST)
    assert has_role(owner, SUPPORT, write=True)
    assert has_role(analyst, SUPPORT)
    assert not has_role(analyst, SUPPORT, write=True)
    assert not has_role(make_member(MARKETER), SUPPORT)


@pytest.mark.parametrize(
    ("role", "get", "post"),
    [
        (OWNER, 200, 200),
        (SUPPORT, 200, 200),
        (ANALYST, 200, "PermissionDenied"),
        (MARKETER, "PermissionDenied", "PermissionDenied"),
        (None, "PermissionDenied", "PermissionDenied"),
    ],
)
def test_a_write_view_lets_its_role_write_and_the_analyst_only_look(
    make_member: MakeMember, role: str | None, get: int | str, post: int | str
) -> None:
    user = make_member(*([role] if role else []))
    assert _call(_support_form, user) == get
    assert _call(_support_form, user, "post") == post


def test_a_read_view_refuses_every_write_to_the_analyst(make_member: MakeMember) -> None:
    analyst = make_member(ANALYST)
    assert _call(_support_page, analyst) == 200
    assert _call(_support_page, analyst, "post") == "PermissionDenied"
    assert _call(_support_page, make_member(SUPPORT), "post") == 200


def test_visitors_outside_the_team_are_sent_to_the_login(db: None) -> None:
    response = _call(_support_page, AnonymousUser())
    assert response == 302


def test_an_unknown_role_name_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown role"):
        role_required("admin")


@pytest.mark.parametrize(("role", "status"), [
    (OWNER, 200), (MARKETER, 200), (SUPPORT, 200), (ANALYST, 200), (None, 403),
])
def test_the_whole_team_reads_the_overview_and_a_member_without_a_role_does_not(
    client: Client, make_member: MakeMember, role: str | None, status: int
) -> None:
    client.force_login(make_member(*([role] if role else [])))
    assert client.get("/dashboard/").status_code == status
    assert client.post("/dashboard/").status_code in (403, 405)


@pytest.mark.parametrize(("role", "status"), [(ANALYST, 404), (SUPPORT, 404), (None, 403)])
def test_the_team_reads_the_analysis_report_and_a_member_without_a_role_does_not(
    client: Client, make_member: MakeMember, role: str | None, status: int
) -> None:
    client.force_login(make_member(*([role] if role else [])))
    # No run yet: the team gets the "no analysis yet" answer, an outsider nothing.
    assert client.get("/insights/report/").status_code == status
    assert client.get("/insights/summary.json").status_code == status


def test_the_menu_shows_only_the_pages_a_role_may_open(
    client: Client, make_member: MakeMember
) -> None:
    for role, shown in ((SUPPORT, False), (MARKETER, True), (ANALYST, True)):
        client.force_login(make_member(role))
        page = client.get("/dashboard/customers/").content.decode()
        assert ('href="/dashboard/segments/"' in page) is shown, role
        assert ('href="/dashboard/goals/"' in page) is shown, role
        assert 'href="/dashboard/customers/"' in page
