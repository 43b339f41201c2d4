"""The change feed: recorded in the write's transaction by the API and webhooks (not by file
imports unless asked), handed to every registered consumer in order with its own cursor, at
least once, and a failing consumer neither loses changes nor blocks the others."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from vafa.core.errors import ImportRejected
from vafa.core.services import apikey_create
from vafa.customers import changes, services
from vafa.customers.models import Change, ChangeCursor, ChangeKind, Customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def consumers() -> Iterator[dict[str, list[int]]]:
    """Two test consumers that remember what they saw; the real ones are set aside."""
    saved = {name: changes._handlers[name] for name in changes.registered()}
    changes._handlers.clear()
    seen: dict[str, list[int]] = {"a": [], "b": []}
    changes.register("a", lambda change: seen["a"].append(change.pk))
    changes.register("b", lambda change: seen["b"].append(change.pk))
    yield seen
    changes._handlers.clear()
    changes._handlers.update(saved)


def post(client: Client, key: str, path: str, body: object, idem: str) -> None:
    response = client.post(f"/api/v1{path}", json.dumps(body), content_type="application/json",
                           headers={"Authorization": f"Bearer {key}", "Idempotency-Key": idem})
    assert response.status_code in (200, 201), response.content


ORDER = {"order_id": "O1", "customer_id": "C1", "placed_at": "2025-03-01T10:00:00Z",
         "status": "paid", "total": "100"}


def test_api_writes_record_creations_and_status_changes_once_with_their_source() -> None:
    key = apikey_create(name="backend")[1]
    client = Client()
    post(client, key, "/customers", {"customer_id": "C1"}, "1")
    post(client, key, "/orders", ORDER, "2")
    post(client, key, "/orders", ORDER, "2")  # a retry: replayed, nothing written
    post(client, key, "/orders", ORDER, "3")  # the same data again: no change
    post(client, key, "/orders", {**ORDER, "status": "refunded"}, "4")
    post(client, key, "/orders", {**ORDER, "status": "shipped"}, "5")
    post(client, key, "/orders", {**ORDER, "status": "delivered"}, "6")
    post(client, key, "/orders", {**ORDER, "status": "completed"}, "7")  # late: no step back

    rows = list(Change.objects.values_list(
        "kind", "old_status", "new_status", "old_fulfillment", "new_fulfillment", "source"))
    assert rows == [
        (ChangeKind.CUSTOMER_CREATED, "", "", "", "", "api:backend"),
        (ChangeKind.ORDER_CREATED, "", "paid", "", "", "api:backend"),
        (ChangeKind.ORDER_STATUS_CHANGED, "paid", "refunded", "", "", "api:backend"),
        (ChangeKind.ORDER_STATUS_CHANGED, "refunded", "paid", "", "shipped", "api:backend"),
        (ChangeKind.ORDER_STATUS_CHANGED, "paid", "paid", "shipped", "delivered", "api:backend"),
    ]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_file_import_records_nothing_unless_asked(tmp_path: Path) -> None:
    customers = write(tmp_path, "customers.csv", "customer_id,email\nC1,a@x.ir\nC2,b@x.ir\n")
    orders = write(tmp_path, "orders.csv", "order_id,customer_id,placed_at,status,total\n"
                   "O1,C1,2024-01-01,paid,10\nO2,C2,2024-02-01,delivered,20\n")
    services.customers_import(path=customers)
    services.orders_import(path=orders)
    assert Change.objects.count() == 0

    more = write(tmp_path, "more.csv", "order_id,customer_id,placed_at,status,total\n"
                 "O2,C2,2024-02-01,delivered,20\nO3,C1,2024-03-01,shipped,30\n")
    services.orders_import(path=more, notify=True)
    rows = list(Change.objects.values_list("kind", "order__external_id", "new_fulfillment",
                                           "source"))
    assert rows == [(ChangeKind.ORDER_CREATED, "O3", "shipped", "import:more.csv")]


def test_a_rejected_write_records_no_change() -> None:
    with pytest.raises(ImportRejected):
        services.orders_upsert(items=[
            {**ORDER, "customer_id": "C404"},
        ])
    with pytest.raises(ImportRejected):
        services.customers_upsert(items=[{"customer_id": "C9"}, {"customer_id": ""}])
    assert Change.objects.count() == 0
    assert not Customer.objects.exists()


def test_each_consumer_gets_every_change_in_order_with_its_own_cursor(
    consumers: dict[str, list[int]],
) -> None:
    services.customers_upsert(items=[{"customer_id": "C1"}, {"customer_id": "C2"}])
    services.order_upsert(data=ORDER)
    ids = list(Change.objects.order_by("id").values_list("id", flat=True))
    assert len(ids) == 3
    now = timezone.now()

    assert changes.changes_dispatch(now=now, limit=2) == {"a": 2, "b": 2}
    assert changes.changes_dispatch(now=now) == {"a": 1, "b": 1}
    assert changes.changes_dispatch(now=now) == {"a": 0, "b": 0}
    assert consumers == {"a": ids, "b": ids}
    assert changes.changes_pending(consumer="a") == 0


def test_a_failing_consumer_is_retried_without_blocking_the_others_then_skips(
    consumers: dict[str, list[int]],
) -> None:
    attempts: list[int] = []

    def flaky(change: Change) -> None:
        attempts.append(change.pk)
        raise RuntimeError("down")

    changes.register("flaky", flaky)
    services.customer_upsert(data={"customer_id": "C1"})
    services.customer_upsert(data={"customer_id": "C2"})
    first, second = Change.objects.order_by("id").values_list("id", flat=True)
    now = timezone.now()

    for _ in range(changes.MAX_FAILURES - 1):
        assert changes.changes_dispatch(now=now)["flaky"] == 0
    assert consumers["a"] == [first, second]
    assert ChangeCursor.objects.get(consumer="flaky").last_id == 0
    assert attempts == [first] * (changes.MAX_FAILURES - 1)

    changes.changes_dispatch(now=now)  # the last attempt on `first` gives up on it
    assert ChangeCursor.objects.get(consumer="flaky").last_id >= first
    assert attempts.count(first) == changes.MAX_FAILURES
    assert second in attempts


def test_a_consumer_writes_and_its_cursor_move_together(
    consumers: dict[str, list[int]],
) -> None:
    """A consumer that fails after writing leaves no write behind (same transaction)."""

    def half(change: Change) -> None:
        Customer.objects.create(external_id=f"side-effect-{change.pk}")
        raise RuntimeError("after the write")

    changes.register("half", half)
    services.customer_upsert(data={"customer_id": "C1"})
    changes.changes_dispatch(now=timezone.now())
    assert not Customer.objects.filter(external_id__startswith="side-effect").exists()


def test_a_committed_write_nudges_the_worker_and_a_rolled_back_one_does_not(
    django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    nudges: list[str] = []
    monkeypatch.setattr(changes, "dispatch_changes_now", lambda: nudges.append("go"))
    with django_capture_on_commit_callbacks(execute=True):
        services.customer_upsert(data={"customer_id": "C1"})
    assert nudges == ["go"]
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ImportRejected):
        services.customer_upsert(data={"customer_id": ""})
    assert nudges == ["go"]


def test_the_dispatcher_runs_every_minute_on_the_worker() -> None:
    from huey.contrib.djhuey import HUEY

    import vafa.messaging.flows.tasks  # noqa: F401 (the worker imports every app's tasks)

    periodic = {task.__name__ for task in HUEY._registry._periodic_tasks}
    assert {"dispatch_changes", "advance_flows", "scan_flows"} <= periodic


def test_the_cli_notifies_only_with_notify(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from vafa.cli import app

    customers = write(tmp_path, "customers.csv", "customer_id,email\nC1,a@x.ir\n")
    orders = write(tmp_path, "orders.csv", "order_id,customer_id,placed_at,status,total\n"
                   "O1,C1,2024-01-01,paid,10\n")
    runner = CliRunner()
    assert runner.invoke(app, ["import", "customers", str(customers)]).exit_code == 0
    assert Change.objects.count() == 0
    result = runner.invoke(app, ["import", "orders", str(orders), "--notify"])
    assert result.exit_code == 0, result.output
    assert list(Change.objects.values_list("kind", flat=True)) == [ChangeKind.ORDER_CREATED]
