"""Personas for the segments pages: the dashboard's team, one account per role."""

from tests.dashboard.conftest import (
    STAFF_PASSWORD,
    analyst,
    make_member,
    marketer,
    staff,
    support_agent,
)

__all__ = ["STAFF_PASSWORD", "analyst", "make_member", "marketer", "staff", "support_agent"]
