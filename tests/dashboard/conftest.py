"""Shared personas and data for the dashboard tests: a staff member, and a shop with a run."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User

from tests.support.shop import load_shop
from vafa.insights.models import AnalysisRun
from vafa.insights.services import insights_refresh

STAFF_PASSWORD = "a-long-test-password-17"


@pytest.fixture
def staff(db: None) -> User:
    """A shop team member allowed into the dashboard (staff, not superuser)."""
    return User.objects.create_user(
        "shirin", password=STAFF_PASSWORD, is_staff=True, first_name="Shirin"
    )


@pytest.fixture
def analysed_shop(db: None, tmp_path: Path) -> AnalysisRun:
    """A small synthetic shop with one finished analysis run (about three seconds)."""
    load_shop(tmp_path / "shop", customers=150, seed=11)
    return insights_refresh(triggered_by="test")
