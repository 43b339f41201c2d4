"""The PostgreSQL backend's health check (`vafa.core.postgresql`): a healthy persistent
connection is reused without a round trip, one the server closed is replaced."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection

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

    params = connection.get_connection_params()
    with psycopg.connect(**{**params, "autocommit": True}) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [first])
    time.sleep(0.2)  # the server's goodbye reaches the socket
    _new_request()

    assert checks == [False] and connection.connection is None
    assert _backend_pid() != first  # a fresh connection answers
