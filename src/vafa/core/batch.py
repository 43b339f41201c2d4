"""Write batches: the inserts and updates of one business write, sent as one statement.

The hot API writes (a loyalty earn or redemption and its idempotency record) book a handful of
rows whose ids are reserved beforehand (`nextval`), so nothing they insert or update needs an
answer from the database. A batch holds those writes and sends them together, as data-modifying
`WITH` clauses of one statement, when it closes. PostgreSQL only: elsewhere (SQLite, embedded
mode) no batch is opened and every write goes out at once, as without one.

A batch runs in one of two modes:

- **Locked** (inside the caller's transaction, after it took its row locks): any other
  statement on the connection meanwhile first sends the held writes (an execute wrapper), so
  every read still sees every earlier write of the transaction.
- **Optimistic** (`optimistic=True`, in autocommit, no transaction and no lock): the write reads
  what it needs in one statement (`reading()`), including the *version* of the row that guards
  everything it touches (for the loyalty ledger, the member row), computes, and then sends one
  statement whose first clause bumps that version only if it is still the one read
  (`UPDATE … WHERE id = %s AND version = %s RETURNING id`), while every other insert and update
  of the statement takes its rows from that clause (`INSERT … SELECT … FROM g`,
  `UPDATE … FROM g`): either all of it is written, atomically, or, when anybody changed the
  guarded row since the read, none of it. Three round trips for an API write (API key, read,
  write) instead of seven, with no `BEGIN`/`COMMIT`. Anything the optimistic mode does not
  handle raises `NeedsLock`, and the caller runs the write again on the locked path:
  a statement other than the batch's own read and write (a write outside the batch, an ORM read
  that would need to see the held writes), a row that does not exist yet, or a changed version.

Every writer of the guarded rows must bump their version in the same transaction (`update(…,
bump=…)`), or an optimistic write could miss its change. Callbacks meant to run after the
commit go through `on_commit`: in the optimistic mode there is no transaction, so Django's
`transaction.on_commit` would run them at once, before the write.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model

from vafa.core import rawsql


class NeedsLock(Exception):
    """The optimistic attempt cannot finish as such; run the write on the locked path."""


@dataclass(frozen=True)
class Guard:
    """The row whose `column` must still read `version` when the batch is written."""

    model: type[Model]
    pk: int
    column: str
    version: int


@dataclass
class Batch:
    """Writes held back to go out as one statement; see the module docstring."""

    optimistic: bool = False
    # Ids reserved for rows this write will most likely insert, per model.
    ids: dict[type[Model], list[int]] = dataclasses.field(default_factory=dict)
    # (model, column names, values), in the order they were booked.
    inserts: list[tuple[type[Model], tuple[str, ...], list[Any]]] = dataclasses.field(
        default_factory=list
    )
    # (model, pk) -> {column: value}; and the version column each updated row bumps, if any.
    updates: dict[tuple[type[Model], int], dict[str, Any]] = dataclasses.field(
        default_factory=dict
    )
    bumps: dict[tuple[type[Model], int], str] = dataclasses.field(default_factory=dict)
    guard: Guard | None = None
    callbacks: list[Callable[[], None]] = dataclasses.field(default_factory=list)
    flushing: bool = False
    _reading: bool = False

    def pending(self) -> bool:
        return bool(self.inserts or self.updates)

    def insert(self, model: type[Model], columns: tuple[str, ...], values: list[Any]) -> None:
        self.inserts.append((model, columns, values))

    def insert_instance(self, obj: Model) -> None:
        """Hold the insert of a new row whose id the database assigns, its values prepared as
        `save()` would prepare them."""
        columns = tuple(str(f.column) for f in rawsql.insert_fields(type(obj)))
        self.insert(type(obj), columns, rawsql.insert_values(rawsql.connection(), obj))

    def holds_insert(self, model: type[Model], pk: int) -> bool:
        """Whether an insert of this row (with its id first) is still held."""
        pk_column = str(model._meta.pk.column)
        return any(
            m is model and columns[:1] == (pk_column,) and values[0] == pk
            for m, columns, values in self.inserts
        )

    def update(
        self, model: type[Model], pk: int, values: dict[str, Any], *, bump: str | None = None
    ) -> None:
        """Set `values` on the row (merged with what the batch already sets there); `bump`
        names a version column to increment."""
        self.updates.setdefault((model, pk), {}).update(values)
        if bump is not None:
            self.bumps[(model, pk)] = bump

    def reserve(self, model: type[Model], ids: list[int]) -> None:
        self.ids[model] = list(ids)

    def take_id(self, model: type[Model]) -> int | None:
        reserved = self.ids.get(model)
        return reserved.pop() if reserved else None

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Let the optimistic read through the statement guard."""
        self._reading = True
        try:
            yield
        finally:
            self._reading = False

    def flush(self, db: BaseDatabaseWrapper) -> None:
        """Send every held write in one statement; in the optimistic mode, only if the guard
        row is unchanged (else `NeedsLock`, with nothing written)."""
        if self.flushing or not (self.pending() or (self.optimistic and self.guard)):
            return
        guard = self.guard if self.optimistic else None
        if self.optimistic and guard is None:
            raise NeedsLock("an optimistic write without a guard row")
        inserts, updates, bumps = self.inserts, self.updates, self.bumps
        self.inserts, self.updates, self.bumps = [], {}, {}
        guarded = (guard.model, guard.pk) if guard is not None else None
        # Every updated row but the guard's (whose sets go into the guard clause).
        others = [(key, sets) for key, sets in updates.items() if key != guarded]
        guard_sets = updates.get(guarded, {}) if guarded is not None else {}
        shape = (
            None if guard is None else (guard.model, guard.column, tuple(guard_sets)),
            tuple((model, columns) for model, columns, _ in inserts),
            tuple((key[0], tuple(sets), bumps.get(key)) for key, sets in others),
        )
        params: list[Any] = []
        if guard is not None:
            params += [*guard_sets.values(), guard.pk, guard.version]
        for _, _, row in inserts:
            params += row
        for (_, pk), sets in others:
            params += [*sets.values(), pk]
        sql = rawsql.statement(db, f"batch:{shape}", lambda: _batch_sql(db, *shape))
        self.flushing = True
        try:
            with rawsql.cursor(db) as cursor:
                cursor.execute(sql, params)
                written = cursor.fetchone()[0] if guard is not None else 1
        finally:
            self.flushing = False
        if not written and guard is not None:
            raise NeedsLock(f"{guard.model.__name__} {guard.pk} changed since it was read")


def _batch_sql(
    db: BaseDatabaseWrapper,
    guard: tuple[type[Model], str, tuple[str, ...]] | None,
    inserts: tuple[tuple[type[Model], tuple[str, ...]], ...],
    updates: tuple[tuple[type[Model], tuple[str, ...], str | None], ...],
) -> str:
    """The one statement of a batch of this shape (built once per shape: a write books the
    same few shapes over and over, which also lets PostgreSQL reuse a prepared plan)."""
    def q(name: str | None) -> str:
        return str(db.ops.quote_name(str(name)))

    clauses: list[str] = []
    source = ""
    if guard is not None:
        model, column, sets = guard
        assignments = [f"{q(c)} = %s" for c in sets] + [f"{q(column)} = {q(column)} + 1"]
        clauses.append(
            f"g AS (UPDATE {q(model._meta.db_table)} SET {', '.join(assignments)} "
            f"WHERE {q(model._meta.pk.column)} = %s AND {q(column)} = %s "
            f"RETURNING {q(model._meta.pk.column)})"
        )
        source = " FROM g"
    for n, (model, columns) in enumerate(inserts):
        names = ", ".join(q(c) for c in columns)
        marks = ", ".join(["%s"] * len(columns))
        rows = f"SELECT {marks}{source}" if source else f"VALUES ({marks})"
        clauses.append(f"i{n} AS (INSERT INTO {q(model._meta.db_table)} ({names}) {rows})")
    for n, (model, columns, bump) in enumerate(updates):
        table = q(model._meta.db_table)
        assignments = [f"{q(c)} = %s" for c in columns]
        if bump is not None:
            assignments.append(f"{q(bump)} = {table}.{q(bump)} + 1")
        clauses.append(
            f"u{n} AS (UPDATE {table} SET {', '.join(assignments)}{source} "
            f"WHERE {table}.{q(model._meta.pk.column)} = %s)"
        )
    last = "SELECT count(*) FROM g" if guard is not None else "SELECT 1"
    return f"WITH {', '.join(clauses)} {last}"


_local = threading.local()


def active() -> Batch | None:
    """The batch open on this thread, if any."""
    batch: Batch | None = getattr(_local, "batch", None)
    return batch


def optimistic() -> bool:
    """Whether an optimistic write is running on this thread."""
    batch = active()
    return batch is not None and batch.optimistic


def supported(db: BaseDatabaseWrapper | None = None) -> bool:
    return (db or rawsql.connection()).vendor == "postgresql"


@contextlib.contextmanager
def write(*, optimistic: bool = False) -> Iterator[Batch | None]:
    """Hold the writes booked inside and send them as one statement on the way out (PostgreSQL;
    elsewhere a no-op yielding None). Nested use joins the outer batch. On an exception the
    held writes are dropped. An optimistic batch opened in autocommit (its purpose: no
    transaction at all) runs its `on_commit` callbacks once its statement is written; inside a
    transaction (tests) its callbacks wait for that transaction's commit as usual."""
    db = rawsql.connection()
    outer = active()
    if outer is not None or not supported(db):
        yield outer
        return
    batch = Batch(optimistic=optimistic)

    def statement_guard(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if not (batch.flushing or batch._reading):
            if batch.optimistic:
                raise NeedsLock(f"a statement outside the optimistic write: {sql[:80]}")
            if batch.pending():  # a read must see the held writes: send them first
                batch.flush(db)
        return execute(sql, params, many, context)

    _local.batch = batch
    try:
        with db.execute_wrapper(statement_guard):
            yield batch
            batch.flush(db)
    finally:
        _local.batch = None
    for callback in batch.callbacks:
        callback()


def on_commit(callback: Callable[[], None]) -> None:
    """Run `callback` once the current write is committed: after the optimistic batch's
    statement, or at the transaction's commit (`transaction.on_commit`)."""
    batch = active()
    if batch is not None and batch.optimistic and rawsql.connection().get_autocommit():
        batch.callbacks.append(callback)
    else:
        transaction.on_commit(callback)
