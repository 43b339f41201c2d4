"""Customer pages over HTTP: search, the customer 360, its actions, roles and query budget."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from tests.dashboard.conftest import MakeMember
from tests.dashboard.visible import latin_digits, visible_text
from tests.loyalty.conftest import make_base_rule, make_program
from vafa.core.roles import ANALYST, MARKETER, OWNER, SUPPORT
from vafa.customers.models import Customer, Event, Order, OrderStatus
from vafa.insights.models import CustomerNote
from vafa.loyalty.models import EarningRule, LedgerEntry, Reward, RewardKind, RuleKind
from vafa.loyalty.services import order_sync_points, points_adjust, points_award, reward_redeem
from vafa.messaging.models import MessageTemplate, OutboxMessage

pytestmark = pytest.mark.db

NOW = timezone.now()


@pytest.fixture
def customer(db: None) -> Customer:
    """Maryam, with three paid orders, a page view and an email address."""
    maryam = Customer.objects.create(
        external_id="C-1001", first_name="مریم", last_name="احمدی", email="maryam@example.com",
        phone="+989121234567", city="Tehran",
    )
    for day in range(3):
        Order.objects.create(
            external_id=f"O-{day}", customer=maryam, placed_at=NOW - dt.timedelta(days=30 * day),
            status=OrderStatus.PAID, total=Decimal("1200000"), currency="IRT",
        )
    Event.objects.create(customer=maryam, type="product_view", occurred_at=NOW)
    return maryam


@pytest.fixture
def template(db: None) -> MessageTemplate:
    return MessageTemplate.objects.create(
        key="winback", channel="email", language="fa", subject="دلمان برایتان تنگ شده",
        body_text="سلام", body_html="<p>سلام</p>",
    )


def _detail(customer: Customer) -> str:
    return f"/dashboard/customers/{customer.pk}/"


def _form_key(page: str) -> str:
    match = re.search(r'name="form_key" value="([0-9a-f]+)"', page)
    assert match, "the page has no action form"
    return match.group(1)


# -- who may see and do what ------------------------------------------------------------------

@pytest.mark.parametrize("role", [OWNER, MARKETER, SUPPORT, ANALYST])
def test_every_role_reads_the_customer_list_and_page(
    client: Client, make_member: MakeMember, customer: Customer, role: str
) -> None:
    client.force_login(make_member(role))
    assert client.get("/dashboard/customers/").status_code == 200
    assert client.get(_detail(customer)).status_code == 200


def test_a_staff_account_without_a_role_is_refused_and_a_visitor_sent_to_log_in(
    client: Client, make_member: MakeMember, customer: Customer
) -> None:
    assert client.get(_detail(customer))["Location"].startswith("/admin/login/")
    client.force_login(make_member())
    assert client.get("/dashboard/customers/").status_code == 403
    assert client.get(_detail(customer)).status_code == 403


@pytest.mark.parametrize(
    ("role", "points", "message", "note"),
    [
        (OWNER, 302, 302, 302),
        (SUPPORT, 302, 403, 302),
        (MARKETER, 403, 302, 302),
        (ANALYST, 403, 403, 403),
    ],
)
def test_each_role_may_take_only_its_actions(
    client: Client, make_member: MakeMember, customer: Customer, template: MessageTemplate,
    role: str, points: int, message: int, note: int,
) -> None:
    client.force_login(make_member(role))
    base = _detail(customer)
    assert client.post(base + "points/", {"points": "10", "reason": "gift",
                                          "form_key": "k1"}).status_code == points
    assert client.post(base + "message/", {"template": "winback|email", "kind": "marketing",
                                           "form_key": "k2"}).status_code == message
    assert client.post(base + "notes/", {"body": "hi", "form_key": "k3"}).status_code == note
    assert LedgerEntry.objects.count() == (1 if points == 302 else 0)
    assert OutboxMessage.objects.count() == (1 if message == 302 else 0)
    assert CustomerNote.objects.count() == (1 if note == 302 else 0)


def test_the_page_hides_the_forms_a_role_may_not_use(
    client: Client, make_member: MakeMember, customer: Customer, template: MessageTemplate
) -> None:
    client.force_login(make_member(SUPPORT))
    page = client.get(_detail(customer)).content.decode()
    assert 'id="adjust-points"' in page and 'id="send-message"' not in page
    client.force_login(make_member(ANALYST))
    page = client.get(_detail(customer)).content.decode()
    assert 'id="actions"' not in page


# -- what the page shows ----------------------------------------------------------------------

def test_the_page_shows_profile_orders_and_events_in_three_languages(
    client: Client, staff: User, customer: Customer
) -> None:
    client.force_login(staff)
    en = client.get(_detail(customer), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    for text in ("مریم احمدی", "maryam@example.com", "Tehran", "Orders", "Product view",
                 "Points ledger", "Consent", "Segment history", "Tier history", "Survey answers",
                 "Tickets", "Messages"):
        assert text in en, text
    assert "1,200,000" in en or "1.2" in en
    fa = client.get(_detail(customer), HTTP_ACCEPT_LANGUAGE="fa").content.decode()
    ar = client.get(_detail(customer), HTTP_ACCEPT_LANGUAGE="ar").content.decode()
    assert latin_digits(fa) == [], latin_digits(fa)[:5]
    assert latin_digits(ar) == [], latin_digits(ar)[:5]
    assert re.search("[۰-۹]", visible_text(fa)) and re.search("[٠-٩]", visible_text(ar))


def test_an_unknown_customer_is_a_404(client: Client, staff: User) -> None:
    client.force_login(staff)
    assert client.get("/dashboard/customers/999999/").status_code == 404


def test_search_finds_a_customer_by_id_phone_in_persian_digits_email_and_name(
    client: Client, staff: User, customer: Customer
) -> None:
    Customer.objects.create(external_id="C-2", first_name="Reza")
    client.force_login(staff)
    for query in ("C-1001", "۰۹۱۲۱۲۳۴۵۶۷", "MARYAM@example.com", "مری", "مریم احم"):
        page = client.get("/dashboard/customers/", {"q": query}).content.decode()
        assert _detail(customer) in page, query
        assert "Reza" not in page, query
    page = client.get("/dashboard/customers/", {"q": "nobody"}).content.decode()
    assert _detail(customer) not in page


def test_long_histories_are_paged(client: Client, staff: User, customer: Customer) -> None:
    Order.objects.bulk_create(
        Order(external_id=f"OLD-{i}", customer=customer, status=OrderStatus.PAID,
              placed_at=NOW - dt.timedelta(days=400 + i), total=Decimal(1000), currency="IRT")
        for i in range(25)
    )
    client.force_login(staff)
    first = client.get(_detail(customer), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    second = client.get(_detail(customer), {"orders": 2}, HTTP_ACCEPT_LANGUAGE="en")
    assert "OLD-24" not in first and "O-0" in first and "?orders=2" in first
    assert "OLD-24" in second.content.decode()


@pytest.mark.parametrize("history", [1, 40])
def test_the_page_runs_a_fixed_number_of_queries_whatever_the_history(
    client: Client, staff: User, customer: Customer, template: MessageTemplate, history: int,
    django_assert_num_queries: object,
) -> None:
    Order.objects.bulk_create(
        Order(external_id=f"H-{i}", customer=customer, status=OrderStatus.PAID,
              placed_at=NOW - dt.timedelta(days=i), total=Decimal(1000), currency="IRT")
        for i in range(history)
    )
    Event.objects.bulk_create(
        Event(customer=customer, type="page_view", occurred_at=NOW - dt.timedelta(hours=i))
        for i in range(history)
    )
    client.force_login(staff)
    for i in range(min(history, 25)):
        client.post(_detail(customer) + "points/", {"points": "5", "reason": "r",
                                                    "form_key": f"p{i}"})
        client.post(_detail(customer) + "notes/", {"body": "n", "form_key": f"n{i}"})
    # The same count for 1 and 40 orders/events and 25 ledger entries and notes: session,
    # user, roles, shop name, customer, score, order totals, member, 7 paged lists, balance (2),
    # tier changes, segment history, consents, suppressions, templates.
    with django_assert_num_queries(22):  # type: ignore[operator]
        assert client.get(_detail(customer)).status_code == 200


# -- actions ----------------------------------------------------------------------------------

def test_support_adjusts_points_with_a_reason_and_a_resubmit_books_once(
    client: Client, make_member: MakeMember, customer: Customer
) -> None:
    client.force_login(make_member(SUPPORT, username="sara"))
    key = _form_key(client.get(_detail(customer)).content.decode())
    for _ in range(2):
        response = client.post(_detail(customer) + "points/",
                               {"points": "۵۰۰", "reason": "late delivery", "form_key": key},
                               HTTP_ACCEPT_LANGUAGE="en")  # the notice is worded in English
        assert response.status_code == 302 and response["Location"] == _detail(customer)
    entry = LedgerEntry.objects.get()
    assert (entry.points, entry.reason, entry.actor) == (500, "late delivery", "sara")
    page = client.get(_detail(customer), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Points adjusted." in page
    assert re.search(r'data-testid="points-available">500<', page)


@pytest.mark.parametrize(("language", "expected"), [
    ("en", ["Order", "Reward: Free coffee", "Signup bonus", "late delivery"]),
    ("fa", ["سفارش", "جایزه: Free coffee", "late delivery"]),
])
def test_the_ledger_shows_the_engines_reasons_in_words(
    client: Client, make_member: MakeMember, customer: Customer, language: str,
    expected: list[str],
) -> None:
    make_program()
    make_base_rule()
    EarningRule.objects.create(name="welcome", kind=RuleKind.SIGNUP, points=50, active=True)
    now = timezone.now()
    order = Order.objects.create(external_id="o-r", customer=customer, placed_at=now,
                                 status=OrderStatus.PAID, total=Decimal(1_000_000),
                                 currency="IRT")
    order_sync_points(order=order, now=now)
    points_award(customer=customer, kind=RuleKind.SIGNUP, reference="s", now=now)
    points_adjust(customer=customer, points=1000, reason="late delivery", actor="sara",
                  idempotency_key="adj", now=now)
    coffee = Reward.objects.create(name="Free coffee", kind=RewardKind.GIFT, points_cost=10)
    reward_redeem(customer=customer, reward=coffee, idempotency_key="r1", now=now)
    client.force_login(make_member(SUPPORT))
    page = client.get(_detail(customer), HTTP_ACCEPT_LANGUAGE=language).content.decode()
    ledger = visible_text(page.split("<h2>", 1)[1])
    for text in expected:
        assert text in ledger, text
    assert "reward:" not in ledger


def test_an_adjustment_without_a_reason_is_refused_with_a_translated_reason(
    client: Client, staff: User, customer: Customer
) -> None:
    client.force_login(staff)
    response = client.post(_detail(customer) + "points/",
                           {"points": "100", "reason": " ", "form_key": "x"},
                           HTTP_ACCEPT_LANGUAGE="en", follow=True)
    assert "give a reason for the adjustment" in response.content.decode()
    assert not LedgerEntry.objects.exists()
    client.post(_detail(customer) + "points/", {"points": "0", "reason": "r", "form_key": "y"})
    assert not LedgerEntry.objects.exists()


def test_a_marketer_sends_a_templated_message_once(
    client: Client, make_member: MakeMember, customer: Customer, template: MessageTemplate
) -> None:
    client.force_login(make_member(MARKETER))
    key = _form_key(client.get(_detail(customer)).content.decode())
    for _ in range(2):
        # Asking for a "transactional" send changes nothing: consent rules always apply.
        client.post(_detail(customer) + "message/",
                    {"template": "winback|email", "kind": "transactional", "form_key": key})
    message = OutboxMessage.objects.get()
    assert message.kind == "marketing"
    assert (message.customer_id, message.channel, message.source) == (customer.pk, "email",
                                                                      "dashboard")
    assert message.status != "held_out"
    page = client.get(_detail(customer), HTTP_ACCEPT_LANGUAGE="fa").content.decode()
    assert "دلمان برایتان تنگ شده" in page


def test_an_unknown_template_is_refused(
    client: Client, staff: User, customer: Customer
) -> None:
    client.force_login(staff)
    response = client.post(_detail(customer) + "message/",
                           {"template": "nope|email", "kind": "marketing", "form_key": "z"},
                           HTTP_ACCEPT_LANGUAGE="en", follow=True)
    assert "Message not sent" in response.content.decode()
    assert not OutboxMessage.objects.exists()


def test_a_note_is_saved_once_and_shown_with_its_author(
    client: Client, make_member: MakeMember, customer: Customer
) -> None:
    client.force_login(make_member(SUPPORT, username="sara"))
    for _ in range(2):
        client.post(_detail(customer) + "notes/", {"body": "ترجیح می‌دهد تلفنی", "form_key": "k"})
    note = CustomerNote.objects.get()
    assert (note.author, note.customer_id) == ("sara", customer.pk)
    page = client.get(_detail(customer)).content.decode()
    assert "ترجیح می‌دهد تلفنی" in page and "sara" in page
