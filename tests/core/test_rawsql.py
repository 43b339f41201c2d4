"""`vafa.core.rawsql.cursor`: the connection's kept cursor for hand-written statements."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.support.services import terminate_backend
from vafa.core import rawsql

pytestmark = [pytest.mark.django_db(transaction=True)]


def _one(value: int) -> int:
    with rawsql.cursor(connection) as cursor:
        cursor.execute("SELECT %s + 1", [value])
        return int(cursor.fetchone()[0])


def _kept() -> object:
    with rawsql.cursor(connection) as cursor:
        return cursor


def test_statements_share_one_cursor_until_the_connection_is_replaced() -> None:
    assert _one(1) == 2
    first = _kept()
    assert _one(2) == 3 and _kept() is first  # the `with` left it open

    raw = connection.connection
    connection.close()

    assert _one(3) == 4
    # A new connection gets a new cursor (SQLite's in-memory test database ignores close()).
    assert (_kept() is first) == (connection.connection is raw)


def test_while_queries_are_logged_each_statement_gets_a_logged_cursor() -> None:
    kept = _kept()
    with CaptureQueriesContext(connection) as captured:
        assert _one(4) == 5 and _one(5) == 6
        assert _kept() is not kept
    assert [q["sql"] for q in captured.captured_queries][:2] == ["SELECT 4 + 1", "SELECT 5 + 1"]
    assert _kept() is kept  # and the kept one serves again afterwards


@pytest.mark.postgres
def test_a_connection_the_server_closed_is_replaced_before_the_kept_cursor_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The health check still runs before the first statement of a request: a kept cursor on a
    dead connection is never handed out."""
    if connection.vendor != "postgresql":
        pytest.skip("the server closing a connection: runs in the PostgreSQL pass")
    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", True)
    connection.close()
    with rawsql.cursor(connection) as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        first_pid = cursor.fetchone()[0]
    kept = _kept()
    terminate_backend(connection, first_pid)
    connection.health_check_done = False  # a new request

    with rawsql.cursor(connection) as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != first_pid
    assert _kept() is not kept
