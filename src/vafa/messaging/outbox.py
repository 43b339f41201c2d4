"""Delivery: claim due messages, check them again, send them, record what happened.

The outbox table is the source of truth. A flush repeats:

1. **Claim** up to `batch_size` due rows (queued or deferred with `due_at <= now`, or `sending`
   rows whose claim expired because their worker died) in one short transaction: on
   PostgreSQL with `SELECT … FOR UPDATE SKIP LOCKED`, so parallel workers take disjoint rows;
   on SQLite the `IMMEDIATE` transaction serialises claimers. Claimed rows become `sending`
   with this flush's `claim_token` and a lease.
2. **Check** each message at send time against one snapshot of the batch's consent,
   suppressions and preferences (an unsubscribe recorded before the batch is honoured), then
   for marketing the quiet hours, weekend and caps in the customer's zone.
3. **Send** through the channel, and only when the provider accepted it mark it `sent`, in
   its own transaction guarded by the claim token (two prepared statements: the row and its
   log entry). Outcomes are deliberately not batched: a batch committed after its last send
   would, after a kill, re-send every message the provider had already accepted in it. Transient failures retry with exponential
   back-off (or the provider's `retry_after`) up to the shop's attempt limit; permanent ones
   stop at once and may suppress the address.

If the flush stops (an exception, Ctrl-C), every claimed row it did not finish is released
back to `queued` on the way out; if the process is killed, the rows come back when their lease
expires. Either way a later flush sends each message once: the only message that can go
twice is one whose provider accepted it in the instant before the process died, and it carries
the same `Message-ID` both times.
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import Enum
from functools import lru_cache
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Field, Q
from django.utils import timezone

from vafa.messaging.channels import build_channels
from vafa.messaging.channels.base import (
    Channel,
    Delivery,
    NotConfigured,
    PermanentFailure,
    Recipient,
    TransientFailure,
)
from vafa.messaging.conf import MessagingEnv, redact
from vafa.messaging.models import (
    PENDING_STATUSES,
    DeliveryLog,
    LogEvent,
    MessageKind,
    MessagingSettings,
    OutboxMessage,
    PolicyAction,
    Status,
)
from vafa.messaging.policy import CAP, FREQUENCY, customer_zone, retry_delay, send_window
from vafa.messaging.selectors import (
    SendState,
    customer_rules,
    lookback_days,
    messaging_config,
    messaging_settings,
    send_state,
)
from vafa.messaging.services import push_subscriptions_remove, suppression_add

logger = logging.getLogger("vafa.messaging")
CLAIM_LEASE = timedelta(minutes=10)
BATCH_SIZE = 100


@dataclass
class FlushResult:
    """What one flush did, message by message outcome."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    deferred: int = 0
    failed: int = 0
    bounced: int = 0
    suppressed: int = 0
    capped: int = 0
    dropped: int = 0
    released: int = 0
    lost_claims: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class RateLimiter:
    """At most `per_second` sends per second from this worker (0: no limit)."""

    def __init__(
        self,
        per_second: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = 1 / per_second if per_second > 0 else 0.0
        self.sleep, self.clock = sleep, clock
        self.next_at = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        now = self.clock()
        if now < self.next_at:
            self.sleep(self.next_at - now)
            now = self.next_at
        self.next_at = now + self.interval


class _Clock:
    """`now` as given, moving forward with real time while the flush runs (so timestamps stay
    ordered in a long flush and exactly `now` in a test that freezes it)."""

    def __init__(self, start: datetime) -> None:
        self.start, self.t0 = start, time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.t0)


def claimable(now: datetime) -> Q:
    return Q(status__in=sorted(PENDING_STATUSES), due_at__lte=now) | Q(
        status=Status.SENDING, locked_until__lte=now
    )


def outbox_claim(
    *, now: datetime, size: int, token: str, skip_channels: Collection[str] = ()
) -> list[int]:
    """Claim up to `size` due messages for the flush holding `token`; returns their ids.
    Messages on `skip_channels` (switched off in the admin) are left waiting, untouched."""
    with transaction.atomic():
        queryset = OutboxMessage.objects.filter(claimable(now)).order_by("due_at", "id")
        if skip_channels:
            queryset = queryset.exclude(channel__in=sorted(skip_channels))
        if connection.features.has_select_for_update_skip_locked:
            queryset = queryset.select_for_update(skip_locked=True)
        ids = list(queryset.values_list("id", flat=True)[:size])
        if ids:
            OutboxMessage.objects.filter(id__in=ids).update(
                status=Status.SENDING, claim_token=token, locked_until=now + CLAIM_LEASE,
                updated_at=now,
            )
    return ids


def outbox_release(*, token: str, now: datetime) -> int:
    """Give back every message the flush holding `token` claimed but did not finish."""
    with transaction.atomic():
        ids = list(
            OutboxMessage.objects.filter(claim_token=token, status=Status.SENDING).values_list(
                "id", flat=True
            )
        )
        if not ids:
            return 0
        OutboxMessage.objects.filter(id__in=ids, claim_token=token).update(
            status=Status.QUEUED, claim_token="", locked_until=None, updated_at=now
        )
        DeliveryLog.objects.bulk_create(
            [
                DeliveryLog(message_id=i, event=LogEvent.RELEASED, reason="flush stopped", at=now)
                for i in ids
            ]
        )
    return len(ids)


def _field(model: Any, name: str) -> Field[Any, Any]:
    field = model._meta.get_field(name)
    if not isinstance(field, Field):
        raise TypeError(f"{name} is not a column of {model.__name__}")
    return field


@lru_cache(maxsize=32)
def _finish_sql(vendor: str, columns: tuple[str, ...]) -> tuple[str, str]:
    """The two statements of an outcome (`vendor` is part of the cache key only): set
    `columns` on a row still held by its claim, and add its log entry."""

    def quote(name: str | None) -> str:
        return connection.ops.quote_name(str(name))

    def column(model: Any, name: str) -> str:
        return quote(_field(model, name).column)

    assignments = ", ".join(f"{column(OutboxMessage, c)} = %s" for c in columns)
    update = (
        f"UPDATE {quote(OutboxMessage._meta.db_table)} SET {assignments} "
        f"WHERE {column(OutboxMessage, 'id')} = %s AND {column(OutboxMessage, 'claim_token')}"
        f" = %s AND {column(OutboxMessage, 'status')} = %s"
    )
    names = ("message", "event", "reason", "provider_message_id", "at")
    insert = (
        f"INSERT INTO {quote(DeliveryLog._meta.db_table)} "
        f"({', '.join(column(DeliveryLog, n) for n in names)}) "
        f"VALUES ({', '.join(['%s'] * len(names))})"
    )
    return update, insert


_CONVERTED = frozenset({"DateTimeField", "JSONField", "DecimalField"})


def _db_values(model: Any, fields: Sequence[tuple[str, Any]]) -> list[Any]:
    """Each value as its field writes it: datetimes, JSON and decimals through the field's
    `get_db_prep_save` (the database's own conversion), choices as plain strings, and text,
    numbers and None as they are (what those fields' conversion would give)."""
    values = []
    for name, value in fields:
        if isinstance(value, Enum):
            value = value.value
        elif isinstance(value, datetime) and value.tzinfo is not None:
            # What DateTimeField.get_db_prep_save ends in for an aware datetime.
            value = connection.ops.adapt_datetimefield_value(value)
        elif value is not None and not isinstance(value, str | int):
            field = _field(model, name)
            if field.get_internal_type() in _CONVERTED:
                value = field.get_db_prep_save(value, connection)
        values.append(value)
    return values


class _Flush:
    def __init__(
        self,
        *,
        now: datetime,
        env: MessagingEnv,
        policy: MessagingSettings,
        channels: Mapping[str, Channel],
        sleep: Callable[[float], None],
    ) -> None:
        self.now = now
        self.clock = _Clock(now)
        self.env = env
        self.policy = policy
        self.channels = channels
        self.token = uuid.uuid4().hex
        self.result = FlushResult()
        self.limiters = {
            name: RateLimiter(env.rates.get(name, 0), sleep=sleep) for name in channels
        }

    # -- writes, each guarded by the claim -----------------------------------------------------

    def _finish(
        self,
        message: OutboxMessage,
        *,
        event: str,
        reason: str = "",
        log_provider_id: str = "",
        **fields: Any,
    ) -> bool:
        at = self.clock.now()
        reason = redact(reason, self.env.secrets)
        # Two prepared statements in one transaction instead of the ORM's `update()` and
        # `create()`, whose query building cost more than the SMTP send: one row per outcome,
        # committed at once, so a message the provider accepted is marked sent before the next
        # one goes (a kill then re-sends nothing but the message in flight).
        values = [
            ("claim_token", ""), ("locked_until", None), ("updated_at", at),
            ("status_reason", reason[:200]), *fields.items(),
        ]
        update_sql, log_sql = _finish_sql(connection.vendor, tuple(name for name, _ in values))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                update_sql,
                [*_db_values(OutboxMessage, values), message.pk, self.token, Status.SENDING.value],
            )
            updated = cursor.rowcount
            if updated:
                cursor.execute(log_sql, _db_values(DeliveryLog, [
                    ("message", message.pk), ("event", event), ("reason", reason[:500]),
                    ("provider_message_id", log_provider_id[:255]), ("at", at),
                ]))
        if not updated:
            # Our lease expired and another worker took the row over: its outcome wins.
            self.result.lost_claims += 1
            logger.warning("outbox message %s: claim lost before its outcome was saved", message.pk)
        return bool(updated)

    def _final(self, message: OutboxMessage, status: str, reason: str, counter: str) -> None:
        event = {
            Status.SUPPRESSED: LogEvent.SUPPRESSED,
            Status.CAPPED: LogEvent.CAPPED,
            Status.DROPPED: LogEvent.DROPPED,
            Status.FAILED: LogEvent.FAILED,
            Status.BOUNCED: LogEvent.BOUNCED,
        }[Status(status)]
        if self._finish(message, event=event, reason=reason, status=status):
            setattr(self.result, counter, getattr(self.result, counter) + 1)

    def _defer(self, message: OutboxMessage, until: datetime, reason: str) -> None:
        if self._finish(
            message, event=LogEvent.DEFERRED, reason=f"{reason} until {until.isoformat()}",
            status=Status.DEFERRED, due_at=until,
        ):
            self.result.deferred += 1

    # -- one message ---------------------------------------------------------------------------

    def process(self, message: OutboxMessage, state: SendState) -> None:
        customer = message.customer
        now = self.clock.now()
        if message.expires_at is not None and message.expires_at <= now:
            self._final(message, Status.DROPPED, "expired", "dropped")
            return
        decision = state.decide(
            customer=customer, channel=message.channel, kind=message.kind, topic=message.topic,
            now=now,
        )
        if not decision.allowed:
            self._final(message, Status.SUPPRESSED, decision.reason, "suppressed")
            return
        if message.kind == MessageKind.MARKETING and not self._timing_allows(message, state, now):
            return
        channel = self.channels.get(message.channel)
        try:
            if channel is None:
                raise NotConfigured(f"no {message.channel} channel")
            self.limiters[message.channel].wait()
            recipient = Recipient(
                customer=customer,
                address=state.address(customer, message.channel),
                push=tuple(state.push.get(customer.pk, ())),
            )
            delivery = channel.send(message, recipient)
        except TransientFailure as failure:
            self._transient(message, failure)
            return
        except PermanentFailure as failure:
            self._permanent(message, failure)
            return
        except Exception as exc:  # a bug or an unexpected library error: retry, never lose it
            # The traceback is redacted by hand: an exception's text may hold a URL with a key.
            trace = redact("".join(traceback.format_exception(exc)), self.env.secrets)
            logger.error("outbox message %s: unexpected error while sending\n%s", message.pk, trace)
            self._transient(message, TransientFailure(f"unexpected error: {type(exc).__name__}"))
            return
        self._sent(message, delivery, state)

    def _timing_allows(self, message: OutboxMessage, state: SendState, now: datetime) -> bool:
        customer = message.customer
        rules = customer_rules(self.policy, state.preferences.get(customer.pk))
        window = send_window(
            now=now, zone=customer_zone(customer.timezone), rules=rules,
            sent_at=state.marketing_sent_at.get(customer.pk, ()),
        )
        if window.allowed:
            return True
        capped = window.reason in (CAP, FREQUENCY)
        action = self.policy.cap_action if capped else self.policy.quiet_action
        if action == PolicyAction.DROP:
            status, counter = (Status.CAPPED, "capped") if capped else (Status.DROPPED, "dropped")
            self._final(message, status, window.reason, counter)
        elif message.expires_at is not None and window.not_before >= message.expires_at:
            self._final(message, Status.DROPPED, f"{window.reason}: expires first", "dropped")
        else:
            self._defer(message, window.not_before, window.reason)
        return False

    def _sent(self, message: OutboxMessage, delivery: Delivery, state: SendState) -> None:
        at = self.clock.now()
        if self._finish(
            message, event=LogEvent.SENT, log_provider_id=delivery.provider_message_id,
            status=Status.SENT, sent_at=at, attempts=message.attempts + 1,
            provider=delivery.provider, provider_message_id=delivery.provider_message_id[:255],
            to_address=delivery.to_address[:1000],
        ):
            self.result.sent += 1
            if message.kind == MessageKind.MARKETING:
                state.marketing_sent_at.setdefault(message.customer_id, []).append(at)
        if delivery.gone:
            push_subscriptions_remove(endpoints=delivery.gone)

    def _transient(self, message: OutboxMessage, failure: TransientFailure) -> None:
        attempts = message.attempts + 1
        if attempts >= self.policy.max_attempts:
            if self._finish(
                message, event=LogEvent.FAILED, reason=f"gave up: {failure.reason}",
                status=Status.FAILED, attempts=attempts,
            ):
                self.result.failed += 1
            return
        delay = retry_delay(
            attempts=attempts, base_seconds=self.policy.retry_base_seconds,
            max_seconds=self.policy.retry_max_seconds, jitter_seed=message.pk,
        )
        delay = max(delay, failure.retry_after or 0)
        until = self.clock.now() + timedelta(seconds=delay)
        if self._finish(
            message, event=LogEvent.RETRY, reason=f"{failure.reason}; retry {attempts + 1}",
            status=Status.DEFERRED, due_at=until, attempts=attempts,
        ):
            self.result.retried += 1

    def _permanent(self, message: OutboxMessage, failure: PermanentFailure) -> None:
        status = Status.BOUNCED if failure.bounced else Status.FAILED
        if self._finish(
            message, event=LogEvent.BOUNCED if failure.bounced else LogEvent.FAILED,
            reason=failure.reason, status=status, attempts=message.attempts + 1,
        ):
            self.result.bounced += failure.bounced
            self.result.failed += not failure.bounced
        if failure.suppress:
            suppression_add(
                channel=message.channel, reason=failure.suppress, customer=message.customer,
                source=f"delivery:{message.pk}", now=self.clock.now(),
            )
        if failure.gone:
            push_subscriptions_remove(endpoints=failure.gone)

    # -- the loop ------------------------------------------------------------------------------

    def run(self, *, limit: int | None, batch_size: int) -> FlushResult:
        lookback = lookback_days(self.policy)
        try:
            while limit is None or self.result.claimed < limit:
                size = batch_size if limit is None else min(batch_size, limit - self.result.claimed)
                ids = outbox_claim(
                    now=self.now, size=size, token=self.token, skip_channels=self.env.disabled
                )
                if not ids:
                    break
                self.result.claimed += len(ids)
                messages = list(
                    OutboxMessage.objects.filter(id__in=ids, claim_token=self.token)
                    .select_related("customer")
                    .order_by("due_at", "id")
                )
                state = send_state(
                    [m.customer for m in messages], now=self.now, lookback_days=lookback
                )
                for message in messages:
                    self.process(message, state)
        finally:
            self.result.released = outbox_release(token=self.token, now=self.clock.now())
        return self.result


def _log_switched_off(env: MessagingEnv, now: datetime) -> None:
    """Say how many due messages wait for a channel switched off in the admin (they stay
    queued, no attempt used, nothing written per message, and go once it is on again)."""
    if not env.disabled:
        return
    waiting = (
        OutboxMessage.objects.filter(claimable(now), channel__in=sorted(env.disabled))
        .values_list("channel")
        .annotate(n=Count("id"))
    )
    for channel, count in waiting:
        logger.warning("%s is switched off: %d due message(s) wait for it", channel, count)


def outbox_flush(
    *,
    now: datetime | None = None,
    limit: int | None = None,
    batch_size: int = BATCH_SIZE,
    channels: Mapping[str, Channel] | None = None,
    env: MessagingEnv | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> FlushResult:
    """Send every message due at `now` (at most `limit`), then return what happened.

    Channels are built from the environment for this flush (or given, for tests) and closed at
    the end. Safe to run in several processes at once and to interrupt at any moment.
    """
    now = now or timezone.now()
    env = env or messaging_config()
    own_channels = channels is None
    active = build_channels(env) if channels is None else channels
    try:
        for channel in active.values():
            channel.open()
        flush = _Flush(now=now, env=env, policy=messaging_settings(), channels=active, sleep=sleep)
        result = flush.run(limit=limit, batch_size=batch_size)
        _log_switched_off(env, now)
        return result
    finally:
        if own_channels:
            for channel in active.values():
                channel.close()
