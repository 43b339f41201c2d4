"""The few raw SQL statements of the ledger's hot path (every earn and redeem runs them).

Why raw SQL here: profiling one API earn or redeem on PostgreSQL showed Django's query building
(compiling a `QuerySet`, `Model.save()`'s machinery) costing more than the database's own work,
and several round trips that one statement can do. So the write path

1. locks the member row and reads, in the same round trip, the program settings and the
   customer's external id (`lock_member`), or, for the API, finds the customer by that
   external id in the same statement (`lock_member_by_external_id`);
2. reads, in one more round trip and only *after* the lock (so it sees every write committed
   before it), the member's open lots, whether the idempotency key was already used, whether
   any webhook endpoint exists and, when someone listens for `reward.available`, the cheapest
   reward's cost (`open_lots`);
3. inserts entries, lots and allocations with one `INSERT … RETURNING id` each (`insert`) and
   updates counters with one-line `UPDATE`s.

On PostgreSQL the hot writes (`points_adjust`, `points_redeem`) also run in a `write_batch`: the
lots statement reserves the ids of the entry, lot and allocation the write will most likely
book (`nextval` of their sequences), so their inserts and the counter updates need nothing back
from the database and are held and sent together as one statement (data-modifying `WITH`
clauses) when the batch closes, or before any other statement runs on the connection meanwhile
(an execute wrapper flushes first), so every read still sees every earlier write. A write that
needs more ids than were reserved inserts the rest one by one as before. SQLite (embedded mode)
writes at once, as without a batch. An API earn or redeem is then 5 statements on PostgreSQL
besides BEGIN/COMMIT (API key, lock, lots, batch, idempotency record), down from 11 to 12.

Everything else (replays, debts, reports) stays in the ORM. Table and column names come from the
models' `_meta`, values are prepared by the model fields (`get_db_prep_save`) and read back
through the same converters the ORM uses, so SQLite and PostgreSQL behave as through the ORM.

Each function looks the connection up once (`_db()`, from `vafa.core.rawsql`, which also builds
statements once per vendor and instances from raw rows) and hands that object to the fields: the
module-level `django.db.connection` is a proxy that resolves the thread's connection on every
attribute access, and a row's worth of fields touched it dozens of times per statement.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model
from django.db.models.base import ModelState

from vafa.core import batch as write_batch
from vafa.core.rawsql import connection as _db
from vafa.core.rawsql import cursor as _cursor
from vafa.core.rawsql import fields as _fields
from vafa.core.rawsql import insert_fields, insert_values
from vafa.core.rawsql import instance as _instance
from vafa.core.rawsql import statement as _sql
from vafa.customers.models import Customer
from vafa.loyalty.models import (
    Allocation,
    LedgerEntry,
    Lot,
    Member,
    ProgramSettings,
    Reward,
    WebhookEndpoint,
)


def _q(name: str | None) -> str:
    return _db().ops.quote_name(str(name))


def _columns(model: type[Model], alias: str) -> str:
    return ", ".join(f"{alias}.{_q(f.column)}" for f in _fields(model))


def customer_id_for(external_id: str) -> int | None:
    """The id of the customer with this external id (unique index), or None."""
    db = _db()
    sql = _sql(
        db, "ledger:customer_id",
        lambda: f"SELECT {_q('id')} FROM {_q(Customer._meta.db_table)} "
        f"WHERE {_q('external_id')} = %s",
    )
    with _cursor(db) as cursor:
        cursor.execute(sql, [external_id])
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def _lock_member_sql(by_external_id: bool = False) -> str:
    features = _db().features
    lock = " FOR UPDATE OF m" if features.has_select_for_update_of else (
        " FOR UPDATE" if features.has_select_for_update else ""
    )
    where = f"c.{_q('external_id')}" if by_external_id else f"m.{_q('customer_id')}"
    return (
        f"SELECT {_columns(Member, 'm')}, c.{_q('external_id')}, {_columns(ProgramSettings, 'p')} "
        f"FROM {_q(Member._meta.db_table)} m "
        f"INNER JOIN {_q(Customer._meta.db_table)} c ON c.{_q('id')} = m.{_q('customer_id')} "
        f"LEFT JOIN {_q(ProgramSettings._meta.db_table)} p ON p.{_q('id')} = 1 "
        f"WHERE {where} = %s{lock}"
    )


def lock_member_by_external_id(external_id: str) -> tuple[Member, ProgramSettings, str] | None:
    """`lock_member` for the customer with this external id (the shop's id, as the API names
    members): the API's writes then need no separate look-up of the customer's id. None when
    there is no such customer or it has no member row yet."""
    return _lock(external_id, by_external_id=True)


def lock_member(customer_id: int) -> tuple[Member, ProgramSettings, str] | None:
    """Lock the customer's member row (`FOR UPDATE` where the database has row locks; SQLite's
    `IMMEDIATE` transactions already admit one writer at a time) and return it with the program
    settings (unsaved defaults when the merchant saved none) and the customer's external id, in
    one round trip. None when the customer has no member row yet."""
    return _lock(customer_id, by_external_id=False)


def _lock(value: int | str, *, by_external_id: bool) -> tuple[Member, ProgramSettings, str] | None:
    member_width = len(_fields(Member))
    settings_width = len(_fields(ProgramSettings))
    db = _db()
    with _cursor(db) as cursor:
        sql = _sql(db, f"ledger:lock_member:{by_external_id}", lambda: _lock_member_sql(by_external_id))
        cursor.execute(sql, [value])
        row = cursor.fetchone()
    if row is None:
        return None
    member = _instance(db, Member, row[:member_width])
    external_id = str(row[member_width])
    program = _program(db, row[member_width + 1 : member_width + 1 + settings_width])
    return member, program, external_id


_default_program: dict[str, Any] = {}


def _program(db: BaseDatabaseWrapper, row: tuple[Any, ...]) -> ProgramSettings:
    """The settings read from `row`, or the defaults (unsaved) before the merchant saved any:
    a copy of defaults built once, since building them (`Model.__init__` over every field's
    default) was a fifth of an optimistic read's CPU. Every value is immutable."""
    if row[0] is not None:
        return _instance(db, ProgramSettings, row)
    if not _default_program:
        template = ProgramSettings(pk=1)
        _default_program.update((k, v) for k, v in vars(template).items() if k != "_state")
    program = ProgramSettings.__new__(ProgramSettings)
    program.__dict__.update(_default_program)
    program._state = ModelState()
    return program


# The rows of `open_lots`' single statement are told apart by their first column.
_LOT, _KEY_USED, _WEBHOOKS, _CHEAPEST, _IDS = 0, 1, 2, 3, 4
# The member row of `read_unlocked`'s statement (its lot rows are `_LOT`).
_MEMBER = 9
# The tables whose next ids a batch reserves, in the order of the `_IDS` row's columns.
_RESERVED: tuple[type[Model], ...] = (LedgerEntry, Lot, Allocation)


def _sequence(model: type[Model]) -> str:
    """The name of the PostgreSQL sequence behind the model's id (identity) column."""
    with _cursor(_db()) as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [model._meta.db_table, "id"])
        return str(cursor.fetchone()[0])


def _open_lots_sql(*, with_key: bool, with_cheapest: bool, with_ids: bool = False) -> str:
    pad = ", ".join(["NULL"] * (len(_fields(Lot)) - 1))
    parts = [
        f"SELECT {_LOT}, {_columns(Lot, 'l')} FROM {_q(Lot._meta.db_table)} l "
        f"WHERE l.{_q('member_id')} = %s AND l.{_q('is_open')}",
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
        parts.append(f"SELECT {_CHEAPEST}, ({_cheapest_sql()}), {pad}")
    if with_ids:
        reserve = ", ".join(f"nextval('{_sequence(m)}')" for m in _RESERVED)
        rest = ", ".join(["NULL"] * (len(_fields(Lot)) - len(_RESERVED)))
        parts.append(f"SELECT {_IDS}, {reserve}, {rest}")
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
    db = _db()
    batch = write_batch.active()
    with_key, with_cheapest, with_ids = key is not None, cheapest_at is not None, batch is not None
    params: list[Any] = [member_id]
    if with_key:
        params += [member_id, key]
    if cheapest_at is not None:
        moment = Reward._meta.get_field("starts_at").get_db_prep_value(cheapest_at, db)
        params += [True, False, moment, moment]
    sql = _sql(
        db, f"ledger:open_lots:{with_key}:{with_cheapest}:{with_ids}",
        lambda: _open_lots_sql(with_key=with_key, with_cheapest=with_cheapest, with_ids=with_ids),
    )
    with _cursor(db) as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if batch is not None:
        ids = next(row for row in rows if row[0] == _IDS)
        for model, reserved in zip(_RESERVED, ids[1:], strict=False):
            batch.reserve(model, [int(reserved)])
    cheapest = next((row[1] for row in rows if row[0] == _CHEAPEST), None)
    return OpenLots(
        lots=[_instance(db, Lot, row[1:]) for row in rows if row[0] == _LOT],
        key_used=any(row[0] == _KEY_USED for row in rows),
        webhooks=any(row[0] == _WEBHOOKS for row in rows),
        cheapest=None if cheapest is None else int(cheapest),
    )


def _cheapest_sql(alias: str = "r") -> str:
    """`selectors.cheapest_reward_cost` in SQL: in force, in stock, open to every tier (four
    parameters: True, False, the moment twice)."""
    r = alias
    return (
        f"SELECT MIN({r}.{_q('points_cost')}) FROM {_q(Reward._meta.db_table)} {r} "
        f"WHERE {r}.{_q('active')} = %s AND {r}.{_q('exclusive')} = %s "
        f"AND {r}.{_q('min_tier_id')} IS NULL "
        f"AND ({r}.{_q('stock')} IS NULL OR {r}.{_q('stock')} <> 0) "
        f"AND ({r}.{_q('starts_at')} IS NULL OR {r}.{_q('starts_at')} <= %s) "
        f"AND ({r}.{_q('ends_at')} IS NULL OR {r}.{_q('ends_at')} > %s)"
    )


def _read_unlocked_sql(*, by_external_id: bool, with_key: bool, with_cheapest: bool) -> str:
    member, settings, lot = _fields(Member), _fields(ProgramSettings), _fields(Lot)
    where = f"c.{_q('external_id')}" if by_external_id else f"m.{_q('customer_id')}"
    reserve = ", ".join(f"nextval('{_sequence(model)}') AS r{n}" for n, model in enumerate(_RESERVED))
    key_used = (
        f"EXISTS (SELECT 1 FROM {_q(LedgerEntry._meta.db_table)} e "
        f"WHERE e.{_q('member_id')} = (SELECT m.{_q('id')} FROM m) "
        f"AND e.{_q('idempotency_key')} = %s)"
        if with_key else "FALSE"
    )
    cheapest = f"({_cheapest_sql()})" if with_cheapest else "NULL::integer"
    endpoints = (
        f"(SELECT json_agg(json_build_array(w.{_q('id')}, w.{_q('events')}) "
        f"ORDER BY w.{_q('id')}) FROM {_q(WebhookEndpoint._meta.db_table)} w)"
    )
    extras = [key_used, endpoints, cheapest]
    extras += [f"ids.r{n}" for n in range(len(_RESERVED))]
    nulls = lambda n: ", ".join(["NULL"] * n)  # noqa: E731
    return (
        f"WITH ids AS MATERIALIZED (SELECT {reserve}), "
        f"m AS (SELECT {_columns(Member, 'm')}, c.{_q('external_id')} AS vafa_external_id "
        f"FROM {_q(Member._meta.db_table)} m "
        f"INNER JOIN {_q(Customer._meta.db_table)} c ON c.{_q('id')} = m.{_q('customer_id')} "
        f"WHERE {where} = %s) "
        f"SELECT {_MEMBER}, {_columns(Member, 'm')}, m.vafa_external_id, "
        f"{_columns(ProgramSettings, 'p')}, {', '.join(extras)}, {nulls(len(lot))} "
        f"FROM m CROSS JOIN ids "
        f"LEFT JOIN {_q(ProgramSettings._meta.db_table)} p ON p.{_q('id')} = 1 "
        f"UNION ALL "
        f"SELECT {_LOT}, {nulls(len(member) + 1 + len(settings) + len(extras))}, "
        f"{_columns(Lot, 'l')} FROM {_q(Lot._meta.db_table)} l "
        # Scalar subqueries, not joins or correlations, keep the plans on the member indexes.
        f"WHERE l.{_q('member_id')} = (SELECT m.{_q('id')} FROM m) AND l.{_q('is_open')}"
    )


@dataclass(frozen=True)
class Unlocked:
    """What `read_unlocked` read in its one statement."""

    member: Member
    program: ProgramSettings
    external_id: str
    lots: OpenLots
    # Every webhook endpoint (paused ones too) as (id, the event names it wants).
    endpoints: list[tuple[int, list[str]]]


def read_unlocked(
    value: int | str,
    *,
    by_external_id: bool,
    key: str | None = None,
    cheapest_at: datetime | None = None,
) -> Unlocked | None:
    """For an optimistic write (`vafa.core.batch`): the member row (by customer id, or by the
    shop's external id), the program settings, the member's open lots, whether `key` is already
    an entry's idempotency key, whether any webhook endpoint exists and, with `cheapest_at`,
    the cheapest reward's cost, all in one statement without a lock, so from one snapshot. It
    reserves the ids the write will most likely insert and makes the member's version the
    batch's guard. Instead of whether a webhook endpoint exists it reads the endpoints, so that
    the write's deliveries go out with it (`events.publish`). None when the member row does not
    exist (yet)."""
    db = _db()
    batch = write_batch.active()
    if batch is None or not batch.optimistic:
        raise RuntimeError("read_unlocked belongs in an optimistic write batch")
    with_key, with_cheapest = key is not None, cheapest_at is not None
    params: list[Any] = [value]
    if with_key:
        params.append(key)
    if cheapest_at is not None:
        moment = Reward._meta.get_field("starts_at").get_db_prep_value(cheapest_at, db)
        params += [True, False, moment, moment]
    with batch.reading():  # building it the first time looks the sequences up
        sql = _sql(
            db, f"ledger:read_unlocked:{by_external_id}:{with_key}:{with_cheapest}",
            lambda: _read_unlocked_sql(
                by_external_id=by_external_id, with_key=with_key, with_cheapest=with_cheapest
            ),
        )
        with _cursor(db) as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
    head = next((row for row in rows if row[0] == _MEMBER), None)
    if head is None:
        return None
    member_width, settings_width = len(_fields(Member)), len(_fields(ProgramSettings))
    at = 1 + member_width
    member = _instance(db, Member, head[1:at])
    external_id = str(head[at])
    program = _program(db, head[at + 1 : at + 1 + settings_width])
    at += 1 + settings_width
    key_used, endpoints, cheapest = head[at : at + 3]
    if isinstance(endpoints, str):  # Django reads json as text, for JSONField to parse
        endpoints = json.loads(endpoints)
    endpoints = [(int(pk), list(names or [])) for pk, names in endpoints or []]
    for n, model in enumerate(_RESERVED):
        batch.reserve(model, [int(head[at + 3 + n])])
    batch.guard = write_batch.Guard(Member, member.pk, "version", member.version)
    lot_at = at + 3 + len(_RESERVED)
    lots = [_instance(db, Lot, row[lot_at:]) for row in rows if row[0] == _LOT]
    return Unlocked(
        member=member,
        program=program,
        external_id=external_id,
        lots=OpenLots(
            lots=lots,
            key_used=bool(key_used),
            webhooks=bool(endpoints),
            cheapest=None if cheapest is None else int(cheapest),
        ),
        endpoints=endpoints,
    )


def insert(obj: Model) -> None:
    """`INSERT … RETURNING id` of a new row with its fields prepared as `save()` would (no
    signals: the ledger's rows have none, and `LedgerEntry.save`'s append-only guard only
    concerns updates). Sets the primary key and marks the instance as stored."""
    db = _db()
    meta = obj._meta
    fields = insert_fields(type(obj))
    values = insert_values(db, obj)
    batch = write_batch.active()
    reserved = batch.take_id(type(obj)) if batch is not None else None
    if batch is not None and reserved is not None:
        obj.pk = reserved
        model = type(obj)
        batch.insert(model, _insert_columns(model), [obj.pk, *values])
        obj._state.adding = False
        obj._state.db = db.alias
        return

    def build() -> str:
        columns = ", ".join(_q(f.column) for f in fields)
        marks = ", ".join(["%s"] * len(fields))
        return (
            f"INSERT INTO {_q(meta.db_table)} ({columns}) VALUES ({marks}) "
            f"RETURNING {_q(meta.pk.column)}"  # PostgreSQL, and SQLite since 3.35
        )

    with _cursor(db) as cursor:
        cursor.execute(_sql(db, f"ledger:insert:{meta.label}", build), values)
        obj.pk = cursor.fetchone()[0]
    obj._state.adding = False
    obj._state.db = db.alias


def _insert_columns(model: type[Model]) -> tuple[str, ...]:
    """The columns of a batched insert: the (reserved) id, then `insert_fields`."""
    return (str(model._meta.pk.column), *(str(f.column) for f in insert_fields(model)))


def set_lot_remaining(lot_id: int, remaining: int) -> None:
    batch = write_batch.active()
    if batch is not None and batch.holds_insert(Lot, lot_id):
        # The parts of one data-modifying WITH statement share a snapshot: an UPDATE there
        # cannot see a row INSERTed by the same statement and would change nothing. So a lot
        # whose insert is still held goes out first (no caller does this today; this keeps a
        # future one from silently leaving points spendable).
        if batch.optimistic:
            raise write_batch.NeedsLock("a lot changed in the write that opens it")
        batch.flush(_db())
    _update(Lot, lot_id, {"remaining": remaining})


def set_member_cache(member_id: int, balance: int, debt: int) -> None:
    """Write the member's cached balance and debt (under the member's lock, or guarded by its
    version in an optimistic write) and bump its version: every write of the member's ledger
    ends here, which is what lets an optimistic write notice a change since its read."""
    _update(Member, member_id, {"balance": balance, "debt": debt}, bump="version")


def _update(
    model: type[Model], pk: int, values: dict[str, Any], *, bump: str | None = None
) -> None:
    """Set `values` (and increment the `bump` column) on one row: held by the write batch when
    one is open, else at once."""
    db = _db()
    batch = write_batch.active()
    if batch is not None:
        batch.update(model, pk, values, bump=bump)
        return

    def build() -> str:
        sets = [f"{_q(column)} = %s" for column in values]
        if bump is not None:
            sets.append(f"{_q(bump)} = {_q(bump)} + 1")
        table = _q(model._meta.db_table)
        return f"UPDATE {table} SET {', '.join(sets)} WHERE {_q(model._meta.pk.column)} = %s"

    sql = _sql(db, f"ledger:update:{model._meta.label}:{tuple(values)}:{bump}", build)
    with _cursor(db) as cursor:
        cursor.execute(sql, [*values.values(), pk])
