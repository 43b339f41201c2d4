"""The PostgreSQL backend's health check (`vafa.core.postgresql`): a healthy persistent
connection is reused without a round trip, one the server closed is replaced."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import psycopg
import pytest
from django.db import connection

from tests.support.services import terminate_backend

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def _new_request() -> None:
    """What Django does for the first query of each request on a persistent connection."""
    connection.health_check_done = False
    connection.close_if_health_check_failed()


def test_a_healthy_connection_costs_no_query_and_a_closed_one_is_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the PostgreSQL backend: runs in the PostgreSQL pass")
    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", True)
    connection.close()
    first = _backend_pid()  # connects, with health checks on
    checks: list[bool] = []
    is_usable = connection.is_usable

    def counted() -> bool:
        checks.append(usable := is_usable())
        return usable

    monkeypatch.setattr(connection, "is_usable", counted)

    _new_request()
    assert checks == [] and connection.connection is not None and _backend_pid() == first

    terminate_backend(connection, first)
    _new_request()

    assert checks == [False] and connection.connection is None
    assert _backend_pid() != first  # a fresh connection answers


def test_timestamps_come_back_aware_in_utc_through_the_compiled_loader() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the PostgreSQL backend: runs in the PostgreSQL pass")
    from vafa.core.postgresql.base import UTCTimestamptzLoader

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT %s::timestamptz, '2026-03-20 23:30:00.123456+03:30'::timestamptz, "
            "NULL::timestamptz",
            [datetime(2026, 11, 24, 8, 0, tzinfo=UTC)],
        )
        written, tehran, missing = cursor.fetchone()
        oid = connection.connection.adapters.types["timestamptz"].oid
        loader = connection.connection.adapters.get_loader(oid, psycopg.pq.Format.TEXT)

    assert loader is UTCTimestamptzLoader
    assert written == datetime(2026, 11, 24, 8, 0, tzinfo=UTC) and written.tzinfo is UTC
    assert tehran == datetime(2026, 3, 20, 20, 0, 0, 123456, tzinfo=UTC) and tehran.tzinfo is UTC
    assert missing is None


def test_connections_end_their_lives_spread_over_a_quarter_of_the_age(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Threads that connect together do not all reconnect in the same second."""
    if connection.vendor != "postgresql":
        pytest.skip("the PostgreSQL backend: runs in the PostgreSQL pass")
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 600)
    lives = []
    for _ in range(20):
        connection.close()
        started = time.monotonic()
        connection.connect()
        lives.append(connection.close_at - started)
    connection.close()
    assert all(600 <= life <= 750 + 1 for life in lives)
    assert max(lives) - min(lives) > 20  # spread, not one moment (fails with p < 1e-20)
