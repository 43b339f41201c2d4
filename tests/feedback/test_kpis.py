"""Survey KPIs per month, checked against hand computations on a fixed answer set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from tests.feedback.conftest import invite
from vafa.customers.models import Customer
from vafa.feedback.selectors import survey_kpis
from vafa.feedback.services import response_score_record

pytestmark = pytest.mark.django_db

JAN = datetime(2026, 1, 15, 9, tzinfo=UTC)
FEB = datetime(2026, 2, 15, 9, tzinfo=UTC)
_ids = count()


def answer(slug: str, score: int | None, sent: datetime, channel: str) -> None:
    """One invitation to a new customer, answered a day later (or never, with score None)."""
    customer = Customer.objects.create(external_id=f"K{next(_ids)}")
    invitation = invite(customer, slug, now=sent, channel=channel)
    if score is not None:
        response_score_record(invitation=invitation, score=score, now=sent + timedelta(days=1))


@pytest.fixture
def answers() -> None:
    for score in (6, 7, 8, 9, 10, 0):
        answer("nps", score, JAN, "email")
    for score in (5, 4, 2):
        answer("csat", score, JAN, "email")
    for score in (7, 3):
        answer("ces", score, JAN, "email")
    february: list[int | None] = [9, 9, 9, 7, 8, 6, 6, 10, None, None]
    for maybe in february:
        answer("nps", maybe, FEB, "sms")


def values(frame: object, metric: str) -> list[float]:
    import pandas as pd

    assert isinstance(frame, pd.DataFrame)
    rows = frame[frame["metric"] == metric].sort_values("period_start")
    return [round(float(v), 2) for v in rows["value"]]


def test_nps_per_month_matches_the_hand_computation(answers: None) -> None:
    kpis = survey_kpis(period="M")
    # January: promoters 9, 10 (2); detractors 6, 0 (2); passives 7, 8 → (2 − 2) / 6 = 0.
    # February: promoters 9, 9, 9, 10 (4); detractors 6, 6 (2); 8 answers → 50 % − 25 % = 25.
    assert values(kpis, "nps") == [0.0, 25.0]
    nps = kpis[kpis["metric"] == "nps"].sort_values("period_start")
    assert list(nps["responses"]) == [6, 8]
    assert list(nps["promoters"]) == [2, 4] and list(nps["detractors"]) == [2, 2]
    # CSAT: 4 and 5 count as satisfied → 2 of 3. CES: mean of 7 and 3.
    assert values(kpis, "csat") == [66.67]
    assert values(kpis, "ces") == [5.0]
    # Response rate: January 11 of 11 invitations answered, February 8 of 10.
    assert values(kpis, "response_rate") == [100.0, 80.0]


def test_kpis_split_by_channel(answers: None) -> None:
    kpis = survey_kpis(period="M", by_channel=True)
    email = kpis[kpis["channel"] == "email"]
    sms = kpis[kpis["channel"] == "sms"]
    assert values(email, "nps") == [0.0]
    assert values(sms, "nps") == [25.0]
    assert values(sms, "response_rate") == [80.0]


def test_kpis_of_an_empty_shop_are_an_empty_table() -> None:
    assert survey_kpis().empty
