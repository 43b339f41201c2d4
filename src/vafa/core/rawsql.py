"""Hand-written SQL on the hot paths (API-key check, idempotency records, the loyalty ledger).

Profiling those paths showed Django's query building costing more CPU than the database spent
on the queries, so they send plain statements through the connection's cursor. This module is
what they share: the thread's connection, looked up once per call (`django.db.connection` is a
proxy that resolves it again on every attribute access); statements built once per database
vendor; and model instances built from raw rows through the same converters the ORM uses, so
SQLite's naive datetimes come back aware exactly as through a `QuerySet`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model, signals
from django.db.models.base import ModelState

M = TypeVar("M", bound=Model)
Converter = Callable[[Any], Any]

_statements: dict[tuple[str, str], str] = {}
# Per (vendor, model): the attribute names of `fields`, and the row converters (None when no
# column needs one).
_plans: dict[tuple[str, type[Model]], tuple[list[str], list[Converter | None] | None]] = {}


def connection() -> BaseDatabaseWrapper:
    """This thread's default connection."""
    return connections[DEFAULT_DB_ALIAS]


# The attribute of a connection's `DatabaseWrapper` holding (the driver connection it was made
# on, its kept cursor).
_KEPT = "_vafa_kept_cursor"


def cursor(db: BaseDatabaseWrapper) -> contextlib.AbstractContextManager[Any]:
    """`with rawsql.cursor(db) as cursor:` for a statement whose rows are all fetched inside the
    `with` (the hand-written statements of this module's users).

    Each connection keeps one cursor for these, made by `db.cursor()` the first time and reused
    for as long as the connection lasts: making and closing a Django cursor cost as much CPU as
    a whole execute of a short statement, three times on every API write. Reusing it is safe
    because nothing is left on it between statements (each one's rows are fetched at once; an
    ORM query that streams its rows has a cursor of its own). The connection's health check
    still runs first, as it does in `db.cursor()`; a connection that was closed and opened
    again gets a new cursor. While queries are being logged (`DEBUG`, `CaptureQueriesContext`)
    every statement gets Django's own cursor, closed on exit, so that it is logged as before."""
    db.close_if_health_check_failed()
    kept = getattr(db, _KEPT, None)
    raw = db.connection
    if kept is not None and raw is not None and kept[0] is raw and not db.queries_logged:
        return contextlib.nullcontext(kept[1])
    made = db.cursor()
    if db.queries_logged:
        return made
    setattr(db, _KEPT, (db.connection, made))
    return contextlib.nullcontext(made)


def statement(db: BaseDatabaseWrapper, name: str, build: Callable[[], str]) -> str:
    """The statement `name`, built once per database vendor (its text never changes at run
    time). Names are global: prefix them with their module's subject."""
    cache_key = (db.vendor, name)
    found = _statements.get(cache_key)
    if found is None:
        found = _statements[cache_key] = build()
    return found


def fields(model: type[Model]) -> list[Field[Any, Any]]:
    """The model's concrete fields, in the order `instance` expects a row's columns."""
    return list(model._meta.concrete_fields)


_insert_field_lists: dict[type[Model], list[Field[Any, Any]]] = {}


def insert_fields(model: type[Model]) -> list[Field[Any, Any]]:
    """The concrete fields a new row is inserted with: all but the primary key and the columns
    the database computes (`GeneratedField`)."""
    found = _insert_field_lists.get(model)
    if found is None:
        found = _insert_field_lists[model] = [
            f for f in fields(model) if not f.primary_key and not f.generated
        ]
    return found


def insert_values(db: BaseDatabaseWrapper, obj: Model) -> list[Any]:
    """The values of `insert_fields` for a new row, prepared as `save()` prepares them
    (`pre_save` for auto_now fields; defaults were set by `__init__`)."""
    return [f.get_db_prep_save(f.pre_save(obj, add=True), db) for f in insert_fields(type(obj))]


def row_converters(db: BaseDatabaseWrapper, model: type[Model]) -> list[Converter | None]:
    """Per concrete field, the function turning a raw database value into the Python value
    exactly as the ORM's compiler would (e.g. SQLite's naive datetimes into aware ones), or
    None when the driver's value is already right (most columns on PostgreSQL). Built anew on
    each call: `instance` keeps what it needs per model and vendor."""
    built: list[Converter | None] = []
    for field in fields(model):
        column = field.get_col(model._meta.db_table)
        steps = db.ops.get_db_converters(column) + column.get_db_converters(db)
        if not steps:
            built.append(None)
            continue

        def convert(value: Any, steps: list[Any] = steps, column: Any = column) -> Any:
            for step in steps:
                value = step(value, column, connection())
            return value

        built.append(convert)
    return built


def instance(db: BaseDatabaseWrapper, model: type[M], values: Sequence[Any]) -> M:
    """A model instance from a row of its concrete columns (`fields`), as `Model.from_db`
    builds it but without running `Model.__init__`'s per-field machinery (a tenth of a loyalty
    earn's CPU went to building the member, settings and lots): the values are set straight
    into the instance's `__dict__`, as `__init__` would for a full row. Models with
    `pre_init`/`post_init` receivers still go through `from_db`.

    A write reads a dozen lots, so the per-row work is kept small: the attribute names and
    whether any column needs converting are worked out once per model and database vendor."""
    cache_key = (db.vendor, model)
    plan = _plans.get(cache_key)
    if plan is None:
        converters = row_converters(db, model)
        plan = _plans[cache_key] = (
            [f.attname for f in fields(model)],
            converters if any(c is not None for c in converters) else None,
        )
    names, steps = plan
    if steps is not None:
        values = [v if c is None else c(v) for c, v in zip(steps, values, strict=True)]
    # Any receiver at all is rare (none in this project); only then ask about this model.
    if (signals.pre_init.receivers or signals.post_init.receivers) and (
        signals.pre_init.has_listeners(model) or signals.post_init.has_listeners(model)
    ):
        return model.from_db(db.alias, names, list(values))
    obj = model.__new__(model)
    obj.__dict__.update(zip(names, values, strict=True))
    state = obj._state = ModelState()
    state.adding = False
    state.db = db.alias
    return obj
