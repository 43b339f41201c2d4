"""The few raw SQL statements of the ledger's hot path (every earn and redeem runs them).

Why raw SQL here: profiling one API earn or redeem on PostgreSQL showed Django's query building
(compiling a `QuerySet`, `Model.save()`'s machinery) costing more than the database's own work,
and several round trips that one statement can do. So the write path

1. locks the member row and reads, in the same round trip, the program settings and the
   customer's external id (`lock_member`);
2. reads, in one more round trip and only *after* the lock (so it sees every write committed
   before it), the member's open lots, whether the idempotency key was already used, whether
   any webhook endpoint exists and, when someone listens for `reward.available`, the cheapest
   reward's cost (`open_lots`);
3. inserts entries, lots and allocations with one `INSERT … RETURNING id` each (`insert`) and
   updates counters with one-line `UPDATE`s.

Everything else (replays, debts, reports) stays in the ORM. Table and column names come from the
models' `_meta`, values are prepared by the model fields (`get_db_prep_save`) and read back
through the same converters the ORM uses, so SQLite and PostgreSQL behave as through the ORM.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Field, Model

from vafa.customers.models import Customer
from vafa.loyalty.models import (
    LedgerEntry,
    Lot,
    Member,
    ProgramSettings,
    Reward,
    WebhookEndpoint,
)

M = TypeVar("M", bound=Model)
Converter = Callable[[Any], Any]
_converters: dict[tuple[str, type[Model]], list[Converter]] = {}


def _q(name: str | None) -> str:
    return connection.ops.quote_name(str(name))


_statements: dict[tuple[str, str], str] = {}


def _sql(name: str, build: Callable[[], str]) -> str:
    """A statement built once per database vendor (the SQL text never changes at run time)."""
    cache_key = (connection.vendor, name)
    found = _statements.get(cache_key)
    if found is None:
        found = _statements[cache_key] = build()
    return found


def _fields(model: type[Model]) -> list[Field[Any, Any]]:
    return list(model._meta.concrete_fields)


def _columns(model: type[Model], alias: str) -> str:
    return ", ".join(f"{alias}.{_q(f.column)}" for f in _fields(model))


def _row_converters(model: type[Model]) -> list[Converter]:
    """One function per concrete field turning a raw database value into the Python value,
    exactly as the ORM's compiler would (e.g. SQLite's datetime strings into aware datetimes)."""
    cache_key = (connection.vendor, model)
    found = _converters.get(cache_key)
    if found is not None:
        return found
    built: list[Converter] = []
    for field in _fields(model):
        column = field.get_col(model._meta.db_table)
        steps = connection.ops.get_db_converters(column) + column.get_db_converters(connection)

        def convert(value: Any, steps: list[Any] = steps, column: Any = column) -> Any:
            for step in steps:
                value = step(value, column, connection)
            return value

        built.append(convert)
    _converters[cache_key] = built
    return built


def _instance(model: type[M], values: Sequence[Any]) -> M:
    converted = [c(v) for c, v in zip(_row_converters(model), values, strict=True)]
    return model.from_db(connection.alias, [f.attname for f in _fields(model)], converted)


def customer_id_for(external_id: str) -> int | None:
    """The id of the customer with this external id (unique index), or None."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_q('id')} FROM {_q(Customer._meta.db_table)} "
            f"WHERE {_q('external_id')} = %s",
            [external_id],
        )
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def _lock_member_sql() -> str:
    lock = " FOR UPDATE OF m" if connection.features.has_select_for_update_of else (
        " FOR UPDATE" if connection.features.has_select_for_update else ""
    )
    return (
        f"SELECT {_columns(Member, 'm')}, c.{_q('external_id')}, {_columns(ProgramSettings, 'p')} "
        f"FROM {_q(Member._meta.db_table)} m "
        f"INNER JOIN {_q(Customer._meta.db_table)} c ON c.{_q('id')} = m.{_q('customer_id')} "
        f"LEFT JOIN {_q(ProgramSettings._meta.db_table)} p ON p.{_q('id')} = 1 "
        f"WHERE m.{_q('customer_id')} = %s{lock}"
    )


def lock_member(customer_id: int) -> tuple[Member, ProgramSettings, str] | None:
    """Lock the customer's member row (`FOR UPDATE` where the database has row locks; SQLite's
    `IMMEDIATE` transactions already admit one writer at a time) and return it with the program
    settings (unsaved defaults when the merchant saved none) and the customer's external id, in
    one round trip. None when the customer has no member row yet."""
    member_width = len(_fields(Member))
    settings_width = len(_fields(ProgramSettings))
    with connection.cursor() as cursor:
        cursor.execute(_sql("lock_member", _lock_member_sql), [customer_id])
        row = cursor.fetchone()
    if row is None:
        return None
    member = _instance(Member, row[:member_width])
    external_id = str(row[member_width])
    settings_row = row[member_width + 1 : member_width + 1 + settings_width]
    program = (
        _instance(ProgramSettings, settings_row)
        if settings_row[0] is not None
        else ProgramSettings(pk=1)
    )
    return member, program, external_id


# The rows of `open_lots`' single statement are told apart by their first column.
_LOT, _KEY_USED, _WEBHOOKS, _CHEAPEST = 0, 1, 2, 3


def _open_lots_sql(*, with_key: bool, with_cheapest: bool) -> str:
    pad = ", ".join(["NULL"] * (len(_fields(Lot)) - 1))
    parts = [
        f"SELECT {_LOT}, {_columns(Lot, 'l')} FROM {_q(Lot._meta.db_table)} l "
        f"WHERE l.{_q('member_id')} = %s AND l.{_q('remaining')} > 0",
    ]
    if with_key:
        parts.append(
            f"SELECT {_KEY_USED}, e.{_q('id')}, {pad} FROM {_q(LedgerEntry._meta.db_table)} e "
            f"WHERE e.{_q('member_id')} = %s AND e.{_q('idempotency_key')} = %s"
        )
    parts.append(
        f"SELECT {_WEBHOOKS}, 0, {pad} WHERE EXISTS (SELECT 1 FROM "
        f"{_q(WebhookEndpoint._meta.db_table)})"
    )
    if with_cheapest:
        # `selectors.cheapest_reward_cost` in SQL: in force, in stock, open to every tier.
        parts.append(
            f"SELECT {_CHEAPEST}, MIN(r.{_q('points_cost')}), {pad} "
            f"FROM {_q(Reward._meta.db_table)} r WHERE r.{_q('active')} = %s "
            f"AND r.{_q('exclusive')} = %s AND r.{_q('min_tier_id')} IS NULL "
            f"AND (r.{_q('stock')} IS NULL OR r.{_q('stock')} <> 0) "
            f"AND (r.{_q('starts_at')} IS NULL OR r.{_q('starts_at')} <= %s) "
            f"AND (r.{_q('ends_at')} IS NULL OR r.{_q('ends_at')} > %s)"
        )
    return " UNION ALL ".join(parts)


@dataclass(frozen=True)
class OpenLots:
    """What `open_lots` read in its one statement."""

    lots: list[Lot]
    key_used: bool  # the idempotency key asked about is already an entry's
    webhooks: bool  # some webhook endpoint exists (paused ones too)
    cheapest: int | None  # cost of the cheapest reward open to all (when asked), or None


def open_lots(
    member_id: int, key: str | None = None, *, cheapest_at: datetime | None = None
) -> OpenLots:
    """The member's lots with points left, whether `key` is already an entry's idempotency key,
    whether any webhook endpoint exists and, with `cheapest_at`, the cheapest reward's cost at
    that moment: one statement (a `UNION ALL` whose first column says what each row is). Call
    it only while holding the member's lock."""
    with_key, with_cheapest = key is not None, cheapest_at is not None
    params: list[Any] = [member_id]
    if with_key:
        params += [member_id, key]
    if cheapest_at is not None:
        moment = Reward._meta.get_field("starts_at").get_db_prep_value(cheapest_at, connection)
        params += [True, False, moment, moment]
    sql = _sql(
        f"open_lots:{with_key}:{with_cheapest}",
        lambda: _open_lots_sql(with_key=with_key, with_cheapest=with_cheapest),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    cheapest = next((row[1] for row in rows if row[0] == _CHEAPEST), None)
    return OpenLots(
        lots=[_instance(Lot, row[1:]) for row in rows if row[0] == _LOT],
        key_used=any(row[0] == _KEY_USED for row in rows),
        webhooks=any(row[0] == _WEBHOOKS for row in rows),
        cheapest=None if cheapest is None else int(cheapest),
    )


def insert(obj: Model) -> None:
    """`INSERT … RETURNING id` of a new row with its fields prepared as `save()` would (no
    signals: the ledger's rows have none, and `LedgerEntry.save`'s append-only guard only
    concerns updates). Sets the primary key and marks the instance as stored."""
    meta = obj._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    # `pre_save` as `save()` would call it (auto_now fields); defaults were set by __init__.
    values = [f.get_db_prep_save(f.pre_save(obj, add=True), connection) for f in fields]

    def build() -> str:
        columns = ", ".join(_q(f.column) for f in fields)
        marks = ", ".join(["%s"] * len(fields))
        return (
            f"INSERT INTO {_q(meta.db_table)} ({columns}) VALUES ({marks}) "
            f"RETURNING {_q(meta.pk.column)}"  # PostgreSQL, and SQLite since 3.35
        )

    with connection.cursor() as cursor:
        cursor.execute(_sql(f"insert:{meta.label}", build), values)
        obj.pk = cursor.fetchone()[0]
    obj._state.adding = False
    obj._state.db = connection.alias


def set_lot_remaining(lot_id: int, remaining: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_q(Lot._meta.db_table)} SET {_q('remaining')} = %s WHERE {_q('id')} = %s",
            [remaining, lot_id],
        )


def set_member_cache(member_id: int, balance: int, debt: int) -> None:
    """Write the member's cached balance and debt (under the member's lock)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_q(Member._meta.db_table)} SET {_q('balance')} = %s, {_q('debt')} = %s "
            f"WHERE {_q('id')} = %s",
            [balance, debt, member_id],
        )
