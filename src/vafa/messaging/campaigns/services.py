"""Writes of the campaigns app: schedule, start, enqueue, pause, resume, cancel, finish, and
the periodic tick that drives them.

Guarantees, and how they are kept:

- **Nobody is sent twice, nobody skipped.** Recipients are a snapshot taken once at the start
  (`CampaignRecipient`, unique per customer). Each recipient's message has the outbox dedupe key
  (customer, `campaign:<id>`, step `send`, no occurrence), so enqueueing again after a crash, a
  pause or a second worker finds the existing row. Enqueueing walks the snapshot by id with a
  cursor saved in the same transaction as each chunk's rows.
- **Pause means stop.** Pausing parks the campaign's pending messages (`due_at` set to
  `PARKED_AT`, which no flush reaches) in the transaction that changes the status; the enqueue
  loop checks the status under the same row lock before inserting a chunk, so no chunk slips in
  after a pause. Messages a worker had already claimed finish (at most one flush batch). Resume
  makes the parked messages due now; the send-time checks then run as for any message.
- **Finished means final.** A campaign becomes `finished` only once every recipient's message was
  enqueued and none is queued, deferred or being sent.
- **Bad lists stop themselves.** After `min_sample` messages reached a provider since the start
  or the last resume, a bounce or complaint rate above the campaign's limit pauses it, logged
  with the rate; a person resumes it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q

from vafa.core.errors import ConflictError, ValidationError
from vafa.customers.models import Channel
from vafa.messaging.campaigns.bulk import (
    BulkItem,
    outbox_batch_insert,
    outbox_batch_prepare,
    rows_insert,
)
from vafa.messaging.campaigns.models import (
    Campaign,
    CampaignEvent,
    CampaignEventKind,
    CampaignRecipient,
    CampaignStatus,
)
from vafa.messaging.campaigns.selectors import (
    PARKED_AT,
    TemplateChooser,
    assignment_key,
    campaign_audience,
    campaign_health,
    campaign_unfinished,
    channel_for,
    variant_for,
    variant_weights,
)
from vafa.messaging.compose import message_language, template_check
from vafa.messaging.errors import TemplateError, TemplateNotFound
from vafa.messaging.models import (
    PENDING_STATUSES,
    DeliveryLog,
    LogEvent,
    MessageKind,
    MessageTemplate,
    OutboxMessage,
    Status,
)
from vafa.messaging.selectors import CUSTOMER_ROW_FIELDS, CustomerRow, send_state

logger = logging.getLogger("vafa.messaging.campaigns")
STEP = "send"
CHUNK = 1000
_PENDING = sorted(PENDING_STATUSES)


def _event(campaign: Campaign, event: str, *, now: datetime, reason: str = "", actor: str = "") -> None:
    CampaignEvent.objects.create(
        campaign=campaign, event=event, reason=reason[:500], actor=actor[:150], at=now
    )


def _locked(campaign: Campaign) -> Campaign:
    """The campaign row, locked for this transaction (PostgreSQL; SQLite's IMMEDIATE
    transactions already serialise writers)."""
    return Campaign.objects.select_for_update().get(pk=campaign.pk)


def _require_status(campaign: Campaign, *allowed: str, action: str) -> None:
    if campaign.status not in allowed:
        raise ConflictError(f"a {campaign.status} campaign cannot be {action}", field="status")


def _save(campaign: Campaign, *fields: str) -> None:
    campaign.save(update_fields=list(fields))


def campaign_check(campaign: Campaign) -> None:
    """Refuse a campaign that cannot be sent: unknown channels, no variant, a variant without a
    template for one of the channels, or a template that does not render."""
    channels = campaign.channels
    if not channels:
        raise ValidationError("choose at least one channel", field="channel_order")
    unknown = [c for c in channels if c not in Channel.values]
    if unknown:
        raise ValidationError(f"unknown channel {unknown[0]!r}", field="channel_order")
    variants = list(campaign.variants.all())
    if not variants:
        raise ValidationError("add at least one variant", field="variants")
    for variant in variants:
        for channel in channels:
            templates = list(
                MessageTemplate.objects.filter(key=variant.template_key, channel=channel)
            )
            if not templates:
                raise ValidationError(
                    f"variant {variant.name}: no {channel} template {variant.template_key!r}",
                    field="variants",
                )
            for template in templates:
                try:
                    template_check(template)
                except TemplateError as exc:
                    raise ValidationError(
                        f"variant {variant.name}, {template}: {exc}", field="variants"
                    ) from None


@transaction.atomic
def campaign_schedule(
    *, campaign: Campaign, now: datetime, send_at: datetime | None = None, actor: str = ""
) -> Campaign:
    """Check a draft and schedule it for `send_at` (default: now, i.e. the next tick)."""
    campaign = _locked(campaign)
    _require_status(campaign, CampaignStatus.DRAFT, action="scheduled")
    campaign_check(campaign)
    campaign.send_at = send_at or campaign.send_at or now
    campaign.status, campaign.status_reason = CampaignStatus.SCHEDULED, ""
    _save(campaign, "send_at", "status", "status_reason")
    _event(campaign, CampaignEventKind.SCHEDULED, now=now, actor=actor,
           reason=f"send at {campaign.send_at.isoformat()}")
    return campaign


def _recipients_insert(rows: Sequence[tuple[int, int, str]]) -> int:
    """Insert snapshot rows (campaign id, customer id, variant), skipping any already there;
    returns how many were offered. Not `bulk_create`: building a model instance per recipient
    cost more than choosing their variant."""
    by_name = {f.name: str(f.column) for f in CampaignRecipient._meta.concrete_fields}
    campaign, customer = by_name["campaign"], by_name["customer"]
    rows_insert(
        CampaignRecipient._meta.db_table, [campaign, customer, by_name["variant"]],
        [campaign, customer], rows,
    )
    return len(rows)


@transaction.atomic
def campaign_start(*, campaign: Campaign, now: datetime, actor: str = "") -> Campaign:
    """Take the snapshot of the segment (each customer with their variant) and start sending.
    Messages are created by `campaign_enqueue`, which the tick (or the caller) runs next."""
    campaign = _locked(campaign)
    _require_status(campaign, CampaignStatus.SCHEDULED, action="started")
    if campaign.send_at is not None and campaign.send_at > now:
        raise ConflictError("the campaign is scheduled for later", field="send_at")
    weights = variant_weights(campaign)
    if not weights:
        raise ValidationError("add at least one variant", field="variants")
    key = assignment_key()
    customer_ids = campaign_audience(campaign, now=now).order_by("pk").values_list("pk", flat=True)
    count = 0
    chunk: list[tuple[int, int, str]] = []
    for customer_id in customer_ids.iterator(chunk_size=CHUNK * 10):
        chunk.append((
            campaign.pk, customer_id,
            variant_for(campaign_id=campaign.pk, customer_id=customer_id, variants=weights, key=key),
        ))
        if len(chunk) >= CHUNK * 5:
            count += _recipients_insert(chunk)
            chunk = []
    count += _recipients_insert(chunk)
    campaign.status, campaign.status_reason = CampaignStatus.SENDING, ""
    campaign.started_at = campaign.health_since = now
    campaign.recipients_count = count
    _save(campaign, "status", "status_reason", "started_at", "health_since", "recipients_count")
    _event(campaign, CampaignEventKind.STARTED, now=now, actor=actor,
           reason=f"{count} recipients")
    return campaign


@dataclass
class EnqueueProgress:
    """What one `campaign_enqueue` call did."""

    created: int = 0
    existing: int = 0
    held_out: int = 0
    template_errors: int = 0
    done: bool = False
    stopped: str = ""  # why it stopped early: the campaign is no longer sending
    errors: dict[int, str] = field(default_factory=dict)


def campaign_enqueue(
    *, campaign: Campaign, now: datetime, chunk_size: int = CHUNK, limit: int | None = None
) -> EnqueueProgress:
    """Render and enqueue the messages of the snapshot's next recipients, chunk by chunk,
    until all are enqueued, `limit` recipients were handled, or the campaign stops sending.
    Safe to run again at any time (after a crash, a resume, or in two workers at once)."""
    progress = EnqueueProgress()
    handled = 0
    chooser: TemplateChooser | None = None
    while limit is None or handled < limit:
        campaign = Campaign.objects.get(pk=campaign.pk)
        if campaign.status != CampaignStatus.SENDING or campaign.enqueued_at is not None:
            progress.stopped = "" if campaign.enqueued_at else campaign.status
            progress.done = campaign.enqueued_at is not None
            break
        size = chunk_size if limit is None else min(chunk_size, limit - handled)
        # Tuples, not model instances: the snapshot row and its customer's sending fields.
        rows = list(
            CampaignRecipient.objects.filter(campaign=campaign, pk__gt=campaign.enqueue_cursor)
            .order_by("pk")
            .values_list("pk", "variant", *(f"customer__{name}" for name in CUSTOMER_ROW_FIELDS))
            [:size]
        )
        if not rows:
            with transaction.atomic():
                locked = _locked(campaign)
                if locked.status == CampaignStatus.SENDING and locked.enqueued_at is None:
                    locked.enqueued_at = now
                    _save(locked, "enqueued_at")
                    _event(locked, CampaignEventKind.ENQUEUED, now=now, reason=(
                        f"{locked.recipients_count} recipients"
                    ))
            progress.done = True
            break
        if chooser is None:
            chooser = TemplateChooser(list(campaign.variants.all()))
        # This chunk of the snapshot as a subquery: the reads join it instead of listing ids.
        scope = CampaignRecipient.objects.filter(
            campaign=campaign, pk__gt=campaign.enqueue_cursor, pk__lte=rows[-1][0]
        ).values("customer_id")
        customers = [CustomerRow(*row[2:]) for row in rows]
        state = send_state(customers, now=now, channels=campaign.channels, scope=scope)
        items: list[BulkItem] = []
        for row, customer in zip(rows, customers, strict=True):
            variant = row[1]
            channel = channel_for(
                state, customer, channels=campaign.channels, topic=campaign.topic, now=now
            )
            try:
                template = chooser.get(
                    variant=variant, channel=channel, language=message_language(customer),
                )
            except (TemplateNotFound, KeyError) as exc:
                progress.errors[customer.pk] = str(exc)
                continue
            items.append(
                BulkItem(customer=customer, channel=channel, template=template, step=STEP,
                         variant=variant)
            )
        batch = outbox_batch_prepare(
            items=items, kind=MessageKind.MARKETING, source=campaign.source, now=now,
            topic=campaign.topic, due_at=now, control_percent=campaign.control_percent,
            recommend=True, scope=scope,  # each recipient's own products, if a template shows them
        )
        with transaction.atomic():
            locked = _locked(campaign)
            if locked.status != CampaignStatus.SENDING or locked.enqueue_cursor != (
                campaign.enqueue_cursor
            ):
                # Paused or cancelled meanwhile (drop the rendering), or another worker took
                # this chunk (its rows exist; go on from its cursor).
                continue
            outbox_batch_insert(batch)
            locked.enqueue_cursor = rows[-1][0]
            _save(locked, "enqueue_cursor")
            chunk_ids = {customer.pk for customer in customers}
            errors = {**batch.errors, **{
                pk: reason for pk, reason in progress.errors.items() if pk in chunk_ids
            }}
            if errors:
                first = next(iter(errors.values()))
                _event(locked, CampaignEventKind.TEMPLATE_ERRORS, now=now,
                       reason=f"{len(errors)} messages not sent; first: {first}")
        progress.errors.update(batch.errors)
        progress.created += len(batch.values)
        progress.existing += batch.existing
        progress.held_out += batch.held_out
        handled += len(rows)
    progress.template_errors = len(progress.errors)
    return progress


def _park(campaign: Campaign, now: datetime) -> int:
    return (
        OutboxMessage.objects.filter(source=campaign.source, status__in=_PENDING)
        .exclude(due_at__gte=PARKED_AT)
        .update(due_at=PARKED_AT, updated_at=now)
    )


@transaction.atomic
def campaign_pause(
    *, campaign: Campaign, now: datetime, actor: str = "", reason: str = "", auto: bool = False
) -> Campaign:
    """Stop sending: no new message is enqueued and none waiting is sent until resumed."""
    campaign = _locked(campaign)
    _require_status(campaign, CampaignStatus.SENDING, action="paused")
    campaign.status, campaign.status_reason = CampaignStatus.PAUSED, reason[:300]
    _save(campaign, "status", "status_reason")
    parked = _park(campaign, now)
    _event(campaign, CampaignEventKind.AUTO_PAUSED if auto else CampaignEventKind.PAUSED,
           now=now, actor=actor, reason=f"{reason}; {parked} messages held" if reason else (
               f"{parked} messages held"))
    if auto:
        logger.warning("campaign %s paused itself: %s", campaign.pk, reason)
    return campaign


@transaction.atomic
def campaign_resume(*, campaign: Campaign, now: datetime, actor: str = "") -> Campaign:
    """Continue a paused campaign: held messages become due now (quiet hours, caps and consent
    are checked again when each is sent), enqueueing continues, and bounce and complaint rates
    are judged afresh from now."""
    campaign = _locked(campaign)
    _require_status(campaign, CampaignStatus.PAUSED, action="resumed")
    campaign.status, campaign.status_reason = CampaignStatus.SENDING, ""
    campaign.health_since = now
    _save(campaign, "status", "status_reason", "health_since")
    released = OutboxMessage.objects.filter(
        source=campaign.source, status__in=_PENDING, due_at__gte=PARKED_AT
    ).update(due_at=now, updated_at=now)
    _event(campaign, CampaignEventKind.RESUMED, now=now, actor=actor,
           reason=f"{released} messages released")
    return campaign


def _drop_pending(campaign: Campaign, now: datetime, reason: str) -> int:
    ids = list(
        OutboxMessage.objects.filter(source=campaign.source, status__in=_PENDING).values_list(
            "id", flat=True
        )
    )
    for start in range(0, len(ids), CHUNK * 5):
        part = ids[start : start + CHUNK * 5]
        OutboxMessage.objects.filter(id__in=part, status__in=_PENDING).update(
            status=Status.DROPPED, status_reason=reason, updated_at=now
        )
        DeliveryLog.objects.bulk_create(
            [DeliveryLog(message_id=i, event=LogEvent.DROPPED, reason=reason, at=now) for i in part]
        )
    return len(ids)


@transaction.atomic
def campaign_cancel(*, campaign: Campaign, now: datetime, actor: str = "") -> Campaign:
    """Stop for good: messages not sent yet are dropped (logged), nothing more is enqueued."""
    campaign = _locked(campaign)
    _require_status(
        campaign, CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.SENDING,
        CampaignStatus.PAUSED, action="cancelled",
    )
    campaign.status, campaign.finished_at = CampaignStatus.CANCELLED, now
    _save(campaign, "status", "finished_at")
    dropped = _drop_pending(campaign, now, "campaign cancelled")
    _event(campaign, CampaignEventKind.CANCELLED, now=now, actor=actor,
           reason=f"{dropped} messages dropped")
    return campaign


def campaign_health_check(*, campaign: Campaign, now: datetime) -> bool:
    """Pause a sending campaign whose bounce or complaint rate is above its limit; returns
    whether it paused."""
    if campaign.status != CampaignStatus.SENDING:
        return False
    health = campaign_health(campaign)
    if health.sample < max(1, campaign.min_sample):
        return False
    reason = ""
    if health.bounce_percent > campaign.max_bounce_percent:
        reason = (
            f"bounce rate {health.bounce_percent:.2f}% ({health.bounced} of {health.sample}) "
            f"above {campaign.max_bounce_percent}%"
        )
    elif health.complaint_percent > campaign.max_complaint_percent:
        reason = (
            f"complaint rate {health.complaint_percent:.2f}% ({health.complaints} of "
            f"{health.sample}) above {campaign.max_complaint_percent}%"
        )
    if not reason:
        return False
    try:
        campaign_pause(campaign=campaign, now=now, actor="auto", reason=reason, auto=True)
    except ConflictError:  # paused or cancelled by someone else meanwhile
        return False
    return True


@transaction.atomic
def campaign_finish_if_done(*, campaign: Campaign, now: datetime) -> bool:
    """Mark a sending campaign finished once all its messages were enqueued and every one has
    a final status."""
    campaign = _locked(campaign)
    if campaign.status != CampaignStatus.SENDING or campaign.enqueued_at is None:
        return False
    if campaign_unfinished(campaign):
        return False
    campaign.status, campaign.finished_at = CampaignStatus.FINISHED, now
    _save(campaign, "status", "finished_at")
    _event(campaign, CampaignEventKind.FINISHED, now=now)
    return True


@dataclass
class TickResult:
    started: list[int] = field(default_factory=list)
    enqueued: int = 0
    auto_paused: list[int] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)


def campaigns_tick(*, now: datetime, enqueue_limit: int | None = None) -> TickResult:
    """What the worker does every minute: start campaigns whose time has come, enqueue what is
    missing, re-hold messages of paused campaigns that a stopped worker gave back, pause
    campaigns whose rates spiked, and finish those that are done."""
    result = TickResult()
    due = Campaign.objects.filter(status=CampaignStatus.SCHEDULED).filter(
        Q(send_at__isnull=True) | Q(send_at__lte=now)
    )
    for campaign in due.order_by("send_at", "pk"):
        try:
            campaign_start(campaign=campaign, now=now, actor="schedule")
        except (ConflictError, ValidationError) as exc:
            logger.warning("campaign %s could not start: %s", campaign.pk, exc)
            continue
        result.started.append(campaign.pk)
    # A worker stopped with Ctrl-C gives its claimed messages back as queued with their old
    # `due_at`: hold them again if their campaign was paused, drop them if it was cancelled.
    for campaign in Campaign.objects.filter(status=CampaignStatus.PAUSED):
        with transaction.atomic():
            if _locked(campaign).status == CampaignStatus.PAUSED:
                _park(campaign, now)
    recently = Campaign.objects.filter(
        status=CampaignStatus.CANCELLED, finished_at__gte=now - timedelta(days=1)
    )
    for campaign in recently:
        with transaction.atomic():
            _drop_pending(campaign, now, "campaign cancelled")
    for campaign in Campaign.objects.filter(status=CampaignStatus.SENDING).order_by("pk"):
        if campaign_health_check(campaign=campaign, now=now):
            result.auto_paused.append(campaign.pk)
            continue
        if campaign.enqueued_at is None:
            result.enqueued += campaign_enqueue(
                campaign=campaign, now=now, limit=enqueue_limit
            ).created
        if campaign_finish_if_done(campaign=campaign, now=now):
            result.finished.append(campaign.pk)
    return result
