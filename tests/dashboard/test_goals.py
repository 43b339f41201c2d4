"""Goals: set one on a stored KPI, see its progress and whether the trend meets it in time."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from tests.dashboard.conftest import MakeMember
from tests.dashboard.visible import latin_digits
from vafa.core.errors import ValidationError
from vafa.core.roles import ANALYST, MARKETER, OWNER, SUPPORT
from vafa.insights.models import AnalysisRun, Goal
from vafa.insights.selectors import goal_statuses
from vafa.insights.services import goal_create

pytestmark = pytest.mark.db

URL = "/dashboard/goals/"
TODAY = dt.date(2026, 1, 10)
NOW = dt.datetime(2026, 1, 10, 9, 0, tzinfo=dt.UTC)


def _run_with_churn(values: list[float]) -> AnalysisRun:
    """A stored run whose quarterly churn series has `values`, the last quarter ending
    31 December 2025."""
    quarters = []
    year, quarter = 2025, 4
    for _ in values:
        quarters.append((year, quarter))
        year, quarter = (year, quarter - 1) if quarter > 1 else (year - 1, 4)
    points = []
    for (year, quarter), value in zip(reversed(quarters), values, strict=True):
        start = dt.date(year, 3 * quarter - 2, 1)
        end = (dt.date(year + (quarter == 4), (3 * quarter) % 12 + 1, 1) - dt.timedelta(days=1))
        points.append({"start": start.isoformat(), "end": end.isoformat(), "value": value})
    return AnalysisRun.objects.create(
        status=AnalysisRun.Status.DONE, finished_at=NOW,
        summary={"kpis": {"series": {"churn_rate": points}}},
    )


def test_a_goal_starts_from_the_latest_value_of_its_metric(db: None) -> None:
    _run_with_churn([30.0, 28.0, 26.0, 24.0])
    goal = goal_create(name="Less churn", metric="churn_rate", target=Decimal("20"),
                       deadline=dt.date(2026, 12, 31), owner="shirin", now=NOW)
    assert goal.baseline == Decimal("24.0000")
    assert goal.start == timezone.localdate(NOW)


def test_it_refuses_an_unknown_metric_and_a_deadline_in_the_past(db: None) -> None:
    with pytest.raises(ValidationError) as unknown:
        goal_create(name="x", metric="happiness", target=Decimal(1),
                    deadline=dt.date(2027, 1, 1), owner="", now=NOW)
    assert unknown.value.field == "metric"
    with pytest.raises(ValidationError) as past:
        goal_create(name="x", metric="churn_rate", target=Decimal(1),
                    deadline=dt.date(2025, 1, 1), owner="", now=NOW)
    assert past.value.field == "deadline"


def test_a_falling_churn_is_forecast_to_meet_a_reachable_target_and_not_a_far_one(
    db: None,
) -> None:
    # Churn falls two points a quarter: by the end of 2026 (four quarters on) the trend is
    # about 16 %, so a 20 % target is on track and a 5 % target is not.
    _run_with_churn([30.0, 28.0, 26.0, 24.0])
    for name, target in (("reachable", "20"), ("far", "5")):
        Goal.objects.create(name=name, metric="churn_rate", target=Decimal(target),
                            baseline=Decimal("30"), start=dt.date(2025, 1, 1),
                            deadline=dt.date(2026, 12, 31))
    statuses = {status.goal.name: status for status in goal_statuses(today=TODAY)}
    reachable, far = statuses["reachable"].progress, statuses["far"].progress
    assert reachable is not None and far is not None
    assert reachable.on_track is True and far.on_track is False
    # Linear trend: -2 points per ~91 days; at 31 Dec 2026 about 16.0 (±0.3 for day counts).
    assert reachable.forecast == pytest.approx(16.0, abs=0.3)
    assert reachable.progress == pytest.approx((24 - 30) / (20 - 30))
    assert statuses["reachable"].current == 24.0


@pytest.mark.parametrize(("role", "read", "write"), [
    (OWNER, 200, 302), (MARKETER, 200, 302), (SUPPORT, 403, 403), (ANALYST, 200, 403),
])
def test_marketing_sets_goals_and_the_analyst_only_reads_them(
    client: Client, make_member: MakeMember, role: str, read: int, write: int
) -> None:
    _run_with_churn([30.0, 28.0])
    client.force_login(make_member(role))
    assert client.get(URL).status_code == read
    response = client.post(URL + "new/", {"name": "Less churn", "metric": "churn_rate",
                                          "target": "۲۰", "deadline": "2099-01-01"})
    assert response.status_code == write
    assert Goal.objects.count() == (1 if write == 302 else 0)


def test_the_page_shows_progress_and_verdict_without_latin_digits_in_persian(
    client: Client, staff: User
) -> None:
    _run_with_churn([30.0, 28.0, 26.0, 24.0])
    client.force_login(staff)
    client.post(URL + "new/", {"name": "Less churn", "metric": "churn_rate", "target": "20",
                               "deadline": "2099-01-01"})
    en = client.get(URL, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Less churn" in en and "Churn rate" in en and "On track" in en
    fa = client.get(URL, HTTP_ACCEPT_LANGUAGE="fa").content.decode()
    assert latin_digits(fa) == [], latin_digits(fa)[:3]


def test_a_bad_target_re_shows_the_form_with_the_reason(client: Client, staff: User) -> None:
    client.force_login(staff)
    response = client.post(URL + "new/", {"name": "x", "metric": "churn_rate",
                                          "target": "lots", "deadline": "2099-01-01"},
                            HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 422
    assert "Enter the target as a number." in response.content.decode()
    assert not Goal.objects.exists()


def test_a_goal_whose_target_is_already_met_shows_full_progress(
    client: Client, staff: User
) -> None:
    # Churn is 24 %: a goal to keep it under 25 % is met the day it is set.
    _run_with_churn([30.0, 28.0, 26.0, 24.0])
    goal_create(name="Keep churn low", metric="churn_rate", target=Decimal("25"),
                deadline=dt.date(2026, 12, 31), owner="shirin", now=NOW)
    status = goal_statuses(today=TODAY)[0]
    assert status.progress is not None and status.progress.reached
    assert status.progress.progress == 1.0
    client.force_login(staff)
    page = client.get(URL, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'aria-valuenow="100"' in page and "Reached" in page


def test_a_goal_met_at_the_start_that_slips_shows_how_close_it_is_not_more_than_done(
    db: None,
) -> None:
    # Set when churn was 20 % with a 25 % ceiling; churn has since risen to 30 %: not met, and
    # 25 / 30 of the way (the library's baseline-to-target share would say 200 %).
    _run_with_churn([20.0, 30.0])
    Goal.objects.create(name="Keep churn low", metric="churn_rate", target=Decimal("25"),
                        baseline=Decimal("20"), start=dt.date(2025, 7, 1),
                        deadline=dt.date(2026, 12, 31))
    progress = goal_statuses(today=TODAY)[0].progress
    assert progress is not None and not progress.reached
    assert progress.progress == pytest.approx(25 / 30)


def test_a_reached_goal_never_shows_less_than_full_progress(db: None) -> None:
    _run_with_churn([30.0, 18.0])
    Goal.objects.create(name="Less churn", metric="churn_rate", target=Decimal("20"),
                        baseline=Decimal("30"), start=dt.date(2025, 7, 1),
                        deadline=dt.date(2026, 12, 31))
    progress = goal_statuses(today=TODAY)[0].progress
    assert progress is not None and progress.reached
    assert progress.progress == pytest.approx((18 - 30) / (20 - 30))  # overshoot kept: 120 %
