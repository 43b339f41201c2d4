"""Shared personas and data for the dashboard tests: the shop's team, one account per role, a
staff account with no role, and a shop with a finished analysis run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User

from tests.support.shop import load_shop
from vafa.core.roles import ANALYST, MARKETER, OWNER, SUPPORT
from vafa.insights.models import AnalysisRun
from vafa.insights.services import insights_refresh

STAFF_PASSWORD = "a-long-test-password-17"

MakeMember = Callable[..., User]


@pytest.fixture
def make_member(db: None) -> MakeMember:
    """A factory: `make_member("support")` is a staff account holding that role (none with no
    argument: on the team's list but given no role yet)."""

    def make(*roles: str, username: str | None = None) -> User:
        name = username or ("-".join(roles) or "norole")
        user = User.objects.create_user(
            name, password=STAFF_PASSWORD, is_staff=True, first_name=name.title()
        )
        # get_or_create: a flushing (transactional) test wipes the groups the migration made.
        user.groups.set([Group.objects.get_or_create(name=role)[0] for role in roles])
        return user

    return make


@pytest.fixture
def staff(make_member: MakeMember) -> User:
    """The shop's owner (staff, not superuser): allowed on every dashboard page."""
    return make_member(OWNER, username="shirin")


@pytest.fixture
def marketer(make_member: MakeMember) -> User:
    return make_member(MARKETER)


@pytest.fixture
def support_agent(make_member: MakeMember) -> User:
    return make_member(SUPPORT)


@pytest.fixture
def analyst(make_member: MakeMember) -> User:
    return make_member(ANALYST)


@pytest.fixture
def analysed_shop(db: None, tmp_path: Path) -> AnalysisRun:
    """A small synthetic shop with one finished analysis run (about three seconds)."""
    load_shop(tmp_path / "shop", customers=150, seed=11)
    return insights_refresh(triggered_by="test")
