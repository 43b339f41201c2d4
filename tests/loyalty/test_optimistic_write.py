"""The API's optimistic earn and redeem (`vafa.core.batch`), on a real PostgreSQL outside any
test transaction, as a request runs them: an unlocked read, one guarded statement, and the
locked path whenever that gives up. The invariants are the ledger's own (see also the state
machine, which draws both paths at random)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from tests.loyalty.conftest import Api
from vafa.customers.models import Customer
from vafa.loyalty import events, ledger_sql, services
from vafa.loyalty.models import (
    LedgerEntry,
    Lot,
    Member,
    WebhookDelivery,
    WebhookEndpoint,
)
from vafa.loyalty.selectors import ledger_reconcile

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the optimistic write is PostgreSQL's: runs in the PostgreSQL pass")


def _balance(customer: Customer) -> int:
    return Member.objects.get(customer=customer).balance


def _in_other_thread(work: Callable[[], Any]) -> Any:
    """Run `work` on another thread, so on its own database connection, and wait for it."""
    out: list[Any] = []

    def target() -> None:
        try:
            out.append(work())
        except BaseException as exc:
            out.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=60)
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0]


def test_an_api_earn_and_redeem_are_three_statements_and_no_transaction(
    api: Api, zahra: Customer
) -> None:
    api.post("/members/zahra/adjustments", {"points": 100, "reason": "seed"}, key="seed")

    with CaptureQueriesContext(connection) as earn:
        earned = api.post("/members/zahra/adjustments", {"points": 5, "reason": "x"}, key="e")
    with CaptureQueriesContext(connection) as redeem:
        redeemed = api.post("/members/zahra/redemptions", {"points": 30}, key="r")

    assert (earned.status_code, redeemed.status_code) == (201, 201), redeemed.content
    for captured in (earn, redeem):
        sql = [q["sql"] for q in captured.captured_queries]
        # The API key (+ Idempotency-Key), the unlocked read, the guarded write.
        assert len(sql) == 3, sql
        assert not any(s.startswith(("BEGIN", "COMMIT", "SAVEPOINT")) for s in sql)
        assert "FOR UPDATE" not in sql[1] and sql[2].startswith("WITH g AS (UPDATE")
    assert redeemed.json()["entry"]["balance_after"] == 75 and _balance(zahra) == 75
    assert Member.objects.get(customer=zahra).version == 3
    assert ledger_reconcile() == []
    # A replay of either answers the first response and writes nothing.
    again = api.post("/members/zahra/redemptions", {"points": 30}, key="r")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == redeemed.json() and _balance(zahra) == 75


def test_api_writes_reuse_the_connections_cursor(
    api: Api, zahra: Customer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside a query log, as in production: the three statements of every earn and redeem
    after the first go through the connection's kept cursor (`rawsql.cursor`)."""
    api.post("/members/zahra/adjustments", {"points": 100, "reason": "seed"}, key="seed")
    made: list[object] = []
    create_cursor = connection.create_cursor

    def counted(*args: Any) -> Any:
        made.append(cursor := create_cursor(*args))
        return cursor

    monkeypatch.setattr(connection, "create_cursor", counted)

    for n in range(3):
        redeemed = api.post("/members/zahra/redemptions", {"points": 10}, key=f"r{n}")
        assert redeemed.status_code == 201
        assert api.post("/members/zahra/adjustments", {"points": 1, "reason": "x"},
                        key=f"e{n}").status_code == 201

    assert made == [] and _balance(zahra) == 73
    assert ledger_reconcile() == []


def test_a_write_committed_between_the_read_and_the_write_sends_it_down_the_locked_path(
    api: Api, zahra: Customer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The optimistic read sees 100 points; before its write, another connection spends 60.
    The guarded statement then writes nothing, and the locked path refuses the 60."""
    api.post("/members/zahra/adjustments", {"points": 100, "reason": "seed"}, key="seed")
    read_unlocked = ledger_sql.read_unlocked
    raced: list[int] = []

    def read_then_race(*args: Any, **kwargs: Any) -> Any:
        read = read_unlocked(*args, **kwargs)
        if not raced:
            entry = _in_other_thread(lambda: services.points_redeem(
                customer=zahra, points=60, idempotency_key="other-till"
            ))
            raced.append(entry.pk)
        return read

    monkeypatch.setattr(ledger_sql, "read_unlocked", read_then_race)

    response = api.post("/members/zahra/redemptions", {"points": 60}, key="late")

    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "insufficient_points"
    assert raced and _balance(zahra) == 40
    redeemed = LedgerEntry.objects.filter(member__customer=zahra, points__lt=0)
    assert [e.idempotency_key for e in redeemed] == ["other-till"]
    assert not Lot.objects.filter(remaining__lt=0).exists()
    assert ledger_reconcile() == []


def test_fifty_concurrent_api_redemptions_of_ten_against_a_hundred_leave_exactly_ten(
    api: Api, zahra: Customer
) -> None:
    api.post("/members/zahra/adjustments", {"points": 100, "reason": "seed"}, key="seed")
    connection.close()  # the server allows 50 connections: leave them to the threads
    barrier = threading.Barrier(50)

    def redeem(i: int) -> int:
        try:
            barrier.wait()
            client = Api(api.headers["Authorization"].removeprefix("Bearer "))
            return int(client.post("/members/zahra/redemptions", {"points": 10}, key=f"c{i}")
                       .status_code)
        finally:
            connection.close()

    def run_all() -> list[int]:
        results: list[int] = [0] * 50

        def target(i: int) -> None:
            results[i] = redeem(i)

        threads = [threading.Thread(target=target, args=(i,)) for i in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        return results

    first = run_all()
    barrier.reset()
    replayed = run_all()

    assert sorted(first).count(201) == 10 and sorted(first).count(409) == 40, first
    assert replayed == first  # every call replayed gets its first answer
    member = Member.objects.get(customer=zahra)
    ledger = LedgerEntry.objects.filter(member=member).aggregate(s=Sum("points"))["s"]
    assert (member.balance, ledger, member.debt) == (0, 0, 0)
    assert LedgerEntry.objects.filter(member=member).count() == 11
    assert ledger_reconcile() == []


def test_webhook_deliveries_go_out_with_the_optimistic_write_to_the_endpoints_that_want_them(
    api: Api, zahra: Customer
) -> None:
    api.post("/members/zahra/adjustments", {"points": 10, "reason": "seed"}, key="seed")
    everything = WebhookEndpoint.objects.create(url="http://127.0.0.1:9/all")
    points = WebhookEndpoint.objects.create(url="http://127.0.0.1:9/p", events=["points.changed"])
    WebhookEndpoint.objects.create(url="http://127.0.0.1:9/tiers", events=["tier.changed"])

    with CaptureQueriesContext(connection) as captured:
        response = api.post("/members/zahra/adjustments", {"points": 7, "reason": "x"}, key="w")

    assert response.status_code == 201, response.content
    assert len(captured.captured_queries) == 3, [q["sql"] for q in captured.captured_queries]
    deliveries = WebhookDelivery.objects.filter(event=events.POINTS_CHANGED).order_by("endpoint")
    assert [(d.endpoint_id, d.payload["data"]["balance"]) for d in deliveries] == [
        (everything.pk, 17), (points.pk, 17)
    ]
    assert all(d.status == "pending" and d.next_attempt_at is not None for d in deliveries)


def test_a_first_write_creates_the_member_on_the_locked_path(api: Api, zahra: Customer) -> None:
    assert not Member.objects.filter(customer=zahra).exists()

    response = api.post("/members/zahra/adjustments", {"points": 3, "reason": "x"}, key="1")
    unknown = api.post("/members/nobody/redemptions", {"points": 1}, key="2")

    assert response.status_code == 201 and _balance(zahra) == 3
    assert unknown.status_code == 404


def test_subscribers_hear_of_an_optimistic_write_only_once_it_is_written(
    api: Api, zahra: Customer
) -> None:
    api.post("/members/zahra/adjustments", {"points": 10, "reason": "seed"}, key="seed")
    heard: list[tuple[int, bool]] = []

    def listener(event: events.LoyaltyEvent) -> None:
        entry_id = event.data["entries"][0]["id"]
        heard.append((entry_id, LedgerEntry.objects.filter(pk=entry_id).exists()))

    events.subscribe(listener, names=[events.POINTS_CHANGED])
    try:
        with CaptureQueriesContext(connection) as captured:
            response = api.post("/members/zahra/redemptions", {"points": 4}, key="r")
    finally:
        events.unsubscribe(listener)

    assert response.status_code == 201
    assert not any(q["sql"].startswith("BEGIN") for q in captured.captured_queries)
    assert heard == [(response.json()["id"], True)]
