"""The change feed: the one seam from the shop's data to everything that reacts to it.

Writers (the API, the webhooks, and file imports run with `notify=True`) record each customer
created, order created and order status change as a `Change` row *in the same transaction* as
the write (`changes_record`), so a change exists exactly when the write was committed.
Consumers register a handler by name (`register("flows", handler)`); `changes_dispatch(now=…)`
hands them the new rows in `id` order, each consumer with its own cursor (`ChangeCursor`).

Delivery is at least once and consumers must be idempotent: the handler and the cursor move run
in one transaction, so a handler that only writes to the database sees each change once, but a
handler with outside effects may see a change again after a crash. A handler that raises keeps
its cursor where it was and is retried at the next dispatch; after `MAX_FAILURES` attempts on the
same change it is skipped and logged, so one poisoned row cannot stop a consumer for ever.

Dispatch runs every minute (`dispatch_changes`, a huey periodic task) and, for low latency, as a
task enqueued when a transaction that recorded changes commits (`dispatch_soon`).

Importing years of history must not send thank-you mails: file imports record nothing unless
asked (`records_import(..., notify=True)`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task, lock_task

from vafa.customers.models import Change, ChangeCursor, ChangeKind

logger = logging.getLogger(__name__)

Handler = Callable[[Change], None]
OrderState = tuple[int, int, str, str, Decimal]
"""An order as the feed compares it: (pk, customer pk, status, fulfilment, refunded amount)."""
MAX_FAILURES = 5
BATCH = 500

_handlers: dict[str, Handler] = {}


def register(name: str, handler: Handler) -> Handler:
    """Hand every change to `handler(change)` (at least once, in `id` order). A consumer seen
    for the first time starts at the beginning of the feed (the feed only holds changes written
    to be reacted to; a consumer that must not act on old ones checks `change.created_at`).
    Registering a name again replaces its handler."""
    if not name or len(name) > 100:
        raise ValueError("a consumer needs a name of 1 to 100 characters")
    _handlers[name] = handler
    return handler


def unregister(name: str) -> None:
    _handlers.pop(name, None)


def registered() -> list[str]:
    """The consumers' names, in registration order."""
    return list(_handlers)


@dataclass(frozen=True)
class PendingChange:
    """A change to record; see `Change` for the fields."""

    kind: str
    customer_id: int
    order_id: int | None = None
    old_status: str = ""
    new_status: str = ""
    old_fulfillment: str = ""
    new_fulfillment: str = ""


def changes_record(*, changes: Sequence[PendingChange], source: str, now: datetime) -> int:
    """Append `changes` to the feed in the caller's transaction and dispatch them soon after it
    commits. Returns how many were recorded."""
    if not changes:
        return 0
    Change.objects.bulk_create(
        Change(
            kind=c.kind, customer_id=c.customer_id, order_id=c.order_id,
            old_status=c.old_status, new_status=c.new_status,
            old_fulfillment=c.old_fulfillment, new_fulfillment=c.new_fulfillment,
            source=source[:120], created_at=now,
        )
        for c in changes
    )
    transaction.on_commit(dispatch_soon)
    return len(changes)


def order_changes(
    before: dict[str, OrderState],
    after: dict[str, OrderState],
) -> list[PendingChange]:
    """The changes between two snapshots of orders, each `external_id → (order pk, customer pk,
    status, fulfilment, refunded amount)`: an order only in `after` was created; one whose status,
    fulfilment or refunded amount differs changed (a second partial refund keeps the status
    `partially_refunded` but must still reach loyalty, which reverses points pro rata)."""
    found: list[PendingChange] = []
    for key, (pk, customer_id, status, fulfillment, refunded) in after.items():
        old = before.get(key)
        if old is None:
            found.append(PendingChange(
                ChangeKind.ORDER_CREATED, customer_id, pk, new_status=status,
                new_fulfillment=fulfillment,
            ))
        elif (old[2], old[3], old[4]) != (status, fulfillment, refunded):
            found.append(PendingChange(
                ChangeKind.ORDER_STATUS_CHANGED, customer_id, pk, old_status=old[2],
                new_status=status, old_fulfillment=old[3], new_fulfillment=fulfillment,
            ))
    return found


def customers_created(before: Iterable[str], after: dict[str, int]) -> list[PendingChange]:
    """`customer_created` for every external id in `after` (id → pk) that `before` lacked."""
    known = set(before)
    return [
        PendingChange(ChangeKind.CUSTOMER_CREATED, pk)
        for key, pk in after.items() if key not in known
    ]


def _cursor(name: str, now: datetime) -> ChangeCursor:
    """The consumer's cursor, locked; a new consumer starts at the beginning of the feed."""
    cursor = ChangeCursor.objects.select_for_update().filter(consumer=name).first()
    if cursor is None:
        ChangeCursor.objects.get_or_create(consumer=name, defaults={"updated_at": now})
        cursor = ChangeCursor.objects.select_for_update().get(consumer=name)
    return cursor


def _handle_one(name: str, handler: Handler, change_id: int, now: datetime) -> bool:
    """Run the handler on one change and move the cursor past it, in one transaction.
    False when the handler failed (the cursor stays, to retry later); True when the cursor
    moved past the change (handled, or given up after `MAX_FAILURES`)."""
    try:
        with transaction.atomic():
            cursor = _cursor(name, now)
            if cursor.last_id >= change_id:
                return True  # another dispatcher handled it meanwhile
            change = Change.objects.select_related("customer", "order").get(pk=change_id)
            handler(change)
            ChangeCursor.objects.filter(pk=cursor.pk).update(
                last_id=change_id, failing_id=None, failures=0, updated_at=now
            )
            return True
    except Exception:
        logger.exception("change consumer %r failed on change %s", name, change_id)
    with transaction.atomic():
        cursor = _cursor(name, now)
        failures = cursor.failures + 1 if cursor.failing_id == change_id else 1
        if failures >= MAX_FAILURES:
            logger.error(
                "change consumer %r skips change %s after %s failures", name, change_id, failures
            )
            ChangeCursor.objects.filter(pk=cursor.pk).update(
                last_id=change_id, failing_id=None, failures=0, updated_at=now
            )
            return True
        ChangeCursor.objects.filter(pk=cursor.pk).update(
            failing_id=change_id, failures=failures, updated_at=now
        )
    return False


def changes_dispatch(*, now: datetime, limit: int = BATCH) -> dict[str, int]:
    """Hand each registered consumer up to `limit` changes after its cursor, in order; stop a
    consumer at its first failure (it is retried next time). Returns changes handled per
    consumer."""
    done: dict[str, int] = {}
    for name, handler in list(_handlers.items()):
        with transaction.atomic():
            start = _cursor(name, now).last_id
        ids = list(
            Change.objects.filter(id__gt=start).order_by("id").values_list("id", flat=True)[:limit]
        )
        count = 0
        for change_id in ids:
            if not _handle_one(name, handler, change_id, now):
                break
            count += 1
        done[name] = count
    return done


def changes_pending(*, consumer: str) -> int:
    """How many changes the consumer has not handled yet (for status pages and tests)."""
    cursor = ChangeCursor.objects.filter(consumer=consumer).first()
    return Change.objects.filter(id__gt=cursor.last_id if cursor else 0).count()


def dispatch_soon() -> None:
    """Ask the worker to dispatch now (called when a transaction that recorded changes
    commits); the periodic task catches up if the queue is unreachable."""
    try:
        dispatch_changes_now()
    except Exception:  # the write is committed; losing the nudge only delays its consumers
        logger.warning("could not enqueue the change dispatch; the periodic task will run it",
                       exc_info=True)


@db_task()
@lock_task("vafa-changes-dispatch")
def dispatch_changes_now() -> dict[str, int]:
    """Dispatch right after a commit (low latency)."""
    return changes_dispatch(now=timezone.now())


@db_periodic_task(crontab(minute="*"))
@lock_task("vafa-changes-dispatch-periodic")
def dispatch_changes() -> dict[str, int]:
    """Every minute: dispatch whatever the commit-time nudges missed."""
    return changes_dispatch(now=timezone.now())
