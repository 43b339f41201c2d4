"""Reads of the messaging app: sending policy, templates, and whether a message may go to a
customer now. Nothing here writes.

`can_send` is the send-time check the outbox runs before every message: an address on the
channel, no suppression that applies, and for marketing the customer's consent, no pause and
the topic switched on. The outbox evaluates a whole batch against one `SendState` snapshot
(a handful of queries per batch instead of per message); `can_send` is the same rule for one
customer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet

from vafa.customers.models import Channel, Consent, Customer
from vafa.messaging.conf import (
    ChannelStatus,
    MessagingEnv,
    StoredChannel,
    StoredSettings,
    apply_stored,
    channel_status,
    load_env,
)
from vafa.messaging.errors import TemplateNotFound
from vafa.messaging.models import (
    ACCEPTED_STATUSES,
    BLOCKS_TRANSACTIONAL,
    ChannelSettings,
    DeliveryLog,
    Frequency,
    MessageKind,
    MessageTemplate,
    MessagingSettings,
    OutboxMessage,
    Preference,
    PushSubscription,
    Suppression,
    TelegramLink,
)
from vafa.messaging.policy import Cap, Rules

FREQUENCY_CAPS = {Frequency.WEEKLY: Cap(1, 7, "frequency"), Frequency.MONTHLY: Cap(1, 30, "frequency")}


def messaging_settings() -> MessagingSettings:
    """The sending policy row, or the defaults (unsaved) before the merchant saved any."""
    return MessagingSettings.objects.filter(pk=1).first() or MessagingSettings(pk=1)


def stored_settings() -> StoredSettings:
    """The non-secret provider settings staff saved in the admin (two small queries)."""
    site_url = MessagingSettings.objects.filter(pk=1).values_list("site_url", flat=True).first()
    channels = {
        row.channel: StoredChannel(
            enabled=row.enabled,
            provider=row.provider,
            from_name=row.from_name,
            from_address=row.from_address,
            reply_to=row.reply_to,
            sender=row.sender,
            bot_username=row.bot_username,
            rate=float(row.rate_per_second) if row.rate_per_second is not None else None,
        )
        for row in ChannelSettings.objects.all()
    }
    return StoredSettings(site_url=site_url or "", channels=channels)


def messaging_config(environ: Mapping[str, str] | None = None) -> MessagingEnv:
    """What the channels use: the environment (`environ`, default `os.environ`) with the
    admin's non-secret settings laid over it. Read once per flush."""
    return apply_stored(load_env(environ), stored_settings(), environ)


def channel_statuses(environ: Mapping[str, str] | None = None) -> dict[str, ChannelStatus]:
    """For the admin: each channel's provider, switch and which secrets are set or missing."""
    config = messaging_config(environ)
    return {name: channel_status(name, config, environ) for name in Channel.values}


def template_for(*, key: str, channel: str, language: str) -> MessageTemplate:
    """The template `key` for `channel` in `language`, else in the shop's language, else in
    English, else in any language."""
    candidates = list(MessageTemplate.objects.filter(key=key, channel=channel))
    if not candidates:
        raise TemplateNotFound(f"no {channel} template {key!r}", field="template")
    by_language = {t.language: t for t in candidates}
    for choice in (language, settings.LANGUAGE_CODE, "en"):
        if choice in by_language:
            return by_language[choice]
    return sorted(candidates, key=lambda t: t.language)[0]


def normalized_address(channel: str, value: str) -> str:
    """How an address is compared with suppressions: emails in lower case, the rest stripped."""
    value = (value or "").strip()
    return value.lower() if channel == Channel.EMAIL else value


@dataclass(frozen=True, slots=True)
class CustomerRow:
    """The customer fields sending needs, read as a tuple (`CUSTOMER_ROW_FIELDS`) instead of a
    `Customer` instance: the campaign batch path reads thousands per chunk, and building model
    instances cost more than the checks that use them. Reads like a `Customer` where sending
    looks (`pk`, the addresses, names, language and time zone)."""

    pk: int
    email: str
    phone: str
    first_name: str
    last_name: str
    city: str
    language: str
    timezone: str

    @property
    def full_name(self) -> str:
        """As `Customer.full_name`."""
        return f"{self.first_name} {self.last_name}".strip()


# The columns of a `CustomerRow`, in order, as `values_list` names on `Customer`.
CUSTOMER_ROW_FIELDS = (
    "pk", "email", "phone", "first_name", "last_name", "city", "language", "timezone"
)
# A customer as sending sees it: a model instance, or the same fields read as a tuple.
CustomerLike = Customer | CustomerRow


@dataclass(frozen=True)
class Decision:
    """Whether a message may go; `reason` says why not (`no_address`, `no_consent`, `paused`,
    `topic_off`, `suppressed:<reason>`)."""

    allowed: bool
    reason: str = ""


@dataclass
class SendState:
    """What the send-time check needs to know about a set of customers, read in one go."""

    consents: dict[tuple[int, str], bool] = field(default_factory=dict)
    suppressed_customers: dict[tuple[int, str], list[str]] = field(default_factory=dict)
    suppressed_addresses: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    preferences: dict[int, Preference] = field(default_factory=dict)
    telegram: dict[int, str] = field(default_factory=dict)
    push: dict[int, list[PushSubscription]] = field(default_factory=dict)
    marketing_sent_at: dict[int, list[datetime]] = field(default_factory=dict)

    def address(self, customer: CustomerLike, channel: str) -> str:
        """The customer's address on `channel`, empty when there is none."""
        if channel == Channel.EMAIL:
            email = normalized_address(channel, customer.email)
            return email if "@" in email else ""
        if channel == Channel.SMS:
            return normalized_address(channel, customer.phone)
        if channel == Channel.TELEGRAM:
            return self.telegram.get(customer.pk, "")
        if channel == Channel.PUSH:
            return "push" if self.push.get(customer.pk) else ""
        return ""

    def decide(
        self, *, customer: CustomerLike, channel: str, kind: str, topic: str, now: datetime
    ) -> Decision:
        address = self.address(customer, channel)
        if not address:
            return Decision(False, "no_address")
        reasons = [
            *self.suppressed_customers.get((customer.pk, channel), ()),
            *self.suppressed_addresses.get((channel, address), ()),
        ]
        for reason in reasons:
            if kind == MessageKind.MARKETING or reason in BLOCKS_TRANSACTIONAL:
                return Decision(False, f"suppressed:{reason}")
        if kind == MessageKind.MARKETING:
            if not self.consents.get((customer.pk, channel), False):
                return Decision(False, "no_consent")
            preference = self.preferences.get(customer.pk)
            if preference is not None:
                if preference.paused_until is not None and preference.paused_until > now:
                    return Decision(False, "paused")
                if topic and topic in (preference.topics_off or []):
                    return Decision(False, "topic_off")
        return Decision(True)


def send_state(
    customers: Sequence[CustomerLike],
    *,
    now: datetime,
    lookback_days: int = 0,
    channels: Iterable[str] | None = None,
    scope: QuerySet[Any] | None = None,
) -> SendState:
    """Read consent, suppressions, preferences, chat links and push subscriptions of
    `customers`, and (with `lookback_days`) the marketing messages they were sent since then.

    Two ways to make a big batch cheaper, both giving the same decisions for `customers`:
    `channels` reads only what deciding on those channels needs (no chat links without
    Telegram, no push subscriptions without push, consents and suppressions of those channels
    only), and `scope`, a query of the batch's customer ids (one `customer_id` column, e.g. a
    slice of a campaign's snapshot), replaces the IN lists of thousands of ids by a subquery
    the database joins."""
    state = SendState()
    if not customers:
        return state
    wanted = frozenset(Channel.values if channels is None else channels)
    who: QuerySet[Any] | list[int] = (
        scope if scope is not None else [c.pk for c in customers]
    )
    consents = Consent.objects.filter(customer_id__in=who)
    if channels is not None:
        consents = consents.filter(channel__in=sorted(wanted))
    for customer_id, channel, granted in consents.values_list(
        "customer_id", "channel", "granted"
    ).order_by():
        state.consents[(customer_id, channel)] = granted
    if Channel.TELEGRAM in wanted:
        state.telegram = dict(
            TelegramLink.objects.filter(customer_id__in=who)
            .exclude(chat_id="")
            .values_list("customer_id", "chat_id")
            .order_by()
        )
    if Channel.PUSH in wanted:
        for subscription in PushSubscription.objects.filter(customer_id__in=who).order_by("id"):
            state.push.setdefault(subscription.customer_id, []).append(subscription)
    addresses = {
        address
        for customer in customers
        for channel in wanted
        if (address := state.address(customer, channel))
    }
    by_customer: dict[tuple[int, str], list[str]] = defaultdict(list)
    by_address: dict[tuple[str, str], list[str]] = defaultdict(list)
    for customer_id, address, channel, reason in (
        Suppression.objects.filter(
            Q(customer_id__in=who) | Q(address__in=sorted(addresses)),
            lifted_at__isnull=True,
            channel__in=sorted(wanted),
        )
        .values_list("customer_id", "address", "channel", "reason")
    ):
        if customer_id is not None:
            by_customer[(customer_id, channel)].append(reason)
        if address:
            by_address[(channel, address)].append(reason)
    state.suppressed_customers, state.suppressed_addresses = dict(by_customer), dict(by_address)
    state.preferences = {
        p.customer_id: p for p in Preference.objects.filter(customer_id__in=who).order_by()
    }
    if lookback_days:
        since = now - timedelta(days=lookback_days + 1)  # +1: local days reach across UTC days
        for customer_id, sent_at in OutboxMessage.objects.filter(
            customer_id__in=who,
            kind=MessageKind.MARKETING,
            status__in=sorted(ACCEPTED_STATUSES),
            sent_at__gte=since,
        ).values_list("customer_id", "sent_at"):
            if sent_at is not None:
                state.marketing_sent_at.setdefault(customer_id, []).append(sent_at)
    return state


def can_send(
    *, customer: Customer, channel: str, kind: str, now: datetime, topic: str = ""
) -> Decision:
    """Whether a message of `kind` (and `topic`) may go to `customer` on `channel` now,
    judged on the database as it is at this moment (timing rules are separate: see
    `vafa.messaging.policy`)."""
    return send_state([customer], now=now).decide(
        customer=customer, channel=channel, kind=kind, topic=topic, now=now
    )


def customer_rules(policy: MessagingSettings, preference: Preference | None) -> Rules:
    """The timing rules for one customer: the shop's quiet hours, weekend and cap, plus the
    customer's own frequency choice."""
    caps: list[Cap] = []
    if policy.cap_messages:
        caps.append(Cap(policy.cap_messages, policy.cap_days))
    if preference is not None and preference.frequency in FREQUENCY_CAPS:
        caps.append(FREQUENCY_CAPS[Frequency(preference.frequency)])
    return Rules(
        quiet_start=policy.quiet_start,
        quiet_end=policy.quiet_end,
        weekend=policy.weekend if policy.no_marketing_on_weekend else frozenset(),
        caps=tuple(caps),
    )


def lookback_days(policy: MessagingSettings) -> int:
    """How far back the caps look, the customer's own frequency choice included."""
    return max([policy.cap_days, *(cap.days for cap in FREQUENCY_CAPS.values())])


def message_log(*, message: OutboxMessage) -> list[DeliveryLog]:
    return list(message.log.order_by("at", "id"))


def status_counts(*, source: str | None = None) -> dict[str, int]:
    """How many messages are in each status (of one flow or campaign, or all)."""
    queryset = OutboxMessage.objects.all()
    if source is not None:
        queryset = queryset.filter(source=source)
    rows = queryset.order_by().values_list("status").annotate(n=Count("id"))
    return {status: n for status, n in rows}
