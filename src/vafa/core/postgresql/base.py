"""Django's PostgreSQL backend, with a health check that costs no round trip.

With `CONN_HEALTH_CHECKS` (on in `vafa.settings`), Django checks a persistent connection before
the first query of every request by sending `SELECT 1`: a full round trip to the server on every
API call, about a twentieth of a loyalty earn's cost. This backend looks at the connection's
socket instead. An idle connection the server still holds has nothing to read; one the server
closed or is closing (a restart, `pg_terminate_backend`, an idle timeout) has its goodbye or its
end of file waiting. Only then, or when the connection is in an unexpected state, does it run
Django's own check (`SELECT 1`), and the connection is replaced when that fails, as before.

What it cannot see is a server that vanished without a word (a network cut): there `SELECT 1`
would only have failed after the TCP timeout too, and the request fails as it would have.

It also reads `timestamptz` values with psycopg's compiled loader. Django registers a Python
subclass of psycopg's pure-Python loader, only to set the result's zone to UTC; with the
session's time zone UTC (Django sets it so with `USE_TZ`) the compiled loader already returns
`datetime.timezone.utc` values, at a fraction of the cost (each loyalty write reads a dozen).
"""

from __future__ import annotations

import datetime
import random
import select
from typing import Any

import psycopg
from django.conf import settings
from django.db.backends.postgresql import base
from psycopg import pq
from psycopg.adapt import Loader

_TIMESTAMPTZ = psycopg.adapters.types["timestamptz"].oid
# psycopg's default `timestamptz` text loader: the compiled one where psycopg-binary is installed.
_Compiled: type[Loader] = psycopg.adapters.get_loader(_TIMESTAMPTZ, pq.Format.TEXT)  # type: ignore[assignment]


class UTCTimestamptzLoader(Loader):
    """psycopg's own loader (which cannot be subclassed), labelled with the zone Django expects:
    Django compares `timezone` before each cursor and would otherwise put its own back."""

    timezone = datetime.UTC

    def __init__(self, oid: int, context: Any = None) -> None:
        super().__init__(oid, context)
        self.load = _Compiled(oid, context).load  # type: ignore[method-assign]

    def load(self, data: Any) -> Any:  # replaced per instance by the compiled loader's
        raise NotImplementedError


class DatabaseWrapper(base.DatabaseWrapper):
    health_check_enabled: bool
    health_check_done: bool

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        if settings.USE_TZ and self.timezone is datetime.UTC:
            connection.adapters.register_loader(_TIMESTAMPTZ, UTCTimestamptzLoader)
        return connection

    def connect(self) -> None:
        """Django's connect, with the connection's end of life (`CONN_MAX_AGE`) spread over a
        quarter of the age again. Workers start together and open their connections together;
        with the same age they would all replace them in the same second, and a new server
        process's first statements (its catalogue caches, the statements prepared again) cost
        enough that the requests of that second queue up behind them."""
        super().connect()
        max_age = self.settings_dict["CONN_MAX_AGE"]
        if self.close_at is not None and max_age:
            self.close_at += random.uniform(0, max_age / 4)

    def close_if_health_check_failed(self) -> None:
        if self.connection is None or not self.health_check_enabled or self.health_check_done:
            return
        if not self._looks_alive():
            self.close()
        self.health_check_done = True

    def _looks_alive(self) -> bool:
        """True when the idle connection has nothing waiting to be read, else Django's check."""
        connection = self.connection
        try:
            idle = (
                not connection.closed
                and connection.pgconn.status == pq.ConnStatus.OK
                and connection.info.transaction_status == pq.TransactionStatus.IDLE
            )
            waiting = idle and bool(select.select([connection.fileno()], [], [], 0)[0])
        except (OSError, ValueError):
            return False
        if idle and not waiting:
            return True
        return bool(self.is_usable())
