"""Shared fixtures.

Database tests run on SQLite by default and, with `VAFA_TEST_DB=postgres`, against a real
PostgreSQL that this file starts on loopback in a temporary directory (`make test` runs both).
Tests that need a real service skip when it is absent, unless `VAFA_REQUIRE_SERVICES=1` (set by
`.ci/run`), under which a missing service fails the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import ServiceUnavailable, postgres_server, redis_server

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CDNOW = SHARED / "data" / "cdnow"
DB_FIXTURES = {"db", "transactional_db", "django_db_setup", "client", "admin_client",
               "django_user_model", "live_server"}


def services_required() -> bool:
    return os.environ.get("VAFA_REQUIRE_SERVICES") == "1"


def require_service(name: str, reason: str) -> None:
    """Skip (locally) or fail (in CI) when a real service a test needs is missing."""
    if services_required():
        pytest.fail(f"{name} is required (VAFA_REQUIRE_SERVICES=1) but missing: {reason}")
    pytest.skip(f"{name} missing: {reason}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that touches the database with `db`, so the PostgreSQL pass can select
    exactly those (`-m db`)."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & DB_FIXTURES or item.get_closest_marker("django_db"):
            item.add_marker(pytest.mark.db)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> Iterator[None]:
    """Point Django at a temporary PostgreSQL when `VAFA_TEST_DB=postgres`."""
    if os.environ.get("VAFA_TEST_DB", "sqlite") != "postgres":
        yield
        return
    from django.conf import settings

    try:
        server_cm = postgres_server()
        server = server_cm.__enter__()
    except ServiceUnavailable as exc:
        require_service("PostgreSQL", str(exc))
        return
    db: dict[str, Any] = settings.DATABASES["default"]
    # Mutate in place: Django's connection handler holds a reference to this very dict.
    db.update(ENGINE=settings.VAFA_POSTGRES_ENGINE, NAME=server.dbname, USER=server.user,
              PASSWORD="", HOST=server.host, PORT=str(server.port), CONN_MAX_AGE=0)
    db["OPTIONS"].clear()
    db["OPTIONS"].update(settings.VAFA_POSTGRES_OPTIONS)  # as production connections get them
    from django.db import connections

    # A wrapper for the old engine may already exist; drop it so the next use builds a new one.
    connections["default"].close()
    del connections["default"]
    try:
        yield
    finally:
        connections.close_all()
        server_cm.__exit__(None, None, None)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    try:
        with redis_server() as url:
            yield url
    except ServiceUnavailable as exc:
        require_service("Redis", str(exc))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (skips locally, fails in CI when it is missing)."""
    from tests.support.browser import required_chromium

    with required_chromium() as launched:
        yield launched


@pytest.fixture(scope="session")
def cdnow_dir() -> Path:
    if not CDNOW.is_dir():
        require_service("shared CDNOW data", f"{CDNOW} not found")
    return CDNOW
