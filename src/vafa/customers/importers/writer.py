"""The bulk writer: the one module that writes shop data with raw SQL, for speed.

Importing a million orders through the ORM (`update_or_create` per row) takes hours; this module
writes a chunk of clean records with a few statements instead. For each chunk it first reads
which keys already exist (one indexed query), then:

- **SQLite**: new rows go in with `executemany` of a plain `INSERT` (SQLite's `ON CONFLICT DO
  UPDATE` path costs about twice as much per row even when nothing conflicts); existing rows
  with `executemany` of `INSERT … ON CONFLICT (key) DO UPDATE SET … WHERE <a column differs>`,
  whose `WHERE` makes an identical row a no-op, so `rowcount` counts the rows really changed.
  The transaction holds SQLite's write lock from its start (Django's SQLite settings begin
  IMMEDIATE), so no row can appear between the check and the insert.
- **PostgreSQL**: new rows are `COPY`'d straight into the table (as fast as a raw bulk load),
  under a savepoint: if another transaction inserted one of those keys meanwhile, the COPY is
  rolled back and the rows join the existing ones. Existing rows are `COPY`'d into a temporary
  staging table (created once per session, `ON COMMIT DELETE ROWS`, truncated per chunk), then
  upserted with one `INSERT … SELECT … ON CONFLICT DO UPDATE … WHERE (…) IS DISTINCT FROM (…)
  RETURNING (xmax = 0)` whose result counts created and updated rows.

Everything here runs inside the caller's transaction and follows the models' rules by hand:
Python-side defaults (`created_at`, `discount = 0`…) are filled from `Table.defaults`, values are
stored the way Django stores them (SQLite: naive UTC text for datetimes, text for decimals; JSON
as text), so the ORM reads these rows back exactly as if it had written them. Business rules are
not here: records arrive already validated (`vafa.customers.validation`) and with their foreign
keys resolved (`vafa.customers.importers.pipeline`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper

from vafa.core.errors import VafaError
from vafa.customers.models import (
    Category,
    Consent,
    Customer,
    Event,
    Order,
    OrderLine,
    Product,
    Ticket,
)
from vafa.customers.validation import JsonText

Adapter = Callable[[Any], Any]

BULK_CACHE_KIB = 131_072  # SQLite page cache during an import: 128 MiB


@dataclass(frozen=True)
class Table:
    """How one model is upserted.

    `key` are the columns of its unique constraint (the `ON CONFLICT` target); `columns` every
    other column the writer fills; `defaults` the value of a column a record does not carry, on
    insert (on update an absent column is left alone). `compare` are the columns whose change
    makes a row "updated" (default: every column the records carry); `merge_json` JSON columns
    merged key by key instead of replaced. `created` is set on insert only, `updated` on insert
    and on every real change.
    """

    model: type[models.Model]
    key: tuple[str, ...]
    columns: tuple[str, ...]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    compare: tuple[str, ...] | None = None
    merge_json: frozenset[str] = frozenset()
    created: str | None = "created_at"
    updated: str | None = "updated_at"

    @property
    def name(self) -> str:
        return self.model._meta.db_table

    @property
    def insert_columns(self) -> tuple[str, ...]:
        stamps = tuple(c for c in (self.created, self.updated) if c)
        return self.key + self.columns + stamps


CUSTOMERS = Table(
    Customer,
    key=("external_id",),
    columns=(
        "email", "phone", "first_name", "last_name", "gender", "birth_date", "city", "country",
        "language", "timezone", "signup_at", "acquisition_source", "attributes",
    ),
    defaults={
        "email": "", "phone": "", "first_name": "", "last_name": "", "gender": "",
        "birth_date": None, "city": "", "country": "", "language": "", "timezone": "",
        "signup_at": None, "acquisition_source": "", "attributes": {},
    },
    merge_json=frozenset({"attributes"}),
)
CONSENTS = Table(
    Consent,
    key=("customer_id", "channel"),
    columns=("granted", "source"),
    compare=("granted",),
    created=None,
    updated="changed_at",
)
CATEGORIES = Table(
    Category, key=("name",), columns=("parent_id",), defaults={"parent_id": None},
    created=None, updated=None,
)
PRODUCTS = Table(
    Product,
    key=("external_id",),
    columns=("name", "category_id", "price", "currency"),
    defaults={"category_id": None, "price": None, "currency": ""},
)
ORDERS = Table(
    Order,
    key=("external_id",),
    columns=(
        "customer_id", "placed_at", "status", "total", "discount", "shipping",
        "refunded_amount", "currency", "channel",
    ),
    defaults={
        "discount": Decimal(0), "shipping": Decimal(0), "refunded_amount": Decimal(0),
        "channel": "",
    },
)
ORDER_LINES = Table(
    OrderLine,
    key=("order_id", "line_no"),
    columns=("product_id", "quantity", "unit_price"),
    created=None,
    updated=None,
)
EVENTS = Table(
    Event,
    key=("idempotency_key",),
    columns=("customer_id", "type", "occurred_at", "properties"),
    defaults={"properties": {}},
    created="received_at",
    updated=None,
)
TICKETS = Table(
    Ticket,
    key=("external_id",),
    columns=(
        "customer_id", "opened_at", "first_response_at", "resolved_at", "channel", "subject",
        "satisfaction",
    ),
    defaults={
        "first_response_at": None, "resolved_at": None, "channel": "", "subject": "",
        "satisfaction": None,
    },
    created=None,
    updated=None,
)


@dataclass
class Counts:
    """What one upsert did: rows created, rows changed, rows already identical, and rows dropped
    because a later row in the same chunk had the same key (the last one wins)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, JsonText):
        return value
    return _JSON.encode(value)


def _sqlite_datetime(value: datetime | None) -> str | None:
    # Django stores an aware datetime on SQLite as naive UTC text (str(), with a space).
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ")


def _sqlite_date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _sqlite_decimal(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _sqlite_bool(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _identity(value: Any) -> Any:
    return value


_SQLITE_ADAPTERS: dict[str, Adapter] = {
    "DateTimeField": _sqlite_datetime,
    "DateField": _sqlite_date,
    "DecimalField": _sqlite_decimal,
    "BooleanField": _sqlite_bool,
    "JSONField": _json_text,
}
_POSTGRES_ADAPTERS: dict[str, Adapter] = {"JSONField": _json_text}


def _key_getter(table: Table) -> Callable[[Mapping[str, Any]], Any]:
    """A record's key: the value for a one-column key, else a tuple."""
    return itemgetter(*table.key)


def _has_null(key: Any, table: Table) -> bool:
    return key is None if len(table.key) == 1 else None in key


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class BulkWriter:
    """Upserts and looks up rows of the shop's tables on the current database connection."""

    chunk_size = 5_000
    # Whether writing on a background thread while the next chunk is parsed pays off: yes when
    # the database works in another process (PostgreSQL: the driver waits without the GIL); no
    # for SQLite, which runs in this process and takes the GIL back for every row it binds, so
    # the two threads mostly queue for the GIL.
    overlaps_parsing = False
    _adapters: dict[str, Adapter] = {}

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.connection = connection

    def _column_adapter(self, table: Table, column: str) -> Adapter:
        model_field = next(f for f in table.model._meta.concrete_fields if f.column == column)
        return self._adapters.get(model_field.get_internal_type(), _identity)

    def rows(
        self, table: Table, records: Iterable[Mapping[str, Any]], now: datetime
    ) -> list[tuple[Any, ...]]:
        """Records as tuples in `table.insert_columns` order, adapted for this database."""
        stamps = tuple(
            self._column_adapter(table, c)(now) for c in (table.created, table.updated) if c
        )
        plan = [
            (column, self._column_adapter(table, column), table.defaults.get(column))
            for column in table.key + table.columns
        ]
        # Hot loop (a million rows). Records from a file usually carry every column: take
        # them with one C-level itemgetter, then adapt only the columns that need it.
        records = list(records)
        columns = [column for column, _, _ in plan]
        if records and all(column in records[0] for column in columns):
            take = itemgetter(*columns)
            adapt = [(i, a) for i, (_, a, _) in enumerate(plan) if a is not _identity]
            out = []
            for record in records:
                try:
                    values = list(take(record))
                except KeyError:  # a record without some column: defaults, the slow way
                    out.append(self._row_slow(plan, record, stamps))
                    continue
                for i, adapter in adapt:
                    values[i] = adapter(values[i])
                out.append((*values, *stamps))
            return out
        return [self._row_slow(plan, record, stamps) for record in records]

    @staticmethod
    def _row_slow(
        plan: list[tuple[str, Adapter, Any]], record: Mapping[str, Any], stamps: tuple[Any, ...]
    ) -> tuple[Any, ...]:
        values = [record.get(column, default) for column, _, default in plan]
        adapted = [v if a is _identity else a(v) for v, (_, a, _) in zip(values, plan, strict=True)]
        return (*adapted, *stamps)

    @staticmethod
    def _dedupe(
        table: Table, records: Sequence[Mapping[str, Any]]
    ) -> tuple[list[Mapping[str, Any]], int]:
        """Keep the last record per key (records with a NULL key never conflict: all kept)."""
        key_of = _key_getter(table)
        by_key: dict[Any, Mapping[str, Any]] = {}
        keyless: list[Mapping[str, Any]] = []
        for record in records:
            key = key_of(record)
            if _has_null(key, table):
                keyless.append(record)
            else:
                by_key.pop(key, None)  # re-insert so the survivor keeps the later position
                by_key[key] = record
        unique = [*by_key.values(), *keyless]
        return unique, len(records) - len(unique)

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """Tune the connection for a large import while the block runs."""
        yield

    def lookup(
        self, model: type[models.Model], keys: Collection[str], *, column: str = "external_id"
    ) -> dict[str, int]:
        raise NotImplementedError

    def upsert(
        self,
        table: Table,
        records: Sequence[Mapping[str, Any]],
        *,
        present: Collection[str],
        now: datetime,
    ) -> Counts:
        """Insert new records and update existing ones (by `table.key`) in the columns listed in
        `present`; with no `present` column, existing rows are left alone (insert if missing)."""
        raise NotImplementedError

    def _keys_sql(self, table: Table) -> str:
        """SQL selecting the key columns of the rows whose first key column is in %s."""
        raise NotImplementedError

    def _key_values(self, values: list[Any]) -> Any:
        return values

    def _existing(self, table: Table, records: Sequence[Mapping[str, Any]]) -> set[Any]:
        """Keys (scalars for a one-column key, else tuples) of the records' rows that exist."""
        first = table.key[0]
        values = list({r[first] for r in records if r[first] is not None})
        if not values:
            return set()
        with self.connection.cursor() as cursor:
            cursor.execute(self._keys_sql(table), [self._key_values(values)])
            found = cursor.fetchall()
        return {row[0] for row in found} if len(table.key) == 1 else set(map(tuple, found))

    def _split(
        self, table: Table, unique: Sequence[Mapping[str, Any]]
    ) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
        """Records whose row does not exist yet (or whose key is NULL), and the others."""
        existing = self._existing(table, unique)
        key_of = _key_getter(table)
        fresh: list[Mapping[str, Any]] = []
        known: list[Mapping[str, Any]] = []
        for record in unique:
            key = key_of(record)
            (fresh if _has_null(key, table) or key not in existing else known).append(record)
        return fresh, known

    def delete_lines_beyond(self, last_line_by_order: Mapping[int, int]) -> int:
        """Remove the lines of each order numbered above the order's new last line (a platform
        sent the order's complete set of lines and it has shrunk)."""
        if not last_line_by_order:
            return 0
        sql = (
            f"DELETE FROM {_quote(ORDER_LINES.name)} WHERE {_quote('order_id')} = %s "
            f"AND {_quote('line_no')} > %s"
        )
        with self.connection.cursor() as cursor:
            cursor.executemany(sql, list(last_line_by_order.items()))
            return max(cursor.rowcount, 0)

    def _update_parts(
        self, table: Table, present: Collection[str], excluded: str
    ) -> tuple[list[str], list[tuple[str, str]]]:
        """`SET` assignments and `(old, new)` expression pairs whose difference means a change."""
        t = _quote(table.name)
        assignments: list[str] = []
        pairs: list[tuple[str, str]] = []
        update_columns = [c for c in table.columns if c in present]
        compare = table.compare if table.compare is not None else update_columns
        for column in update_columns:
            q = _quote(column)
            new = f"{excluded}.{q}"
            if column in table.merge_json:
                new = self._json_merge(f"{t}.{q}", new)
            assignments.append(f"{q} = {new}")
            if column in compare:
                old = f"{t}.{q}"
                if column in table.merge_json and self.connection.vendor == "sqlite":
                    old = f"json({old})"
                pairs.append((old, new))
        if assignments and table.updated:
            assignments.append(f"{_quote(table.updated)} = {excluded}.{_quote(table.updated)}")
        return assignments, pairs

    def _json_merge(self, old: str, new: str) -> str:
        raise NotImplementedError


class SqliteWriter(BulkWriter):
    """`executemany` of an upsert on the raw sqlite3 connection (Django's own, same transaction)."""

    _adapters = _SQLITE_ADAPTERS

    def _raw(self) -> Any:
        self.connection.ensure_connection()
        return self.connection.connection.cursor()

    def _json_merge(self, old: str, new: str) -> str:
        return f"json_patch({old}, {new})"

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """A bigger page cache while importing. SQLite's default (2 MB) is far smaller than the
        indexes of a big table, and random inserts into them then hit the OS for every page;
        `BULK_CACHE_KIB` keeps the hot index pages in memory (it counts toward peak memory)."""
        cursor = self._raw()
        try:
            previous = cursor.execute("PRAGMA cache_size").fetchone()[0]
            cursor.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
            yield
        finally:
            cursor.execute(f"PRAGMA cache_size = {int(previous)}")
            cursor.close()

    def lookup(
        self, model: type[models.Model], keys: Collection[str], *, column: str = "external_id"
    ) -> dict[str, int]:
        if not keys:
            return {}
        sql = (
            f"SELECT {_quote(column)}, id FROM {_quote(model._meta.db_table)} "
            f"WHERE {_quote(column)} IN (SELECT value FROM json_each(?))"
        )
        cursor = self._raw()
        try:
            return dict(cursor.execute(sql, (json.dumps(list(keys)),)).fetchall())
        finally:
            cursor.close()

    def _keys_sql(self, table: Table) -> str:
        first = table.key[0]
        columns = ", ".join(_quote(c) for c in table.key)
        return (
            f"SELECT {columns} FROM {_quote(table.name)} "
            f"WHERE {_quote(first)} IN (SELECT value FROM json_each(%s))"
        )

    def _key_values(self, values: list[Any]) -> Any:
        return json.dumps(values)

    def upsert(
        self,
        table: Table,
        records: Sequence[Mapping[str, Any]],
        *,
        present: Collection[str],
        now: datetime,
    ) -> Counts:
        if not records:
            return Counts()
        unique, duplicates = self._dedupe(table, records)
        fresh, known = self._split(table, unique)
        columns = table.insert_columns
        insert = (
            f"INSERT INTO {_quote(table.name)} ({', '.join(map(_quote, columns))}) "
            f"VALUES ({', '.join('?' for _ in columns)})"
        )
        assignments, pairs = self._update_parts(table, present, "excluded")
        updated = 0
        cursor = self._raw()
        try:
            # New rows take a plain INSERT: SQLite's DO UPDATE path costs about twice as much per
            # row even without a conflict. Safe: the transaction holds the write lock (Django's
            # SQLite settings begin IMMEDIATE), so no row can appear between check and insert.
            if fresh:
                cursor.executemany(insert, self.rows(table, fresh, now))
            if known and assignments:
                upsert = (
                    f"{insert} ON CONFLICT ({', '.join(map(_quote, table.key))}) "
                    f"DO UPDATE SET {', '.join(assignments)}"
                )
                if pairs:
                    upsert += " WHERE " + " OR ".join(f"{old} IS NOT {new}" for old, new in pairs)
                cursor.executemany(upsert, self.rows(table, known, now))
                updated = max(cursor.rowcount, 0)
        finally:
            cursor.close()
        return Counts(len(fresh), updated, len(known) - updated, duplicates)


class PostgresWriter(BulkWriter):
    """`COPY` into a temporary staging table, then one `INSERT … SELECT … ON CONFLICT`."""

    chunk_size = 20_000
    overlaps_parsing = True
    _adapters = _POSTGRES_ADAPTERS

    def _json_merge(self, old: str, new: str) -> str:
        return f"COALESCE({old}, '{{}}'::jsonb) || {new}"

    def lookup(
        self, model: type[models.Model], keys: Collection[str], *, column: str = "external_id"
    ) -> dict[str, int]:
        if not keys:
            return {}
        sql = (
            f"SELECT {_quote(column)}, id FROM {_quote(model._meta.db_table)} "
            f"WHERE {_quote(column)} = ANY(%s)"
        )
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [list(keys)])
            return dict(cursor.fetchall())

    def _keys_sql(self, table: Table) -> str:
        columns = ", ".join(_quote(c) for c in table.key)
        return (
            f"SELECT {columns} FROM {_quote(table.name)} WHERE {_quote(table.key[0])} = ANY(%s)"
        )

    def _stage(self, cursor: Any, table: Table) -> str:
        stage = _quote(f"vafa_stage_{table.name}")
        columns = ", ".join(map(_quote, table.insert_columns))
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "
            f"SELECT {columns} FROM {_quote(table.name)} WITH NO DATA"
        )
        cursor.execute(f"TRUNCATE {stage}")
        return stage

    def _copy(
        self, cursor: Any, target: str, table: Table, rows: Iterable[Any], now: datetime
    ) -> None:
        columns = ", ".join(map(_quote, table.insert_columns))
        with cursor.cursor.copy(f"COPY {target} ({columns}) FROM STDIN") as copy:
            for row in self.rows(table, rows, now):
                copy.write_row(row)

    def _copy_fresh(self, cursor: Any, table: Table, fresh: list[Mapping[str, Any]],
                    now: datetime) -> bool:
        """COPY rows known to be new straight into the table, as fast as a raw bulk load.
        False (and nothing written) if another transaction inserted one of the keys since we
        looked; the caller then upserts them through the staging table instead."""
        import psycopg

        cursor.execute("SAVEPOINT vafa_bulk_copy")
        try:
            self._copy(cursor, _quote(table.name), table, fresh, now)
        except psycopg.errors.UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT vafa_bulk_copy")
            return False
        cursor.execute("RELEASE SAVEPOINT vafa_bulk_copy")
        return True

    def upsert(
        self,
        table: Table,
        records: Sequence[Mapping[str, Any]],
        *,
        present: Collection[str],
        now: datetime,
    ) -> Counts:
        if not records:
            return Counts()
        unique, duplicates = self._dedupe(table, records)
        fresh, known = self._split(table, unique)
        assignments, pairs = self._update_parts(table, present, "EXCLUDED")
        created = updated = 0
        with self.connection.cursor() as cursor:
            raced = bool(fresh) and not self._copy_fresh(cursor, table, fresh, now)
            if raced:
                known = fresh + known
            else:
                created = len(fresh)
            if known and (assignments or raced):
                stage = self._stage(cursor, table)
                self._copy(cursor, stage, table, known, now)
                columns = ", ".join(map(_quote, table.insert_columns))
                sql = (
                    f"WITH up AS (INSERT INTO {_quote(table.name)} ({columns}) "
                    f"SELECT {columns} FROM {stage} "
                    f"ON CONFLICT ({', '.join(map(_quote, table.key))}) "
                )
                if assignments:
                    sql += f"DO UPDATE SET {', '.join(assignments)}"
                    if pairs:
                        old = ", ".join(o for o, _ in pairs)
                        new = ", ".join(n for _, n in pairs)
                        sql += f" WHERE ROW({old}) IS DISTINCT FROM ROW({new})"
                else:
                    sql += "DO NOTHING"
                sql += (
                    " RETURNING (xmax = 0) AS inserted) SELECT count(*) FILTER (WHERE inserted), "
                    "count(*) FILTER (WHERE NOT inserted) FROM up"
                )
                cursor.execute(sql)
                staged_created, updated = cursor.fetchone()
                created += staged_created
        return Counts(created, updated, len(unique) - created - updated, duplicates)


def writer_for(connection: BaseDatabaseWrapper | None = None) -> BulkWriter:
    """The writer for the connection's database (SQLite or PostgreSQL).

    The default is this thread's connection *object* (not Django's `connection` proxy, which
    would resolve to another connection in the background writer thread).
    """
    connection = connection or connections[DEFAULT_DB_ALIAS]
    if connection.vendor == "sqlite":
        return SqliteWriter(connection)
    if connection.vendor == "postgresql":
        return PostgresWriter(connection)
    raise VafaError(f"imports support SQLite and PostgreSQL, not {connection.vendor}")
