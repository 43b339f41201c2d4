"""KPIs by RFM segment, loyalty tier and channel (point 9) and the churn-factors view (K4):
exit reasons by segment and over time, beside what detractors write."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from itertools import count

import pandas as pd
import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from tests.feedback.conftest import invite
from vafa.core.errors import ValidationError
from vafa.customers.models import Customer
from vafa.feedback.models import Trigger
from vafa.feedback.selectors import churn_factors, period_start, survey_kpis_by
from vafa.feedback.services import exit_invitation_create, response_complete, response_score_record
from vafa.insights.models import AnalysisRun, CustomerScore
from vafa.loyalty.models import Member, Tier

pytestmark = pytest.mark.django_db

JAN = datetime(2026, 1, 10, 9, tzinfo=UTC)
FEB = datetime(2026, 2, 10, 9, tzinfo=UTC)
_ids = count()


def customer(segment: str | None, tier: Tier | None = None, city: str = "") -> Customer:
    made = Customer.objects.create(external_id=f"S{next(_ids)}", city=city, language="en")
    if segment is not None:
        run = AnalysisRun.objects.first() or AnalysisRun.objects.create(status="done")
        CustomerScore.objects.create(customer=made, run=run, rfm_segment=segment, r_score=3,
                                     f_score=3, m_score=3, loyalty_label="regular")
    if tier is not None:
        Member.objects.create(customer=made, tier=tier)
    return made


def answered(who: Customer, score: int | None, when: datetime, channel: str = "email") -> None:
    invitation = invite(who, "nps", now=when, channel=channel)
    if score is not None:
        response_score_record(invitation=invitation, score=score, now=when + timedelta(hours=2))


def rows(frame: pd.DataFrame, group: str, metric: str) -> list[float]:
    chosen = frame[(frame["group"] == group) & (frame["metric"] == metric)]
    return [round(float(v), 2) for v in chosen.sort_values("period_start")["value"]]


def test_nps_and_response_rate_per_segment_match_a_hand_computation() -> None:
    gold = Tier.objects.create(name="Gold", rank=1)
    for score in (10, 9, 6):
        answered(customer("champions", gold), score, JAN)
    answered(customer("champions"), 8, FEB)
    at_risk_scores: list[int | None] = [0, 3, 9, None]
    for maybe in at_risk_scores:
        answered(customer("at_risk"), maybe, JAN, channel="sms")
    answered(customer(None), 7, FEB)
    by_segment = survey_kpis_by(by="segment", period="M")
    # champions, Jan: promoters 10, 9; detractor 6 → (2 − 1) / 3 = 33.33; Feb: one passive → 0.
    assert rows(by_segment, "champions", "nps") == [33.33, 0.0]
    # at risk, Jan: 0, 3 detractors, 9 promoter → (1 − 2) / 3 = −33.33; Feb: no answers (NaN).
    assert rows(by_segment, "at_risk", "nps")[0] == -33.33
    # at risk: 3 of 4 invitations answered in January.
    assert rows(by_segment, "at_risk", "response_rate")[0] == 75.0
    assert rows(by_segment, "", "nps")[-1] == 0.0  # no segment: one passive in February
    # every group shares the same calendar
    periods = by_segment.groupby("group")["period_start"].apply(lambda s: sorted(set(s)))
    assert all(p == periods.iloc[0] for p in periods)

    by_tier = survey_kpis_by(by="tier", period="M")
    gold_nps = rows(by_tier, "Gold", "nps")
    assert gold_nps[0] == 33.33 and math.isnan(gold_nps[1])  # no Gold answer in February
    by_channel = survey_kpis_by(by="channel", period="M")
    assert rows(by_channel, "sms", "nps")[0] == -33.33


def test_grouped_kpis_refuse_an_unknown_grouping_and_are_empty_without_answers() -> None:
    with pytest.raises(ValidationError):
        survey_kpis_by(by="password")  # type: ignore[arg-type]
    assert survey_kpis_by(by="segment").empty


def leave(who: Customer, reason: str, when: datetime, detail: str = "") -> None:
    invitation = exit_invitation_create(customer=who, trigger=Trigger.UNSUBSCRIBE, now=when)
    assert invitation is not None
    response_complete(invitation=invitation, data={"reason": reason, "detail": detail},
                      now=when + timedelta(hours=1))


@pytest.fixture
def departures() -> None:
    gold = Tier.objects.create(name="Gold", rank=1)
    leave(customer("at_risk", gold), "price", JAN)
    leave(customer("at_risk"), "price", FEB)
    leave(customer("at_risk"), "delivery", FEB)
    leave(customer("champions", gold), "service", FEB)
    leave(customer(None), "price", FEB)


def test_exit_reasons_are_counted_by_segment_and_month(departures: None) -> None:
    factors = churn_factors(by="segment", period="M")
    assert factors.total == 5 and factors.reasons[0] == "price"
    by_segment = {row.key: (row.counts, row.total) for row in factors.by_segment}
    assert by_segment == {"at_risk": ({"price": 2, "delivery": 1}, 3),
                          "champions": ({"service": 1}, 1), "": ({"price": 1}, 1)}
    # answered at 10:00 UTC: 13:30 in Tehran, same day. Months start on the 1st.
    assert [(row.key, row.total) for row in factors.over_time] == [("2026-01-01", 1),
                                                                   ("2026-02-01", 4)]
    by_tier = {row.key: row.total for row in churn_factors(by="tier").by_segment}
    assert by_tier == {"Gold": 2, "": 3}


def test_jalali_months_start_on_the_first_of_the_persian_month() -> None:
    # 10 Feb 2026 is 21 Bahman 1404, which began on 21 Jan 2026 (Nowruz 1404 = 21 Mar 2025,
    # then six months of 31 days and four of 30).
    assert period_start(JAN.date() + timedelta(days=31), "JM").isoformat() == "2026-01-21"
    assert period_start(JAN.date(), "JM").isoformat() == "2025-12-22"  # 1 Dey 1404


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    marketer = User.objects.create_user("shirin", password="x-long-pass-123", is_staff=True)
    marketer.groups.add(Group.objects.get_or_create(name="marketer")[0])
    client.force_login(marketer)
    return client


def test_the_churn_factors_page_shows_reasons_in_persian_and_english(
    departures: None, staff_client: Client
) -> None:
    detractor = customer("at_risk")
    invitation = invite(detractor, "nps", now=FEB)
    response_complete(invitation=invitation,
                      data={"score": "2", "reason": "ارسال دیر <script>alert(1)</script>"},
                      now=FEB + timedelta(hours=1))
    persian = staff_client.get("/f/staff/churn-factors/", HTTP_ACCEPT_LANGUAGE="fa")
    assert persian.status_code == 200
    html = persian.content.decode()
    assert 'dir="rtl"' in html and "قیمت‌ها بالا بود" in html
    assert "۵" in html  # totals in Persian digits
    assert "<script>alert" not in html
    assert "ارسال" in html  # the detractor's word, counted in the detractor band
    english = staff_client.get("/f/staff/churn-factors/?by=tier",
                               HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Prices were too high" in english and "Gold" in english
    assert 'value="tier" selected' in english


def test_the_churn_factors_page_is_for_staff_only(departures: None) -> None:
    client = Client()
    assert client.get("/f/staff/churn-factors/").status_code == 302
    client.force_login(User.objects.create_user("customer", password="x-long-pass-123"))
    assert client.get("/f/staff/churn-factors/").status_code == 302


def test_an_unknown_grouping_falls_back_to_segments(
    departures: None, staff_client: Client
) -> None:
    page = staff_client.get("/f/staff/churn-factors/?by=password", HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200 and 'value="segment" selected' in page.content.decode()


def test_the_churn_factors_page_needs_the_same_few_queries_however_many_answers(
    departures: None, staff_client: Client, django_assert_max_num_queries: object
) -> None:
    for n in range(20):
        leave(customer("lost"), "price", FEB + timedelta(days=n % 5))
    with django_assert_max_num_queries(8):  # type: ignore[operator]
        assert staff_client.get("/f/staff/churn-factors/").status_code == 200


def test_a_several_choices_question_needs_choices() -> None:
    from vafa.feedback.models import questions_problems

    assert questions_problems([{"id": "x", "type": "multi", "label": {"en": "Pick"}}])
    assert not questions_problems([{"id": "x", "type": "multi", "label": {"en": "Pick"},
                                    "choices": [{"value": "a", "label": {"en": "A"}}]}])


def test_grouped_metrics_share_one_period_even_without_a_calendar() -> None:
    from vafa.analytics.metrics import survey_metrics_by

    answers = pd.DataFrame({
        "customer_id": ["a", "b", "c"], "kind": ["nps"] * 3, "score": [10, 0, 9],
        "answered_at": ["2026-01-05", "2026-01-10", "2026-02-10"], "tier": ["Gold", "", None],
    })
    sent = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "kind": ["nps"] * 4,
                         "sent_at": ["2026-01-01"] * 4, "tier": ["Gold", "", "", "Gold"]})
    frame = survey_metrics_by(answers, by="tier", invitations=sent, period=None)
    nps = frame[frame["metric"] == "nps"].set_index("group")
    # one period for everyone: 1 Jan (first invitation) to 10 Feb (last answer)
    assert set(nps["period_start"].astype(str)) == {"2026-01-01"}
    assert set(nps["period_end"].astype(str)) == {"2026-02-10"}
    assert nps.loc["Gold", "value"] == 100.0 and nps.loc["", "value"] == 0.0  # 0 and 9
    rate = frame[frame["metric"] == "response_rate"].set_index("group")
    # Gold: a answered, d did not → 50 %; "": b answered after 9 days (within the 14-day
    # window), c after 40 → 50 %.
    assert rate.loc["Gold", "value"] == 50.0 and rate.loc["", "value"] == 50.0
