"""Quiet hours, the weekend and frequency caps, in each customer's own time zone: first the
pure rules, then through one flush with customers in Tehran, Dubai and Toronto."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.messaging.conftest import T0, enqueue
from tests.messaging.fakes import SmtpServer
from vafa.customers.models import Customer
from vafa.messaging.models import MessageKind, MessagingSettings, OutboxMessage, Status
from vafa.messaging.outbox import outbox_flush
from vafa.messaging.policy import (
    CAP,
    QUIET_HOURS,
    WEEKEND,
    Cap,
    Rules,
    customer_zone,
    retry_delay,
    send_window,
)
from vafa.messaging.services import preferences_update

TEHRAN, DUBAI, TORONTO = ZoneInfo("Asia/Tehran"), ZoneInfo("Asia/Dubai"), ZoneInfo("America/Toronto")
RULES = Rules(quiet_start=time(22), quiet_end=time(9), weekend=frozenset(), caps=(Cap(3, 7),))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_quiet_hours_are_read_on_the_customers_own_clock() -> None:
    moment = utc(2025, 3, 5, 18, 40)  # Tehran 22:10, Dubai 22:40, Toronto 13:40
    tehran = send_window(now=moment, zone=TEHRAN, rules=RULES)
    assert (tehran.reason, tehran.not_before) == (QUIET_HOURS, utc(2025, 3, 6, 5, 30))
    dubai = send_window(now=moment, zone=DUBAI, rules=RULES)
    assert (dubai.reason, dubai.not_before) == (QUIET_HOURS, utc(2025, 3, 6, 5, 0))
    assert send_window(now=moment, zone=TORONTO, rules=RULES).allowed


def test_early_morning_waits_until_the_same_mornings_end_of_quiet_hours() -> None:
    window = send_window(now=utc(2025, 3, 5, 3, 0), zone=TEHRAN, rules=RULES)  # 06:30 local
    assert window.not_before == utc(2025, 3, 5, 5, 30)  # 09:00 the same day


def test_the_cap_counts_local_calendar_days() -> None:
    # 2025-02-26 21:00 UTC is already 27 February in Tehran, inside the 7 local days that end
    # on 5 March (27 Feb – 5 Mar); counted by UTC date it would have fallen out.
    sent = [utc(2025, 2, 26, 21, 0), utc(2025, 3, 1, 8, 0), utc(2025, 3, 3, 8, 0)]
    moment = utc(2025, 3, 5, 10, 0)  # 13:30 in Tehran
    window = send_window(now=moment, zone=TEHRAN, rules=RULES, sent_at=sent)
    assert window.reason == CAP
    # 27 Feb leaves the window on 6 March (local midnight), then quiet hours last until 09:00.
    assert window.not_before == datetime(2025, 3, 6, 9, 0, tzinfo=TEHRAN)
    # In Toronto the first message was still 26 February: out of the window, so no cap.
    caps_only = Rules(quiet_start=None, quiet_end=None, weekend=frozenset(), caps=(Cap(3, 7),))
    assert send_window(now=moment, zone=TORONTO, rules=caps_only, sent_at=sent).allowed


def test_a_friday_weekend_moves_marketing_to_saturday_morning() -> None:
    rules = Rules(quiet_start=time(22), quiet_end=time(9), weekend=frozenset({5}), caps=())
    friday_noon = datetime(2025, 3, 7, 12, 0, tzinfo=TEHRAN)
    window = send_window(now=friday_noon, zone=TEHRAN, rules=rules)
    assert (window.reason, window.not_before) == (WEEKEND, datetime(2025, 3, 8, 9, 0, tzinfo=TEHRAN))


def test_a_deferral_across_a_daylight_saving_change_keeps_local_nine_oclock() -> None:
    # Toronto moves its clocks forward on 9 March 2025 at 02:00.
    saturday_night = datetime(2025, 3, 8, 23, 0, tzinfo=TORONTO)
    window = send_window(now=saturday_night, zone=TORONTO, rules=RULES)
    assert window.not_before == utc(2025, 3, 9, 13, 0)  # 09:00 EDT (UTC−4), not 14:00


def test_retries_back_off_exponentially_up_to_the_maximum() -> None:
    delays = [retry_delay(attempts=n, base_seconds=60, max_seconds=3600) for n in range(1, 9)]
    assert delays == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    jittered = retry_delay(attempts=1, base_seconds=60, max_seconds=3600, jitter_seed=12345)
    assert 60 <= jittered <= 66


def test_a_blank_or_unknown_zone_falls_back_to_the_shop_zone(settings: object) -> None:
    assert customer_zone("") == ZoneInfo("Asia/Tehran")
    assert customer_zone("Mars/Olympus") == ZoneInfo("Asia/Tehran")


def _already_sent(customer: Customer, *moments: datetime) -> None:
    for i, moment in enumerate(moments):
        OutboxMessage.objects.filter(pk=enqueue(customer, source=f"past:{i}").pk).update(
            status=Status.SENT, sent_at=moment
        )


def test_one_flush_applies_each_customers_quiet_hours_and_cap(
    smtp: SmtpServer, zahra: Customer, layla: Customer, olivia: Customer, templates: object
) -> None:
    moment = utc(2025, 3, 5, 18, 10)  # Tehran 21:40, Dubai 22:10, Toronto 13:10
    _already_sent(olivia, utc(2025, 2, 28, 15, 0), utc(2025, 3, 2, 15, 0), utc(2025, 3, 4, 15, 0))
    messages = {c.external_id: enqueue(c, source="campaign:9", now=moment) for c in (zahra, layla, olivia)}
    result = outbox_flush(now=moment)
    assert (result.sent, result.deferred) == (1, 2)
    for message in messages.values():
        message.refresh_from_db()
    assert messages["zahra"].status == Status.SENT
    assert messages["layla"].status == Status.DEFERRED
    assert messages["layla"].due_at == utc(2025, 3, 6, 5, 0)  # 09:00 in Dubai
    assert messages["layla"].status_reason.startswith("quiet_hours until")
    assert messages["olivia"].status == Status.DEFERRED
    # 28 Feb (Toronto) leaves her 7-day window on 7 March; 09:00 EST is 14:00 UTC.
    assert messages["olivia"].due_at == utc(2025, 3, 7, 14, 0)
    assert messages["olivia"].status_reason.startswith("cap until")
    assert [m.event for m in messages["olivia"].log.all()] == ["deferred"]
    assert outbox_flush(now=utc(2025, 3, 6, 5, 0)).sent == 1  # Layla's morning
    assert outbox_flush(now=utc(2025, 3, 7, 14, 0)).sent == 1  # Olivia's turn
    assert sorted(str(m["To"]) for m in smtp.sink.received) == [
        "layla@example.ae", "olivia@example.ca", "zahra@example.ir",
    ]


def test_transactional_messages_ignore_quiet_hours_and_caps(
    smtp: SmtpServer, layla: Customer, templates: object
) -> None:
    moment = utc(2025, 3, 5, 23, 0)  # 03:00 in Dubai
    _already_sent(layla, moment - timedelta(days=1), moment - timedelta(days=2), moment - timedelta(days=3))
    message = enqueue(layla, kind=MessageKind.TRANSACTIONAL, source="flow:shipping", now=moment)
    outbox_flush(now=moment)
    message.refresh_from_db()
    assert message.status == Status.SENT


def test_the_shop_can_drop_instead_of_defer_and_the_log_says_which(
    smtp: SmtpServer, layla: Customer, olivia: Customer, policy: MessagingSettings,
    templates: object,
) -> None:
    MessagingSettings.objects.filter(pk=1).update(quiet_action="drop", cap_action="drop")
    moment = utc(2025, 3, 5, 18, 10)
    _already_sent(olivia, utc(2025, 3, 3, 15, 0), utc(2025, 3, 4, 15, 0), utc(2025, 3, 5, 15, 0))
    quiet = enqueue(layla, now=moment)
    capped = enqueue(olivia, now=moment)
    outbox_flush(now=moment)
    quiet.refresh_from_db()
    capped.refresh_from_db()
    assert (quiet.status, quiet.status_reason) == (Status.DROPPED, QUIET_HOURS)
    assert (capped.status, capped.status_reason) == (Status.CAPPED, CAP)
    assert [m.event for m in capped.log.all()] == ["capped"]
    assert smtp.sink.received == []


def test_the_weekend_rule_holds_marketing_when_the_shop_switches_it_on(
    smtp: SmtpServer, zahra: Customer, policy: MessagingSettings, templates: object
) -> None:
    MessagingSettings.objects.filter(pk=1).update(no_marketing_on_weekend=True)
    friday = utc(2025, 3, 7, 8, 0)  # Friday 11:30 in Tehran
    message = enqueue(zahra, now=friday)
    outbox_flush(now=friday)
    message.refresh_from_db()
    assert message.status_reason.startswith(WEEKEND)
    assert message.due_at == datetime(2025, 3, 8, 9, 0, tzinfo=TEHRAN)


def test_a_customers_own_frequency_choice_is_a_cap_of_its_own(
    smtp: SmtpServer, olivia: Customer, templates: object
) -> None:
    preferences_update(customer=olivia, now=T0, source="test", frequency="weekly")
    _already_sent(olivia, T0 - timedelta(days=2))
    message = enqueue(olivia)
    outbox_flush(now=T0)
    message.refresh_from_db()
    assert message.status == Status.DEFERRED and message.status_reason.startswith("frequency")


def test_messages_sent_earlier_in_the_same_flush_count_toward_the_cap(
    smtp: SmtpServer, olivia: Customer, templates: object
) -> None:
    for step in range(5):
        enqueue(olivia, step=str(step))
    result = outbox_flush(now=T0)
    assert (result.sent, result.deferred) == (3, 2)
    assert len(smtp.sink.to("olivia@example.ca")) == 3


@pytest.mark.parametrize("hour", [21, 22])
def test_the_quiet_window_starts_exactly_at_its_start(hour: int) -> None:
    moment = datetime(2025, 3, 5, hour, 0, tzinfo=TEHRAN)
    assert send_window(now=moment, zone=TEHRAN, rules=RULES).allowed is (hour == 21)
