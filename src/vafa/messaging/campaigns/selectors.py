"""Reads of the campaigns app: the audience, variant assignment, status counts, bounce and
complaint rates, and the SMS cost estimate shown before sending. Nothing here writes."""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.db.models import Count, Q, QuerySet

from vafa.core.money import quantize
from vafa.customers.models import Customer
from vafa.insights.segments import segment_queryset
from vafa.messaging.campaigns.models import Campaign, CampaignVariant
from vafa.messaging.channels.sms import count_segments
from vafa.messaging.compose import message_language, render_message
from vafa.messaging.conf import load_env
from vafa.messaging.errors import TemplateError, TemplateNotFound
from vafa.messaging.measurement import holdout_key
from vafa.messaging.models import (
    ACCEPTED_STATUSES,
    PENDING_STATUSES,
    DeliveryLog,
    LogEvent,
    MessageKind,
    MessageTemplate,
    OutboxMessage,
    Status,
)
from vafa.messaging.selectors import (
    CustomerLike,
    SendState,
    messaging_config,
    messaging_settings,
    send_state,
    template_for,
)

# Pending messages of a paused campaign are "parked": due at a moment no flush reaches, so the
# outbox (which knows nothing of campaigns) leaves them alone until the campaign resumes.
PARKED_AT = datetime(9999, 1, 1, tzinfo=UTC)
VARIANT_BUCKETS = 10_000


def variant_bucket(*, campaign_id: int, customer_id: int, key: bytes) -> int:
    """The customer's bucket (0…9,999) for splitting campaign `campaign_id` between variants: a
    keyed hash, so stable across runs and resumes, and independent of the control group's."""
    message = f"campaign:{campaign_id}:variant:{customer_id}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") % VARIANT_BUCKETS


def variant_for(
    *, campaign_id: int, customer_id: int, variants: Sequence[tuple[str, int]], key: bytes
) -> str:
    """Which of `variants` (name, weight), in the given order, the customer receives."""
    total = sum(weight for _, weight in variants)
    if not variants or total <= 0:
        raise ValueError("a campaign needs at least one variant with a positive weight")
    point = variant_bucket(campaign_id=campaign_id, customer_id=customer_id, key=key) * total
    point //= VARIANT_BUCKETS
    for name, weight in variants:
        if point < weight:
            return name
        point -= weight
    return variants[-1][0]


def variant_weights(campaign: Campaign) -> list[tuple[str, int]]:
    return list(campaign.variants.order_by("name").values_list("name", "weight"))


def assignment_key() -> bytes:
    """The key of the variant hash: the control group's key (from `VAFA_HOLDOUT_KEY` or the
    secret key), so only the shop can predict who gets which variant."""
    return holdout_key(load_env().holdout_key)


def campaign_audience(campaign: Campaign, *, now: datetime) -> QuerySet[Customer]:
    """The customers of the campaign's segment at `now` (before the snapshot is taken).

    Order counts, spend and last purchase are aggregated from the orders themselves, not read
    from the last analysis run's stored totals: those miss edits that bypass the change feed
    (a file import without `--notify`), and a win-back must not reach someone who bought
    yesterday. A snapshot is taken once per campaign, so the exact answer is worth its cost."""
    return segment_queryset(campaign.segment.definition, now=now, use_stats=False)


def channel_for(
    state: SendState, customer: CustomerLike, *, channels: Sequence[str], topic: str,
    now: datetime,
) -> str:
    """The first channel of `channels` the customer can receive marketing on now; if none,
    the first one (the send-time check then records why it was not sent)."""
    for channel in channels:
        if state.decide(
            customer=customer, channel=channel, kind=MessageKind.MARKETING, topic=topic, now=now
        ).allowed:
            return channel
    return channels[0]


class TemplateChooser:
    """The template of each (variant, channel, language), looked up once per campaign run."""

    def __init__(self, variants: Sequence[CampaignVariant]) -> None:
        self.keys = {v.name: v.template_key for v in variants}
        self.cache: dict[tuple[str, str, str], MessageTemplate] = {}

    def get(self, *, variant: str, channel: str, language: str) -> MessageTemplate:
        """Raises `TemplateNotFound` when the variant has no template for the channel."""
        index = (variant, channel, language)
        if index not in self.cache:
            self.cache[index] = template_for(
                key=self.keys[variant], channel=channel, language=language
            )
        return self.cache[index]


def campaign_status_counts(campaign: Campaign) -> dict[str, int]:
    """How many of the campaign's messages are in each outbox status; queued messages of a
    paused campaign are counted as `paused`."""
    messages = OutboxMessage.objects.filter(source=campaign.source)
    parked = Q(status__in=sorted(PENDING_STATUSES), due_at__gte=PARKED_AT)
    rows = messages.exclude(parked).order_by().values_list("status").annotate(n=Count("id"))
    counts = {status: n for status, n in rows}
    paused = messages.filter(parked).count()
    if paused:
        counts["paused"] = paused
    return counts


def campaign_unfinished(campaign: Campaign) -> int:
    """Messages of the campaign without a final status (queued, deferred or being sent)."""
    return OutboxMessage.objects.filter(
        source=campaign.source, status__in=sorted({*PENDING_STATUSES, Status.SENDING})
    ).count()


@dataclass(frozen=True)
class Health:
    """Bounce and complaint rates over the messages that reached a provider since `since`."""

    since: datetime | None
    sample: int
    bounced: int
    complaints: int

    @property
    def bounce_percent(self) -> Decimal:
        return Decimal(100 * self.bounced) / self.sample if self.sample else Decimal(0)

    @property
    def complaint_percent(self) -> Decimal:
        return Decimal(100 * self.complaints) / self.sample if self.sample else Decimal(0)


def campaign_health(campaign: Campaign) -> Health:
    """The campaign's bounce and complaint rates since it started or was last resumed (an
    auto-paused campaign that is resumed by hand is judged afresh)."""
    since = campaign.health_since
    messages = OutboxMessage.objects.filter(
        source=campaign.source, status__in=sorted(ACCEPTED_STATUSES)
    )
    if since is not None:
        # A bounce at SMTP time has no `sent_at`; its `updated_at` is when it bounced.
        messages = messages.filter(
            Q(sent_at__gte=since) | Q(sent_at__isnull=True, updated_at__gte=since)
        )
    counts = dict(
        messages.order_by().values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    complaints = DeliveryLog.objects.filter(
        message__source=campaign.source, event=LogEvent.COMPLAINED
    )
    if since is not None:
        complaints = complaints.filter(at__gte=since)
    return Health(
        since=since,
        sample=sum(counts.values()),
        bounced=counts.get(Status.BOUNCED, 0),
        complaints=complaints.count(),
    )


@dataclass(frozen=True)
class SmsEstimate:
    """What the SMS part of a campaign will cost, estimated from a sample of its audience:
    `recipients` is how many would get an SMS (control group excluded), `segments` the mean
    segments per message, `encodings` how many sampled messages need GSM-7 or UCS-2."""

    audience: int
    sampled: int
    recipients: int
    segments: Decimal
    total_segments: int
    cost: Decimal
    currency: str
    encodings: dict[str, int]
    errors: int


def campaign_sms_estimate(
    campaign: Campaign,
    *,
    now: datetime,
    price_per_segment: Decimal,
    currency: str,
    sample_size: int = 200,
) -> SmsEstimate:
    """Render the campaign's SMS for a sample of real recipients (their variant, language and
    channel as the campaign would choose them) and scale to the audience. Persian and Arabic
    text needs UCS-2, 70 characters a segment instead of GSM-7's 160, so this is worth seeing
    before sending."""
    from vafa.messaging.campaigns.bulk import BatchContext

    audience = campaign_audience(campaign, now=now)
    total = audience.count()
    sample = list(audience.order_by("pk")[:sample_size])
    variants = list(campaign.variants.order_by("name"))
    weights = [(v.name, v.weight) for v in variants]
    chooser = TemplateChooser(variants)
    state = send_state(sample, now=now)
    env = messaging_config()
    contexts = BatchContext.load(sample, now=now, site_url=env.site_url)
    key = assignment_key()
    on_sms, segments, errors = 0, 0, 0
    encodings: Counter[str] = Counter()
    for customer in sample:
        channel = channel_for(
            state, customer, channels=campaign.channels, topic=campaign.topic, now=now
        )
        if channel != "sms" or not weights:
            continue
        on_sms += 1
        variant = variant_for(
            campaign_id=campaign.pk, customer_id=customer.pk, variants=weights, key=key
        )
        try:
            template = chooser.get(
                variant=variant, channel=channel, language=message_language(customer)
            )
            context = contexts.for_message(customer, channel=channel, language=template.language)
            text = render_message(
                template=template, context=context, kind=MessageKind.MARKETING,
                dedupe_key="estimate", site_url=env.site_url,
            ).text
        except (TemplateError, TemplateNotFound):
            errors += 1
            continue
        info = count_segments(text)
        segments += info.segments
        encodings[info.encoding] += 1
    rendered = on_sms - errors
    mean = Decimal(segments) / rendered if rendered else Decimal(0)
    percent = (
        messaging_settings().control_percent
        if campaign.control_percent is None
        else campaign.control_percent
    )
    share = Decimal(on_sms) / len(sample) if sample else Decimal(0)
    recipients = int((total * share * (1 - percent / 100)).to_integral_value())
    total_segments = int((recipients * mean).to_integral_value())
    return SmsEstimate(
        audience=total,
        sampled=len(sample),
        recipients=recipients,
        segments=mean.quantize(Decimal("0.01")),
        total_segments=total_segments,
        cost=quantize(Decimal(price_per_segment) * total_segments, currency),
        currency=currency,
        encodings=dict(encodings),
        errors=errors,
    )
