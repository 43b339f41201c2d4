"""Support signals (A8): response and resolution times and ticket ratings, per period and
channel, per customer, on the staff page; and the CSAT survey after a resolved ticket."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from django.contrib.auth.models import Group, User
from django.db.models import F
from django.test import Client

from tests.feedback.conftest import invite
from vafa.analytics.errors import StatisticalWarning
from vafa.analytics.metrics import support_times
from vafa.customers.models import Customer, Ticket
from vafa.feedback.models import SurveyInvitation
from vafa.feedback.selectors import survey_get
from vafa.feedback.services import invitation_create, response_score_record, survey_invitations_due
from vafa.feedback.support import customer_tickets, support_kpis, tickets_rated_low

MARCH = datetime(2026, 3, 2, 8, tzinfo=UTC)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def _frame() -> pd.DataFrame:
    """Five tickets opened on 2 March: first answers after 1, 2, 3, 4 and 10 hours; four
    resolved after 5, 6, 30 and 50 hours, one still open; rated 5, 4, 2, — and 1."""
    firsts = [1, 2, 3, 4, 10]
    resolutions: list[float | None] = [5, 6, 30, 50, None]
    return pd.DataFrame({
        "opened_at": [MARCH] * 5,
        "first_response_at": [MARCH + hours(h) for h in firsts],
        "resolved_at": [None if h is None else MARCH + hours(h) for h in resolutions],
        "satisfaction": [5, 4, 2, None, 1],
    })


def test_support_times_match_a_hand_computation() -> None:
    frame = support_times(_frame(), period="M", tz="UTC")
    first = frame[frame["metric"] == "first_response_hours"].iloc[0]
    # median of 1, 2, 3, 4, 10 = 3; p90 (linear) = 4 + 0.6 × (10 − 4) = 7.6; mean = 4.
    assert first["value"] == 3.0 and first["p90"] == pytest.approx(7.6, abs=1e-9)
    assert first["mean"] == 4.0 and first["tickets"] == 5
    resolution = frame[frame["metric"] == "resolution_hours"].iloc[0]
    # median of 5, 6, 30, 50 = 18; p90 = 30 + 0.7 × (50 − 30) = 44.
    assert resolution["value"] == 18.0 and resolution["p90"] == pytest.approx(44.0, abs=1e-9)
    assert resolution["tickets"] == 4
    csat = frame[frame["metric"] == "ticket_csat"].iloc[0]
    # rated 5, 4, 2, 1 → 2 satisfied of 4 = 50 %, mean 3.
    assert csat["value"] == 50.0 and csat["rated"] == 4 and csat["mean_rating"] == 3.0


def test_times_count_in_the_month_the_ticket_was_resolved() -> None:
    late = pd.DataFrame({"opened_at": [datetime(2026, 1, 31, 20, tzinfo=UTC)],
                         "resolved_at": [datetime(2026, 2, 1, 2, tzinfo=UTC)]})
    frame = support_times(late, period="M", tz="UTC")
    resolution = frame[frame["metric"] == "resolution_hours"].sort_values("period_start")
    assert list(resolution["tickets"]) == [0, 1]
    assert resolution["value"].iloc[1] == 6.0


def test_an_answer_before_the_opening_is_left_out_with_a_warning() -> None:
    broken = pd.DataFrame({"opened_at": [MARCH, MARCH],
                           "first_response_at": [MARCH - hours(2), MARCH + hours(4)]})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = support_times(broken)
    assert any(issubclass(w.category, StatisticalWarning) for w in caught)
    first = frame[frame["metric"] == "first_response_hours"].iloc[0]
    assert first["value"] == 4.0 and first["tickets"] == 1


def test_a_rating_off_the_scale_is_refused() -> None:
    from vafa.analytics.errors import InputError

    with pytest.raises(InputError):
        support_times(pd.DataFrame({"opened_at": [MARCH], "satisfaction": [7]}))


@pytest.fixture
def tickets(sara: Customer, john: Customer) -> list[Ticket]:
    made = []
    for number, (customer, channel, first, resolved, rating) in enumerate([
        (sara, "chat", 1, 5, 5), (sara, "chat", 3, 30, None), (john, "email", 10, 50, 2),
    ]):
        made.append(Ticket.objects.create(
            external_id=f"T{number}", customer=customer, channel=channel, subject=f"s{number}",
            opened_at=MARCH + timedelta(days=number), first_response_at=MARCH
            + timedelta(days=number) + hours(first),
            resolved_at=MARCH + timedelta(days=number) + hours(resolved), satisfaction=rating,
        ))
    return made


@pytest.mark.django_db
def test_kpis_per_channel_come_from_the_tickets_and_the_survey_after_them(
    tickets: list[Ticket], sara: Customer,
) -> None:
    csat = survey_get(slug="csat")
    invitation = invitation_create(customer=sara, survey=csat, trigger="ticket",
                                   reference=f"ticket:{tickets[1].pk}", now=MARCH)
    response_score_record(invitation=invitation, score=4, now=MARCH + timedelta(days=2))
    frame = support_kpis(period=None, by_channel=True)
    chat = frame[(frame["channel"] == "chat") & (frame["metric"] == "ticket_csat")].iloc[0]
    assert chat["rated"] == 2 and chat["value"] == 100.0  # 5 from the desk, 4 from our survey
    email = frame[(frame["channel"] == "email") & (frame["metric"] == "resolution_hours")]
    assert email["value"].iloc[0] == 50.0
    assert support_kpis(since=MARCH + timedelta(days=30)).empty


@pytest.mark.django_db
def test_a_customers_ticket_history_shows_times_and_ratings(
    tickets: list[Ticket], sara: Customer, django_assert_max_num_queries: object,
) -> None:
    with django_assert_max_num_queries(2):  # type: ignore[operator]
        rows = customer_tickets(sara.pk)
    assert [r.external_id for r in rows] == ["T1", "T0"]
    assert rows[0].first_response_hours == 3.0 and rows[0].resolution_hours == 30.0
    assert rows[0].satisfaction is None and rows[1].rating_source == "help_desk"


@pytest.mark.django_db
def test_a_ticket_already_rated_in_the_help_desk_gets_no_survey(
    sara: Customer, john: Customer
) -> None:
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    Ticket.objects.create(external_id="R1", customer=sara, opened_at=now - timedelta(days=2),
                          resolved_at=now - timedelta(days=1), satisfaction=5)
    unrated = Ticket.objects.create(external_id="R2", customer=john,
                                    opened_at=now - timedelta(days=2),
                                    resolved_at=now - timedelta(days=1))
    created = survey_invitations_due(now=now, relationship_limit=0)
    assert [(i.customer_id, i.reference) for i in created] == [(john.pk, f"ticket:{unrated.pk}")]
    assert not SurveyInvitation.objects.filter(customer=sara).exists()


@pytest.mark.django_db
def test_staff_read_the_support_page_and_customers_may_not(
    tickets: list[Ticket], sara: Customer
) -> None:
    invite(sara)  # unrelated survey: the page must not mind
    client = Client()
    assert client.get("/f/staff/support/").status_code == 302  # to the login page
    staff = User.objects.create_user("shirin", password="x-long-pass-123", is_staff=True)
    client.force_login(staff)
    assert client.get("/f/staff/support/").status_code == 403  # on the team, but no role
    staff.groups.add(Group.objects.get_or_create(name="support")[0])
    page = client.get("/f/staff/support/", HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Support signals" in html and "chat" in html and "email" in html
    assert "50.0" in html  # John's resolution time, in hours


@pytest.mark.django_db
def test_the_support_page_speaks_persian_with_jalali_months(
    tickets: list[Ticket], django_assert_max_num_queries: object
) -> None:
    client = Client()
    analyst = User.objects.create_user("mina", password="x-long-pass-123", is_staff=True)
    analyst.groups.add(Group.objects.get_or_create(name="analyst")[0])  # reads every page
    client.force_login(analyst)
    shift = datetime.now(UTC) - MARCH - timedelta(days=10)  # into the page's last 12 months
    Ticket.objects.update(opened_at=F("opened_at") + shift,
                          first_response_at=F("first_response_at") + shift,
                          resolved_at=F("resolved_at") + shift)
    # +1 since the dashboard layout asks the user's roles (to hide links they cannot open)
    with django_assert_max_num_queries(10):  # type: ignore[operator]
        page = client.get("/f/staff/support/", HTTP_ACCEPT_LANGUAGE="fa")
    html = page.content.decode()
    assert page.status_code == 200 and 'dir="rtl"' in html
    assert "۱۴۰" in html  # a Jalali year in Persian digits labels the month
    assert "۵۰٫۰" in html or "۵۰.۰" in html  # John's 50-hour resolution, in Persian digits


@pytest.mark.django_db
def test_badly_rated_tickets_come_from_the_help_desk_and_from_our_survey(
    tickets: list[Ticket], sara: Customer, django_assert_max_num_queries: object
) -> None:
    invitation = invitation_create(customer=sara, survey=survey_get(slug="csat"),
                                   trigger="ticket", reference=f"ticket:{tickets[1].pk}",
                                   now=MARCH)
    response_score_record(invitation=invitation, score=1, now=MARCH + timedelta(days=2))
    with django_assert_max_num_queries(3):  # type: ignore[operator]
        low = tickets_rated_low()
    assert [(row.external_id, row.satisfaction, row.rating_source) for row in low] == [
        ("T2", 2, "help_desk"), ("T1", 1, "survey"),
    ]
    assert low[0].customer_name == "John"
    assert tickets_rated_low(since=MARCH + timedelta(days=60)) == []
