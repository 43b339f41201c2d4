"""Campaigns through their services: a snapshot sent once, A/B variants that stay put, pause and
resume that neither resend nor skip, auto-pause on bounce and complaint spikes, and the send-time
rules (unsubscribes, quiet hours, caps) for customers in three time zones at once."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from tests.campaigns.conftest import T0, make_campaign, make_customer, make_template
from tests.messaging.fakes import SmtpServer
from vafa.core.errors import ConflictError, ValidationError
from vafa.customers.models import Channel, Customer, Order, OrderStatus
from vafa.insights.models import AnalysisRun
from vafa.insights.services import customer_stats_refresh
from vafa.messaging.campaigns.models import (
    Campaign,
    CampaignEvent,
    CampaignRecipient,
    CampaignStatus,
)
from vafa.messaging.campaigns.selectors import (
    PARKED_AT,
    campaign_audience,
    campaign_status_counts,
    variant_for,
)
from vafa.messaging.campaigns.services import (
    campaign_cancel,
    campaign_enqueue,
    campaign_pause,
    campaign_resume,
    campaign_schedule,
    campaign_start,
    campaigns_tick,
)
from vafa.messaging.models import (
    DeliveryLog,
    MessagingSettings,
    OutboxMessage,
    PolicyAction,
    Status,
)
from vafa.messaging.outbox import outbox_flush
from vafa.messaging.services import (
    consent_set,
    message_enqueue,
    provider_event_record,
    recipient_unsubscribe,
)
from vafa.messaging.tokens import recipient_token

pytestmark = pytest.mark.usefixtures("templates")


def started(campaign: Campaign, *, now: datetime = T0) -> Campaign:
    """Schedule, start and enqueue `campaign` at `now`."""
    campaign = campaign_schedule(campaign=campaign, now=now)
    campaign = campaign_start(campaign=campaign, now=now)
    assert campaign_enqueue(campaign=campaign, now=now).done
    campaign.refresh_from_db()
    return campaign


def customers(count: int, prefix: str = "c") -> list[Customer]:
    return [
        make_customer(f"{prefix}{i}", email=f"{prefix}{i}@example.com", language="en",
                      timezone="UTC")
        for i in range(count)
    ]


def received_once(smtp: SmtpServer) -> Counter[str]:
    return Counter(str(m["To"]) for m in smtp.sink.received)


# -- variants ------------------------------------------------------------------------------------


def test_variants_split_customers_by_weight_and_each_keeps_their_variant() -> None:
    weights = [("A", 1), ("B", 3)]
    key = b"k" * 32
    picks = [
        variant_for(campaign_id=7, customer_id=i, variants=weights, key=key) for i in range(10_000)
    ]
    share_b = picks.count("B") / len(picks)
    # Binomial(10,000, 0.75): sd 0.0043, so ±0.02 is more than 4 sd.
    assert abs(share_b - 0.75) < 0.02
    again = [
        variant_for(campaign_id=7, customer_id=i, variants=weights, key=key) for i in range(10_000)
    ]
    assert again == picks
    other_campaign = [
        variant_for(campaign_id=8, customer_id=i, variants=weights, key=key) for i in range(200)
    ]
    assert other_campaign != picks[:200]


# -- the snapshot, once --------------------------------------------------------------------------


def test_a_campaign_reaches_its_segment_once_in_each_customers_language(
    zahra: Customer, layla: Customer, olivia: Customer
) -> None:
    campaign = started(make_campaign(variants=(("A", 1, "news"), ("B", 1, "news"))))
    assert campaign.status == CampaignStatus.SENDING and campaign.recipients_count == 3
    rows = {m.customer_id: m for m in OutboxMessage.objects.filter(source=campaign.source)}
    assert {rows[c.pk].language for c in (zahra, layla, olivia)} == {"fa", "ar", "en"}
    assert rows[zahra.pk].subject.startswith("سلام") and rows[layla.pk].subject.startswith("مرحبا")
    recipients = dict(CampaignRecipient.objects.values_list("customer_id", "variant"))
    for customer_id, message in rows.items():
        assert message.variant == message.data["variant"] == recipients[customer_id]
        assert message.dedupe_key == f"{customer_id}:{campaign.source}:send:"
        assert message.topic == campaign.topic and message.status == Status.QUEUED
    # Enqueueing again, or a customer joining the segment after the start, adds nothing.
    make_customer("late", email="late@example.com")
    Campaign.objects.filter(pk=campaign.pk).update(enqueued_at=None, enqueue_cursor=0)
    again = campaign_enqueue(campaign=campaign, now=T0 + timedelta(minutes=1))
    assert (again.created, again.existing) == (0, 3)
    assert OutboxMessage.objects.filter(source=campaign.source).count() == 3


def test_the_batched_path_renders_what_message_enqueue_renders(
    zahra: Customer, layla: Customer
) -> None:
    campaign = started(make_campaign(definition={"match": "all", "rules": [
        {"field": "city", "values": ["Shiraz"]}]}))
    assert campaign.recipients_count == 0  # nobody lives in Shiraz yet
    campaign = started(make_campaign())
    single = message_enqueue(
        customer=zahra, channel=Channel.EMAIL, kind="marketing", source="single",
        template_key="news", now=T0,
    ).message
    batched = OutboxMessage.objects.get(source=campaign.source, customer=zahra)
    assert batched.subject == single.subject and batched.language == single.language
    # Only the per-message tokens (unsubscribe, tracking) differ.
    strip = lambda text: text.split("http")[0]  # noqa: E731
    assert strip(batched.body_text) == strip(single.body_text)


def test_a_customer_joining_after_the_start_is_not_added_but_everyone_in_the_snapshot_is(
    policy: MessagingSettings,
) -> None:
    people = customers(25)
    campaign = make_campaign()
    campaign = campaign_schedule(campaign=campaign, now=T0)
    campaign = campaign_start(campaign=campaign, now=T0)
    progress = campaign_enqueue(campaign=campaign, now=T0, chunk_size=10, limit=10)
    assert (progress.created, progress.done) == (10, False)
    customers(3, prefix="late")
    progress = campaign_enqueue(campaign=campaign, now=T0, chunk_size=10)
    assert (progress.created, progress.done) == (15, True)
    assert set(
        OutboxMessage.objects.filter(source=campaign.source).values_list("customer_id", flat=True)
    ) == {c.pk for c in people}


# -- pause, resume, cancel -----------------------------------------------------------------------


def test_pausing_holds_every_waiting_message_and_resuming_sends_each_exactly_once(
    smtp: SmtpServer, policy: MessagingSettings
) -> None:
    people = customers(30)
    campaign = started(make_campaign())
    assert outbox_flush(now=T0, limit=10).sent == 10
    campaign_pause(campaign=campaign, now=T0, actor="merchant", reason="typo in the subject")
    assert campaign_status_counts(campaign) == {"sent": 10, "paused": 20}
    # No flush sends a held message, however late it runs.
    assert outbox_flush(now=T0 + timedelta(days=30)).claimed == 0
    assert campaigns_tick(now=T0 + timedelta(minutes=1)).finished == []
    campaign_resume(campaign=campaign, now=T0 + timedelta(hours=1), actor="merchant")
    assert outbox_flush(now=T0 + timedelta(hours=1)).sent == 20
    assert received_once(smtp) == Counter({c.email: 1 for c in people})
    assert campaigns_tick(now=T0 + timedelta(hours=1)).finished == [campaign.pk]
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.FINISHED
    events = list(CampaignEvent.objects.filter(campaign=campaign).values_list("event", "actor"))
    assert ("paused", "merchant") in events and ("resumed", "merchant") in events


def test_a_pause_in_the_middle_of_enqueueing_stops_it_and_a_resume_finishes_it_without_gaps(
    smtp: SmtpServer, policy: MessagingSettings
) -> None:
    people = customers(25)
    campaign = make_campaign()
    campaign = campaign_start(campaign=campaign_schedule(campaign=campaign, now=T0), now=T0)
    campaign_enqueue(campaign=campaign, now=T0, chunk_size=10, limit=10)
    campaign_pause(campaign=campaign, now=T0)
    stopped = campaign_enqueue(campaign=campaign, now=T0, chunk_size=10)
    assert (stopped.created, stopped.stopped) == (0, "paused")
    assert OutboxMessage.objects.filter(source=campaign.source, due_at=PARKED_AT).count() == 10
    campaign_resume(campaign=campaign, now=T0 + timedelta(minutes=5))
    campaigns_tick(now=T0 + timedelta(minutes=5))  # enqueues the rest
    outbox_flush(now=T0 + timedelta(minutes=5))
    campaigns_tick(now=T0 + timedelta(minutes=6))
    assert received_once(smtp) == Counter({c.email: 1 for c in people})
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.FINISHED


def test_messages_a_stopped_worker_gives_back_are_held_again_while_paused(
    smtp: SmtpServer, policy: MessagingSettings
) -> None:
    customers(4)
    campaign = started(make_campaign())
    campaign_pause(campaign=campaign, now=T0)
    # What `outbox_release` does when a flush that claimed rows is interrupted.
    OutboxMessage.objects.filter(source=campaign.source).update(due_at=T0)
    campaigns_tick(now=T0 + timedelta(minutes=1))
    assert outbox_flush(now=T0 + timedelta(minutes=1)).claimed == 0


def test_cancelling_drops_the_unsent_messages_with_a_log_entry(
    smtp: SmtpServer, policy: MessagingSettings
) -> None:
    customers(6)
    campaign = started(make_campaign())
    outbox_flush(now=T0, limit=2)
    campaign_cancel(campaign=campaign, now=T0, actor="merchant")
    assert campaign_status_counts(campaign) == {"sent": 2, "dropped": 4}
    assert DeliveryLog.objects.filter(event="dropped", reason="campaign cancelled").count() == 4
    with pytest.raises(ConflictError):
        campaign_resume(campaign=campaign, now=T0)


def test_a_campaign_scheduled_for_later_starts_at_its_time(
    smtp: SmtpServer, olivia: Customer
) -> None:
    campaign = make_campaign()
    campaign_schedule(campaign=campaign, now=T0, send_at=T0 + timedelta(hours=2))
    assert campaigns_tick(now=T0 + timedelta(hours=1)).started == []
    with pytest.raises(ConflictError):
        campaign_start(campaign=campaign, now=T0 + timedelta(hours=1))
    tick = campaigns_tick(now=T0 + timedelta(hours=2))
    assert tick.started == [campaign.pk] and tick.enqueued == 1
    outbox_flush(now=T0 + timedelta(hours=2))
    assert campaigns_tick(now=T0 + timedelta(hours=2, minutes=1)).finished == [campaign.pk]


def test_scheduling_refuses_a_variant_without_a_template_or_with_a_broken_one(
    olivia: Customer,
) -> None:
    with pytest.raises(ValidationError, match="no push template"):
        campaign_schedule(campaign=make_campaign(channel_order="email,sms,push"), now=T0)
    make_template(key="broken", body_text="Hi {{ customer.first_name ", body_html="")
    with pytest.raises(ValidationError, match="broken"):
        campaign_schedule(campaign=make_campaign(variants=(("A", 1, "broken"),)), now=T0)
    with pytest.raises(ValidationError, match="unknown channel"):
        campaign_schedule(campaign=make_campaign(channel_order="email,fax"), now=T0)


def test_a_template_error_for_one_customer_stops_only_their_message_and_is_logged(
    zahra: Customer, olivia: Customer
) -> None:
    for language in ("fa", "en"):
        make_template(key="reorder", language=language, subject="{{ last_order.id }}",
                      body_html="", body_text="Your order {{ last_order.id }}")
    campaign = make_campaign(variants=(("A", 1, "reorder"),))
    campaign = started(campaign)
    assert OutboxMessage.objects.filter(source=campaign.source).count() == 0
    event = CampaignEvent.objects.get(campaign=campaign, event="template_errors")
    assert event.reason.startswith("2 messages not sent; first: subject")


# -- control group, channels ---------------------------------------------------------------------


def test_held_out_customers_are_logged_never_sent_and_do_not_keep_the_campaign_open(
    smtp: SmtpServer, policy: MessagingSettings
) -> None:
    customers(40)
    campaign = started(make_campaign(control_percent=Decimal(50)))
    counts = campaign_status_counts(campaign)
    assert 8 <= counts["held_out"] <= 32  # Binomial(40, 0.5): within 4 sd
    assert outbox_flush(now=T0).sent == counts["queued"]
    assert len(smtp.sink.received) == counts["queued"]
    assert campaigns_tick(now=T0).finished == [campaign.pk]


def test_each_customer_gets_the_first_channel_they_can_receive(
    zahra: Customer, olivia: Customer
) -> None:
    consent_set(customer=olivia, channel=Channel.EMAIL, granted=False, source="test", now=T0)
    campaign = started(make_campaign(channel_order="email,sms"))
    channels = dict(
        OutboxMessage.objects.filter(source=campaign.source).values_list("customer_id", "channel")
    )
    assert channels == {zahra.pk: "email", olivia.pk: "sms"}


# -- send-time rules -----------------------------------------------------------------------------


def test_an_unsubscribe_takes_effect_before_the_next_message(
    smtp: SmtpServer, zahra: Customer, olivia: Customer
) -> None:
    campaign = started(make_campaign())
    recipient_unsubscribe(
        token=recipient_token(customer_id=zahra.pk, channel=Channel.EMAIL), source="test",
        now=T0 + timedelta(seconds=1),
    )
    outbox_flush(now=T0 + timedelta(seconds=2))
    assert [str(m["To"]) for m in smtp.sink.received] == [olivia.email]
    message = OutboxMessage.objects.get(source=campaign.source, customer=zahra)
    assert message.status == Status.SUPPRESSED


def test_quiet_hours_and_caps_hold_for_tehran_dubai_and_toronto_in_one_campaign(
    smtp: SmtpServer, zahra: Customer, layla: Customer, olivia: Customer,
    policy: MessagingSettings,
) -> None:
    policy.cap_action = PolicyAction.DEFER
    policy.save()
    # Olivia already had 3 marketing messages this week (the cap): Monday, Tuesday, today.
    for day in (2, 1, 0):
        message = message_enqueue(
            customer=olivia, channel=Channel.EMAIL, kind="marketing", source=f"older:{day}",
            template_key="news", now=T0 - timedelta(days=day),
        ).message
        OutboxMessage.objects.filter(pk=message.pk).update(
            status=Status.SENT, sent_at=T0 - timedelta(days=day, hours=4)
        )
    # 19:00 UTC on Wednesday: 22:30 in Tehran and 23:00 in Dubai (quiet), 14:00 in Toronto.
    evening = T0 + timedelta(hours=4, minutes=30)
    campaign = started(make_campaign(), now=evening)
    outbox_flush(now=evening)
    rows = {m.customer_id: m for m in OutboxMessage.objects.filter(source=campaign.source)}
    assert {rows[c.pk].status for c in (zahra, layla, olivia)} == {Status.DEFERRED}
    assert rows[zahra.pk].status_reason.startswith("quiet_hours")
    assert rows[layla.pk].status_reason.startswith("quiet_hours")
    assert rows[olivia.pk].status_reason.startswith("cap")
    # 09:00 local the next morning: Tehran is 05:30 UTC, Dubai 05:00 UTC.
    assert rows[zahra.pk].due_at == T0.replace(day=6, hour=5, minute=30)
    assert rows[layla.pk].due_at == T0.replace(day=6, hour=5, minute=0)
    # The cap frees a slot when Monday's message leaves the 7-day window: next Monday, Toronto.
    assert rows[olivia.pk].due_at.astimezone(ZoneInfo("America/Toronto")).date().isoformat() == "2025-03-10"
    outbox_flush(now=T0.replace(day=6, hour=6))
    assert sorted(str(m["To"]) for m in smtp.sink.received) == [layla.email, zahra.email]
    outbox_flush(now=T0.replace(day=10, hour=14))
    assert received_once(smtp) == Counter({zahra.email: 1, layla.email: 1, olivia.email: 1})
    assert campaigns_tick(now=T0.replace(day=10, hour=14)).finished == [campaign.pk]


# -- auto-pause ----------------------------------------------------------------------------------


def test_a_bounce_spike_pauses_the_campaign_with_its_reason_until_a_person_resumes_it(
    smtp: SmtpServer, policy: MessagingSettings
) -> None:
    people = customers(30)
    smtp.sink.refuse = {c.email for c in people[:6]}  # 20% of the list does not exist
    campaign = started(make_campaign(min_sample=20, max_bounce_percent=Decimal(5)))
    outbox_flush(now=T0, limit=20)
    tick = campaigns_tick(now=T0 + timedelta(minutes=1))
    assert tick.auto_paused == [campaign.pk]
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.PAUSED
    assert campaign.status_reason.startswith("bounce rate 30.00% (6 of 20) above 5")
    event = CampaignEvent.objects.get(campaign=campaign, event="auto_paused")
    assert event.actor == "auto" and "bounce rate" in event.reason
    assert outbox_flush(now=T0 + timedelta(minutes=2)).claimed == 0
    # Resumed by hand: judged afresh from now, so the old bounces do not pause it again.
    campaign_resume(campaign=campaign, now=T0 + timedelta(minutes=3), actor="merchant")
    outbox_flush(now=T0 + timedelta(minutes=3))
    assert campaigns_tick(now=T0 + timedelta(minutes=4)).finished == [campaign.pk]
    assert len(smtp.sink.received) == 24


def test_a_complaint_spike_pauses_the_campaign(
    smtp: SmtpServer, policy: MessagingSettings
) -> None:
    customers(20)
    campaign = started(make_campaign(min_sample=10, max_complaint_percent=Decimal("0.3")))
    outbox_flush(now=T0, limit=10)
    assert campaigns_tick(now=T0).auto_paused == []  # 10 sent, no complaint
    sent = OutboxMessage.objects.filter(source=campaign.source, status=Status.SENT).first()
    assert sent is not None
    provider_event_record(
        provider_message_id=sent.provider_message_id, event="complained", now=T0
    )
    assert campaigns_tick(now=T0 + timedelta(minutes=1)).auto_paused == [campaign.pk]
    campaign.refresh_from_db()
    assert campaign.status_reason.startswith("complaint rate 10.00% (1 of 10)")


def test_a_few_bounces_below_the_minimum_sample_do_not_pause(
    smtp: SmtpServer, policy: MessagingSettings
) -> None:
    people = customers(5)
    smtp.sink.refuse = {people[0].email}
    campaign = started(make_campaign(min_sample=200))
    outbox_flush(now=T0)
    assert campaigns_tick(now=T0).auto_paused == []
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.FINISHED


def test_the_batch_context_is_the_context_message_enqueue_builds(
    zahra: Customer, olivia: Customer
) -> None:
    from vafa.customers.models import Order, OrderLine, Product
    from vafa.loyalty.services import points_adjust
    from vafa.messaging.campaigns.bulk import BatchContext
    from vafa.messaging.compose import message_context

    points_adjust(customer=zahra, points=1240, reason="welcome", actor="test",
                  idempotency_key="ctx-1", now=T0 - timedelta(days=1))
    tea = Product.objects.create(external_id="P1", name="Tea", currency="IRT")
    for number, day in (("1001", 9), ("1002", 3)):
        order = Order.objects.create(
            external_id=number, customer=zahra, placed_at=T0 - timedelta(days=day),
            status="paid", total=Decimal(1_250_000), currency="IRT",
        )
        OrderLine.objects.create(order=order, line_no=1, product=tea, quantity=2,
                                 unit_price=Decimal(625_000))
    batch = BatchContext.load([zahra, olivia], now=T0, site_url="https://shop.example",
                              extra={"social_proof": "1,240 customers bought this"})
    for customer, language in ((zahra, "fa"), (olivia, "en")):
        expected = message_context(
            customer=customer, channel=Channel.EMAIL, now=T0, site_url="https://shop.example",
            language=language, extra={"social_proof": "1,240 customers bought this"},
        )
        got = batch.for_message(customer, channel=Channel.EMAIL, language=language)
        for tokenised in ("unsubscribe_url", "preferences_url"):  # fresh random nonce each time
            assert got.pop(tokenised).rsplit("/", 2)[0] == expected.pop(tokenised).rsplit("/", 2)[0]
        assert got == expected
    last_order = batch.last_orders[zahra.pk]
    assert batch.points[zahra.pk] == 1240 and last_order is not None
    assert last_order["id"] == "1002"


def test_rows_written_by_the_batched_insert_read_back_as_the_orm_writes_them(
    zahra: Customer, olivia: Customer
) -> None:
    from vafa.messaging.campaigns.bulk import (
        BulkItem,
        messages_enqueue_bulk,
        outbox_batch_insert,
        outbox_batch_prepare,
    )
    from vafa.messaging.models import MessageTemplate

    template = MessageTemplate.objects.get(key="news", channel=Channel.EMAIL, language="en")
    items = [BulkItem(customer=c, channel=Channel.EMAIL, template=template, step="s",
                      variant="B", data={"n": 1}) for c in (zahra, olivia)]
    due = T0 + timedelta(minutes=5)
    prepared = outbox_batch_prepare(items=items, kind="marketing", source="bulk", now=T0,
                                    due_at=due, topic="offers")
    assert outbox_batch_insert(prepared) == 2
    for expected in prepared.rows:
        row = OutboxMessage.objects.get(dedupe_key=expected.dedupe_key)
        for name in ("status", "kind", "topic", "variant", "due_at", "created_at", "updated_at",
                     "customer_id", "template_id", "subject", "body_html", "expires_at"):
            assert getattr(row, name) == getattr(expected, name), name
        assert row.data == {"n": 1, "variant": "B", "unsubscribe_url": row.data["unsubscribe_url"]}
    assert OutboxMessage.objects.filter(source="bulk", due_at__lte=due).count() == 2
    assert OutboxMessage.objects.filter(source="bulk", due_at__lt=due).count() == 0
    again = messages_enqueue_bulk(items=items, kind="marketing", source="bulk", now=T0)
    assert (again.created, again.existing) == (0, 2)


def test_the_audience_counts_orders_themselves_not_the_last_runs_stored_totals(
    policy: MessagingSettings,
) -> None:
    """An order imported after the analysis (no change-feed row: a file import without
    --notify) is invisible to the stored totals; a "never bought" campaign must still skip
    its buyer."""
    people = customers(3)
    customer_stats_refresh(run=AnalysisRun.objects.create(status=AnalysisRun.Status.DONE),
                           now=T0)
    Order.objects.create(external_id="imported", customer=people[0], status=OrderStatus.PAID,
                         placed_at=T0 - timedelta(days=3), total=Decimal("100"), currency="IRR")
    campaign = make_campaign(definition={"match": "all", "rules": [
        {"field": "order_count", "max": 0}]})

    audience = set(campaign_audience(campaign, now=T0).values_list("pk", flat=True))

    assert audience == {people[1].pk, people[2].pk}
