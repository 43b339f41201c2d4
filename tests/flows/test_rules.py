"""The rules of flows, through the services: marketing flows respect consent, suppression and
the control group; conditions are checked again before every step (a customer who orders again
leaves win-back); re-entry policies; a file import without notify sends nothing; loyalty events
and the daily scans start their flows."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from tests.flows.conftest import OLIVIA, Api, order_body, run_flows
from tests.messaging.fakes import SmtpServer
from vafa.customers import services as shop
from vafa.customers.models import Channel, Customer, Order, OrderStatus
from vafa.messaging.flows.defaults import flows_install_defaults
from vafa.messaging.flows.models import (
    EnrollmentState,
    Flow,
    FlowEnrollment,
    Reentry,
    Trigger,
)
from vafa.messaging.flows.services import flow_enroll, flows_advance, trigger_fire
from vafa.messaging.flows.triggers import on_loyalty_event, scan_birthdays, scan_overdue
from vafa.messaging.models import MessagingSettings, OutboxMessage, Status, SuppressionReason
from vafa.messaging.outbox import outbox_flush
from vafa.messaging.services import consent_set, suppression_add

pytestmark = pytest.mark.django_db


def customer(external_id: str, *, email_consent: bool = True, **fields: object) -> Customer:
    person = Customer.objects.create(
        external_id=external_id, email=f"{external_id}@example.com", language="en",
        timezone="Asia/Dubai", first_name=external_id.title(), **fields,
    )
    consent_set(customer=person, channel=Channel.EMAIL, granted=email_consent, source="test",
                now=timezone.now())
    return person


def switch_on(key: str, **changes: object) -> Flow:
    Flow.objects.filter(key=key).update(enabled=True, **changes)
    return Flow.objects.get(key=key)


def test_defaults_are_installed_once_with_the_agreed_flows_on(policy: MessagingSettings) -> None:
    on = set(Flow.objects.filter(enabled=True).values_list("key", flat=True))
    assert on == {"welcome", "order-thank-you", "order-shipped", "order-delivered"}
    assert set(Flow.objects.values_list("trigger", flat=True)) == set(Trigger.values)
    assert flows_install_defaults(now=timezone.now()) == 0  # idempotent
    from vafa.messaging.models import MessageTemplate

    for flow in Flow.objects.prefetch_related("steps"):
        for step in flow.steps.all():
            for channel in ("email", "sms"):
                languages = set(MessageTemplate.objects.filter(
                    key=step.template_key, channel=channel).values_list("language", flat=True))
                assert languages == {"fa", "ar", "en"}, (step.template_key, channel)


def test_a_marketing_flow_skips_customers_without_consent_or_suppressed(
    policy: MessagingSettings, smtp: SmtpServer
) -> None:
    now = timezone.now()
    welcome = Flow.objects.get(key="welcome")
    yes, no, blocked = customer("yes"), customer("no", email_consent=False), customer("blocked")
    suppression_add(channel=Channel.EMAIL, reason=SuppressionReason.HARD_BOUNCE,
                    customer=blocked, now=now)
    for person in (yes, no, blocked):
        flow_enroll(flow=welcome, customer=person, occurrence="signup", now=now)

    result = flows_advance(now=now)
    assert (result["enqueued"], result["no_channel"]) == (1, 2)
    outbox_flush(now=now)
    assert [str(m["To"]) for m in smtp.sink.received] == ["yes@example.com"]
    reasons = dict(FlowEnrollment.objects.values_list("customer__external_id", "reason"))
    assert "email:no_consent" in reasons["no"] and "sms:no_template" not in reasons["no"]
    assert "email:suppressed:hard_bounce" in reasons["blocked"]


def test_a_marketing_flow_holds_out_its_control_group_and_transactional_ones_do_not(
    policy: MessagingSettings,
) -> None:
    now = timezone.now()
    people = [customer(f"c{i}") for i in range(40)]
    welcome = switch_on("welcome", control_percent=Decimal(50))
    thanks = switch_on("order-thank-you", control_percent=Decimal(50))
    for i, person in enumerate(people):
        flow_enroll(flow=welcome, customer=person, occurrence="signup", now=now)
        Order.objects.create(external_id=f"O{i}", customer=person, placed_at=now,
                             status=OrderStatus.PAID, total=Decimal(10), currency="IRT")
        flow_enroll(flow=thanks, customer=person, occurrence=f"O{i}", now=now,
                    context={"order_id": f"O{i}"})
    flows_advance(now=now)

    held = OutboxMessage.objects.filter(status=Status.HELD_OUT)
    assert 8 <= held.filter(source="flow:welcome").count() <= 32  # ~50% of 40
    assert not held.filter(source="flow:order-thank-you").exists()
    assert OutboxMessage.objects.filter(source="flow:order-thank-you").count() == 40


def test_a_customer_who_orders_again_leaves_win_back_before_the_second_mail(
    policy: MessagingSettings,
) -> None:
    start = timezone.now()
    switch_on("win-back")
    lapsed = customer("lapsed")
    for i, days in enumerate((400, 370, 340)):
        Order.objects.create(external_id=f"L{i}", customer=lapsed, placed_at=start -
                             timedelta(days=days), status=OrderStatus.PAID, total=Decimal(10),
                             currency="IRT")
    assert scan_overdue(now=start) == 1
    assert scan_overdue(now=start) == 0  # the same lapse enrols once
    flows_advance(now=start)
    assert OutboxMessage.objects.filter(source="flow:win-back", step="0").count() == 1

    Order.objects.create(external_id="back", customer=lapsed, placed_at=start +
                         timedelta(days=2), status=OrderStatus.PAID, total=Decimal(10),
                         currency="IRT")
    flows_advance(now=start + timedelta(days=8))
    enrollment = FlowEnrollment.objects.get(flow__key="win-back")
    assert (enrollment.state, enrollment.reason) == (
        EnrollmentState.EXITED, "condition: no_order_since_entry")
    assert not OutboxMessage.objects.filter(source="flow:win-back", step="1").exists()


def test_reentry_policies(policy: MessagingSettings) -> None:
    now = timezone.now()
    person = customer("again")
    flow = switch_on("win-back", reentry=Reentry.NEVER)
    assert flow_enroll(flow=flow, customer=person, occurrence="lapse:1", now=now)
    assert flow_enroll(flow=flow, customer=person, occurrence="lapse:2", now=now) is None

    Flow.objects.filter(pk=flow.pk).update(reentry=Reentry.AFTER_EXIT)
    flow.refresh_from_db()
    assert flow_enroll(flow=flow, customer=person, occurrence="lapse:2", now=now) is None
    FlowEnrollment.objects.update(state=EnrollmentState.EXITED)
    assert flow_enroll(flow=flow, customer=person, occurrence="lapse:2", now=now)

    Flow.objects.filter(pk=flow.pk).update(reentry=Reentry.ALWAYS)
    flow.refresh_from_db()
    assert flow_enroll(flow=flow, customer=person, occurrence="lapse:3", now=now)
    assert flow_enroll(flow=flow, customer=person, occurrence="lapse:3", now=now) is None


def test_a_flow_switched_off_sends_nothing_more(policy: MessagingSettings) -> None:
    now = timezone.now()
    person = customer("off")
    flow = switch_on("onboarding")
    assert flow_enroll(flow=flow, customer=person, occurrence="signup", now=now)
    Flow.objects.filter(pk=flow.pk).update(enabled=False)
    flows_advance(now=now + timedelta(days=3))
    assert FlowEnrollment.objects.get().state == EnrollmentState.EXITED
    assert not OutboxMessage.objects.exists()
    assert trigger_fire(trigger=Trigger.SIGNUP, customer=customer("new"), occurrence="signup",
                        now=now)  # welcome is still on


def test_a_file_import_without_notify_sends_nothing(
    api: Api, smtp: SmtpServer, tmp_path: Path
) -> None:
    customers = tmp_path / "customers.csv"
    customers.write_text("customer_id,email,language,accepts_email\n"
                         "imported,imp@example.com,en,true\n", encoding="utf-8")
    orders = tmp_path / "orders.csv"
    today = timezone.now().date().isoformat()
    orders.write_text("order_id,customer_id,placed_at,status,total\n"
                      f"I1,imported,{today},shipped,10\n", encoding="utf-8")
    shop.customers_import(path=customers)
    shop.orders_import(path=orders)
    run_flows()
    assert smtp.sink.received == []
    assert not FlowEnrollment.objects.exists()


def test_an_order_with_a_failing_template_is_never_sent_broken(
    api: Api, smtp: SmtpServer
) -> None:
    from vafa.messaging.models import MessageTemplate

    MessageTemplate.objects.filter(key="flow-order-thank-you", language="en").update(
        subject="{{ order.no_such_field }}")
    api.post("/customers", {**OLIVIA, "accepts_email": False})
    api.post("/orders", order_body(customer_id="olivia"))
    run_flows()
    assert smtp.sink.received == []
    enrollment = FlowEnrollment.objects.get(flow__key="order-thank-you")
    assert enrollment.state == EnrollmentState.FAILED and "template" in enrollment.reason


def test_tier_up_and_birthday_start_their_flows(policy: MessagingSettings) -> None:
    from vafa.loyalty.events import TIER_CHANGED, LoyaltyEvent

    now = datetime(2025, 6, 10, 21, 30, tzinfo=timezone.get_fixed_timezone(0))
    switch_on("tier-up")
    switch_on("birthday")
    person = customer("gold", birth_date=date(1990, 6, 11))  # Dubai: already the 11th
    on_loyalty_event(LoyaltyEvent(TIER_CHANGED, "gold", now, {
        "direction": "up", "to": {"id": 2, "name": "Gold", "rank": 2}}))
    on_loyalty_event(LoyaltyEvent(TIER_CHANGED, "gold", now, {
        "direction": "down", "to": {"id": 1, "name": "Silver", "rank": 1}}))
    assert scan_birthdays(now=now) == 1
    assert scan_birthdays(now=now) == 0
    flows_advance(now=now)
    subjects = dict(OutboxMessage.objects.values_list("source", "subject"))
    assert subjects == {"flow:tier-up": "You reached Gold!",
                        "flow:birthday": f"Happy birthday, {person.first_name}!"}


def test_a_valuable_customer_entering_at_risk_is_reached_once_and_others_are_not(
    policy: MessagingSettings,
) -> None:
    from vafa.insights.models import AnalysisRun, CustomerScore, SegmentHistory

    now = timezone.now()
    switch_on("at-risk", params={"lookback_days": 2, "min_clv": 500})
    run = AnalysisRun.objects.create(status=AnalysisRun.Status.DONE)
    rich, vip, modest = customer("rich"), customer("vip"), customer("modest")
    for person, clv, is_vip in ((rich, 900, False), (vip, 10, True), (modest, 100, False)):
        CustomerScore.objects.create(
            customer=person, run=run, rfm_segment="at_risk", r_score=1, f_score=4, m_score=4,
            loyalty_label="at_risk", predicted_clv=Decimal(clv), vip=is_vip,
        )
        SegmentHistory.objects.create(customer=person, run=run, rfm_segment="at_risk",
                                      previous_segment="loyal", entered_at=now)
    old = customer("old")
    CustomerScore.objects.create(customer=old, run=run, rfm_segment="cant_lose", r_score=1,
                                 f_score=5, m_score=5, loyalty_label="at_risk", vip=True)
    SegmentHistory.objects.create(customer=old, run=run, rfm_segment="cant_lose",
                                  entered_at=now - timedelta(days=10))

    from vafa.messaging.flows.triggers import scan_at_risk

    assert scan_at_risk(now=now) == 2
    assert scan_at_risk(now=now) == 0
    assert set(FlowEnrollment.objects.values_list("customer__external_id", flat=True)) == {
        "rich", "vip"}


def test_every_default_template_renders_with_the_flows_variables(
    policy: MessagingSettings,
) -> None:
    from vafa.messaging.compose import render_message, sample_context
    from vafa.messaging.flows.selectors import flow_sample_context
    from vafa.messaging.models import MessageTemplate

    templates = MessageTemplate.objects.filter(key__startswith="flow-")
    assert templates.count() == 2 * 3 * 18  # 18 template keys, email + SMS, fa/ar/en
    for template in templates:
        context = sample_context(language=template.language)
        context.update(flow_sample_context(today=context["today"]))
        rendered = render_message(template=template, context=context, kind="marketing",
                                  dedupe_key="check", site_url="https://shop.example")
        assert rendered.text.strip(), template


def test_the_admin_lists_flows_switches_them_and_refuses_unknown_conditions(
    policy: MessagingSettings, admin_client: Any
) -> None:
    from vafa.messaging.flows.admin import FlowForm

    page = admin_client.get("/admin/flows/flow/")
    assert page.status_code == 200 and "flow-order-thank-you" in page.content.decode()
    welcome = Flow.objects.get(key="welcome")
    response = admin_client.post("/admin/flows/flow/", {
        "action": "switch_off", "_selected_action": [welcome.pk]})
    assert response.status_code == 302
    assert not Flow.objects.get(key="welcome").enabled
    form = FlowForm(instance=welcome, data={
        "key": "welcome", "name": "Welcome", "trigger": "signup", "kind": "marketing",
        "topic": "news", "reentry": "never", "channels": '["email", "fax"]',
        "conditions": '{"moon_is_full": true}', "params": "{}",
    })
    assert not form.is_valid()
    assert "moon_is_full" in str(form.errors) and "fax" in str(form.errors)


def test_a_real_tier_up_in_the_loyalty_club_starts_the_tier_up_flow(
    policy: MessagingSettings, django_capture_on_commit_callbacks: Any
) -> None:
    """Through the loyalty app's own services: the flows app subscribed at start-up hears the
    tier change after the commit."""
    from tests.loyalty.conftest import T0, make_base_rule, make_order, make_program
    from vafa.loyalty.models import Tier
    from vafa.loyalty.services import order_sync_points

    switch_on("tier-up")
    make_program()
    make_base_rule()
    Tier.objects.create(name="Gold", rank=0, min_points=100)
    member = customer("member")
    with django_capture_on_commit_callbacks(execute=True):
        order_sync_points(order=make_order(member, 2_000_000), now=T0)

    flows_advance(now=T0)
    [message] = OutboxMessage.objects.filter(source="flow:tier-up")
    assert (message.customer_id, message.subject) == (member.pk, "You reached Gold!")
