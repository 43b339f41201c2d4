"""The lean write path: how many queries an API earn and redeem cost, and that its raw SQL reads
and writes what the ORM would (`vafa.loyalty.ledger_sql`), also when its writes are batched."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from tests.loyalty.conftest import T0, Api
from vafa.core import batch
from vafa.customers.models import Customer
from vafa.loyalty import events, ledger_sql, selectors, services
from vafa.loyalty.models import (
    Allocation,
    EntryKind,
    LedgerEntry,
    Lot,
    Member,
    ProgramSettings,
    Reward,
    RewardKind,
    Tier,
)

pytestmark = pytest.mark.django_db

# Statements of one API write besides transaction control (BEGIN/SAVEPOINT/RELEASE/COMMIT), per
# database. Before the lean path an earn cost 18 and a redeem 20; session 2 brought them to 9 and
# 10 (13 and 14 with transaction control). What remains on PostgreSQL: the API key (+ whether the
# Idempotency-Key was used), the member lock (+ customer by external id, + settings), the lots
# (+ ledger key check, + reserved ids), and one batched statement with every ledger insert and
# update and the idempotency record. SQLite (embedded mode) sends the ledger's writes one by
# one: entry, lot (earn) or allocation + lot update (redeem), member cache, then the record.
# Outside a transaction (a real request; see `test_optimistic_write.py`) PostgreSQL needs 3.
EARN_QUERIES = {"postgresql": 4, "sqlite": 7}
REDEEM_QUERIES = {"postgresql": 4, "sqlite": 8}


def _statements(captured: CaptureQueriesContext) -> list[str]:
    control = ("BEGIN", "SAVEPOINT", "RELEASE SAVEPOINT", "COMMIT", "ROLLBACK")
    return [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(control)]


def test_an_api_earn_and_redeem_take_a_fixed_small_number_of_queries(
    api: Api, zahra: Customer
) -> None:
    api.post("/members/zahra/adjustments", {"points": 100, "reason": "seed"}, key="seed")

    with CaptureQueriesContext(connection) as earn:
        earned = api.post("/members/zahra/adjustments", {"points": 1, "reason": "x"}, key="e")
    with CaptureQueriesContext(connection) as redeem:
        redeemed = api.post("/members/zahra/redemptions", {"points": 1}, key="r")

    assert (earned.status_code, redeemed.status_code) == (201, 201)
    assert len(_statements(earn)) == EARN_QUERIES[connection.vendor], _statements(earn)
    assert len(_statements(redeem)) == REDEEM_QUERIES[connection.vendor], _statements(redeem)
    assert redeemed.json()["status"] == "issued" and redeemed.json()["cancel_entry"] is None
    # The only savepoint is the one the test's own transaction forces on the request's
    # transaction: the ledger service inside `idempotent_response` opens none of its own.
    for captured in (earn, redeem):
        savepoints = [q for q in captured.captured_queries if q["sql"].startswith("SAVEPOINT")]
        assert len(savepoints) == 1, savepoints
    assert selectors.ledger_reconcile() == []


def test_a_batched_redemption_across_more_lots_than_ids_were_reserved_for_books_them_all(
    api: Api, zahra: Customer
) -> None:
    for i in range(3):
        api.post("/members/zahra/adjustments", {"points": 2, "reason": "seed"}, key=f"s{i}")

    response = api.post("/members/zahra/redemptions", {"points": 5}, key="r")

    assert response.status_code == 201, response.content
    entry_id = response.json()["id"]
    lots = Lot.objects.filter(member__customer=zahra).order_by("id")
    assert [lot.remaining for lot in lots] == [0, 0, 1]
    assert sorted(a.points for a in Allocation.objects.filter(entry_id=entry_id)) == [1, 2, 2]
    assert Member.objects.get(customer=zahra).balance == 1
    assert selectors.ledger_reconcile() == []


def test_an_api_write_finds_the_member_by_the_shops_id_and_refuses_an_unknown_one(
    api: Api, zahra: Customer
) -> None:
    first = api.post("/members/zahra/adjustments", {"points": 3, "reason": "new"}, key="a")
    unknown = api.post("/members/nobody/adjustments", {"points": 3, "reason": "x"}, key="b")
    unknown_redeem = api.post("/members/nobody/redemptions", {"points": 1}, key="c")

    assert first.status_code == 201 and Member.objects.get(customer=zahra).balance == 3
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "not_found")
    assert unknown_redeem.status_code == 404
    assert not Member.objects.filter(customer__external_id="nobody").exists()


def test_a_statement_inside_a_write_batch_sees_the_writes_held_before_it(
    program: ProgramSettings, zahra: Customer
) -> None:
    member = Member.objects.create(customer=zahra, joined_at=T0)

    with transaction.atomic(), batch.write():
        ledger_sql.set_member_cache(member.pk, 42, 7)
        seen = Member.objects.values_list("balance", "debt").get(pk=member.pk)
        ledger_sql.set_member_cache(member.pk, 43, 0)

    assert seen == (42, 7)
    assert Member.objects.values_list("balance", "debt").get(pk=member.pk) == (43, 0)


def test_a_write_batch_left_by_an_error_writes_nothing(
    program: ProgramSettings, zahra: Customer
) -> None:
    member = Member.objects.create(customer=zahra, joined_at=T0)

    with pytest.raises(RuntimeError), transaction.atomic(), batch.write():
        ledger_sql.set_member_cache(member.pk, 42, 0)
        raise RuntimeError("the write failed")

    assert Member.objects.get(pk=member.pk).balance == 0


def test_the_lock_reads_the_member_the_settings_and_the_customer_id_at_once(
    program: ProgramSettings, zahra: Customer
) -> None:
    services.points_adjust(
        customer=zahra, points=5, reason="seed", actor="test", idempotency_key="k", now=T0
    )

    locked = ledger_sql.lock_member(zahra.pk)

    assert locked is not None
    member, settings, external_id = locked
    assert member == Member.objects.get(customer=zahra) and member.balance == 5
    assert member.joined_at == Member.objects.get(customer=zahra).joined_at  # aware, converted
    assert (settings.point_value, settings.return_window_days) == (
        program.point_value, program.return_window_days
    )
    assert external_id == "zahra"
    ProgramSettings.objects.all().delete()
    assert ledger_sql.lock_member(zahra.pk)[1].expiry_months == 12  # type: ignore[index]
    assert ledger_sql.lock_member(zahra.pk + 1000) is None


def test_the_lots_read_agrees_with_the_orm_and_sees_a_used_key(
    program: ProgramSettings, zahra: Customer
) -> None:
    for i, points in enumerate((5, 7)):
        services.points_adjust(
            customer=zahra, points=points, reason="seed", actor="test",
            idempotency_key=f"k{i}", now=T0,
        )
    member = Member.objects.get(customer=zahra)

    read = ledger_sql.open_lots(member.pk, "k1")
    fresh = ledger_sql.open_lots(member.pk, "never-used")

    expected = list(Lot.objects.filter(member=member, remaining__gt=0).order_by("id"))
    got = sorted(read.lots, key=lambda lot: lot.pk)
    assert [(lot.pk, lot.remaining, lot.available_at, lot.expires_at) for lot in got] == [
        (lot.pk, lot.remaining, lot.available_at, lot.expires_at) for lot in expected
    ]
    assert (read.key_used, fresh.key_used, read.webhooks, read.cheapest) == (
        True, False, False, None
    )


@pytest.mark.parametrize(
    "reward, counts",
    [
        ({"points_cost": 40}, True),
        ({"points_cost": 40, "active": False}, False),
        ({"points_cost": 40, "stock": 0}, False),
        ({"points_cost": 40, "stock": 3}, True),
        ({"points_cost": 40, "exclusive": True}, False),
        ({"points_cost": 40, "starts_at": T0 + timedelta(seconds=1)}, False),
        ({"points_cost": 40, "starts_at": T0}, True),
        ({"points_cost": 40, "ends_at": T0}, False),
        ({"points_cost": 40, "ends_at": T0 + timedelta(microseconds=1)}, True),
        ({"points_cost": 40, "min_tier": "gold"}, False),
    ],
)
def test_the_cheapest_reward_read_with_the_lots_matches_the_selector(
    program: ProgramSettings, zahra: Customer, reward: dict[str, Any], counts: bool
) -> None:
    if reward.get("min_tier") == "gold":
        reward = {**reward, "min_tier": Tier.objects.create(name="Gold", rank=1)}
    Reward.objects.create(name="Dearer", kind=RewardKind.GIFT, points_cost=90)
    Reward.objects.create(name="Candidate", kind=RewardKind.GIFT, **reward)
    member = Member.objects.create(customer=zahra, joined_at=T0)

    read = ledger_sql.open_lots(member.pk, cheapest_at=T0)

    assert read.cheapest == selectors.cheapest_reward_cost(now=T0) == (40 if counts else 90)


def test_a_listened_write_reads_the_cheapest_reward_without_a_query_of_its_own(
    program: ProgramSettings, zahra: Customer, django_capture_on_commit_callbacks: Any
) -> None:
    Reward.objects.create(name="Gift", kind=RewardKind.GIFT, points_cost=50)
    seen: list[events.LoyaltyEvent] = []
    events.subscribe(seen.append)
    try:
        with django_capture_on_commit_callbacks(execute=True), CaptureQueriesContext(
            connection
        ) as captured:
            services.points_adjust(
                customer=zahra, points=60, reason="gift", actor="test", idempotency_key="a",
                now=T0,
            )
    finally:
        events.unsubscribe(seen.append)

    assert [e.name for e in seen] == ["points.changed", "reward.available"]
    own = [q for q in _statements(captured) if "loyalty_reward" in q and "loyalty_lot" not in q]
    assert own == []


def test_a_lot_booked_and_spent_in_the_same_batch_keeps_what_was_spent(
    program: ProgramSettings, zahra: Customer
) -> None:
    """One WITH statement's parts share a snapshot, so its UPDATE can't see a row its INSERT
    adds: a lot still held must be written before its `remaining` changes."""
    member = Member.objects.create(customer=zahra, joined_at=T0)

    with transaction.atomic(), batch.write():
        ledger_sql.open_lots(member.pk)  # reserves the ids (PostgreSQL)
        entry = LedgerEntry(member=member, kind=EntryKind.EARN, points=10, balance_after=10,
                            occurred_at=T0, created_at=T0, actor="test")
        ledger_sql.insert(entry)
        lot = Lot(member=member, entry=entry, points=10, remaining=10, available_at=T0)
        ledger_sql.insert(lot)
        ledger_sql.set_lot_remaining(lot.pk, 3)

    assert Lot.objects.get(pk=lot.pk).remaining == 3


def test_spending_part_of_a_lot_updates_it_in_place(program: ProgramSettings) -> None:
    """A redemption that leaves points in a lot is a HOT update on PostgreSQL (no new index
    entries, no dead row for vacuum): the open-lot indexes are partial on the generated
    `is_open` flag, which only changes when the lot runs out, not on `remaining`."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's HOT updates: runs in the PostgreSQL pass")
    customer = Customer.objects.create(external_id="c-hot")
    services.points_adjust(
        customer=customer, points=100, reason="welcome", actor="test", idempotency_key="a"
    )

    def lot_updates() -> tuple[int, int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
                "WHERE relname = %s",
                [Lot._meta.db_table],
            )
            row = cursor.fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    before = lot_updates()
    services.points_redeem(customer=customer, points=10, idempotency_key="r1")
    updated, hot = (now - then for now, then in zip(lot_updates(), before, strict=True))
    assert Lot.objects.get(member__customer=customer).remaining == 90
    assert updated == 1 and hot == 1

    services.points_redeem(customer=customer, points=90, idempotency_key="r2")
    lot = Lot.objects.get(member__customer=customer)
    assert lot.remaining == 0 and lot.is_open is False
    assert not Lot.objects.filter(member__customer=customer, is_open=True).exists()


@pytest.mark.parametrize(("table", "index", "column"), [
    (LedgerEntry._meta.db_table, "loyalty_entry_order_kind", "order_id"),
    (LedgerEntry._meta.db_table, "loyalty_entry_related", "related_entry_id"),
    (Lot._meta.db_table, "loyalty_lot_order", "order_id"),
])
def test_optional_references_are_indexed_only_where_set(table: str, index: str, column: str) -> None:
    """Most entries and lots have no order and no related entry; their indexes skip those rows
    (one index insert less per write for each), as the database itself defines them."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            sql = "SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexname = %s"
        else:
            sql = "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s AND name = %s"
        cursor.execute(sql, [table, index])
        (definition,) = cursor.fetchone()
        constraints = connection.introspection.get_constraints(cursor, table)
    assert definition.replace('"', "").replace("(", "").replace(")", "").endswith(
        f"WHERE {column} IS NOT NULL"
    )
    # No other index starts with the column (the full one Django makes for a foreign key).
    assert [
        name for name, info in constraints.items()
        if info["index"] and not info["primary_key"] and info["columns"][:1] == [column]
    ] == [index]
