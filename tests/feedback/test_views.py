"""The survey page through HTTP: one-click score, the rest of the form, and every bad link or
hostile input answered with a clear page, nothing rendered unescaped, no second reward."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client

from tests.feedback.conftest import SURVEY_POINTS, ago, custom_survey, invite, survey_points
from vafa.customers.models import Customer
from vafa.feedback.links import survey_url
from vafa.feedback.models import FollowUpTask, SurveyInvitation, SurveyResponse
from vafa.feedback.services import invitation_create
from vafa.loyalty.models import EarningRule

pytestmark = pytest.mark.django_db


def path_of(invitation: SurveyInvitation, score: int | str | None = None) -> str:
    url = survey_url(invitation.token)
    path = urlsplit(url).path
    return path if score is None else f"{path}?score={score}"


def test_the_link_is_absolute_on_the_configured_base_url(sara: Customer, settings: object
                                                          ) -> None:
    settings.VAFA_BASE_URL = "https://shop.example/"  # type: ignore[attr-defined]
    url = survey_url(invite(sara).token)
    assert url.startswith("https://shop.example/f/s/") and url.endswith("/")


def test_a_click_records_the_score_and_shows_the_rest_in_persian(sara: Customer) -> None:
    invitation = invite(sara)
    page = Client().get(path_of(invitation, 9))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'lang="fa" dir="rtl"' in html
    assert "مهم‌ترین دلیل امتیازتان چیست؟" in html
    assert "۹" in html  # the recorded score, in Persian digits
    assert SurveyResponse.objects.get().score == 9


def test_a_second_click_changes_nothing_and_shows_the_form_again(sara: Customer) -> None:
    invitation = invite(sara)
    client = Client()
    client.get(path_of(invitation, 3))
    page = client.get(path_of(invitation, 10))
    assert page.status_code == 200
    assert SurveyResponse.objects.get().score == 3
    assert FollowUpTask.objects.count() == 1


def test_the_page_speaks_english_left_to_right_to_an_english_customer(john: Customer) -> None:
    html = Client().get(path_of(invite(john, "csat"))).content.decode()
    assert 'lang="en" dir="ltr"' in html
    assert "How satisfied were you with your experience?" in html
    assert "Very dissatisfied" in html


@pytest.mark.parametrize("score", ["11", "-1", "abc", "<script>alert(1)</script>", "99999"])
def test_an_out_of_range_score_gets_a_clear_400_and_records_nothing(john: Customer,
                                                                    score: str) -> None:
    page = Client().get(path_of(invite(john), score))
    assert page.status_code == 400
    html = page.content.decode()
    assert "Please choose a score from 0 to 10." in html
    assert "<script>alert" not in html
    assert not SurveyResponse.objects.exists()


def test_a_tampered_signature_gets_a_404_page(john: Customer) -> None:
    path = path_of(invite(john))
    tampered = path[:-3] + ("A" if path[-2] != "A" else "B") + "/"
    # Without a valid link there is no customer to take the language from: the browser's.
    page = Client(headers={"accept-language": "en"}).get(tampered + "?score=9")
    assert page.status_code == 404
    assert "This survey link is not valid." in page.content.decode()
    assert Client().get("/f/s/not-signed-at-all/").status_code == 404
    assert not SurveyResponse.objects.exists()


def test_an_expired_link_gets_a_410_page_and_no_reward(john: Customer,
                                                       survey_reward: EarningRule) -> None:
    invitation = invite(john, now=ago(31))
    client = Client()
    page = client.get(path_of(invitation, 9))
    assert page.status_code == 410
    assert "This survey link has expired." in page.content.decode()
    assert client.post(path_of(invitation), {"score": "9"}).status_code == 410
    assert survey_points(john) == 0 and not SurveyResponse.objects.exists()


def test_a_reused_link_gets_a_410_page_and_no_second_reward(john: Customer,
                                                            survey_reward: EarningRule) -> None:
    invitation = invite(john)
    client = Client()
    client.get(path_of(invitation, 8))
    assert client.post(path_of(invitation), {"reason": "ok"}).status_code == 200
    for attempt in (client.get(path_of(invitation, 2)),
                    client.post(path_of(invitation), {"reason": "again"})):
        assert attempt.status_code == 410
        assert "You have already answered this survey." in attempt.content.decode()
    assert survey_points(john) == SURVEY_POINTS
    assert SurveyResponse.objects.get().text == "ok"


def test_script_in_text_is_stored_as_typed_and_always_rendered_escaped(
    john: Customer, admin_client: Client
) -> None:
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    survey = custom_survey()
    invitation = invitation_create(customer=john, survey=survey)
    # A refused submission re-renders the form with what was typed: escaped.
    page = Client().post(path_of(invitation), {"note": hostile, "speed": "9"})
    assert page.status_code == 400
    html = page.content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html
    assert Client().post(path_of(invitation), {"note": hostile, "speed": "4"}).status_code == 200
    response = SurveyResponse.objects.get()
    assert response.text == hostile
    # The team reads it in the admin: escaped there too.
    admin_page = admin_client.get(f"/admin/feedback/surveyresponse/{response.pk}/change/")
    assert admin_page.status_code == 200
    assert "<script>alert" not in admin_page.content.decode()


def test_100_kb_of_text_is_refused_with_a_clear_message(john: Customer) -> None:
    invitation = invite(john)
    page = Client().post(path_of(invitation), {"score": "9", "reason": "ب" * 100_000})
    assert page.status_code == 400
    assert "Your text is too long (at most 4000 characters)." in page.content.decode()
    invitation.refresh_from_db()
    assert invitation.used_at is None


def test_submitting_without_a_score_asks_for_one(john: Customer) -> None:
    page = Client().post(path_of(invite(john)), {"reason": "hi"})
    assert page.status_code == 400
    assert "Please choose a score." in page.content.decode()


def test_the_team_sees_follow_up_tasks_and_reviews_in_the_admin(
    sara: Customer, admin_client: Client
) -> None:
    from vafa.feedback.services import response_score_record

    response_score_record(invitation=invite(sara), score=1)
    for page in ("followuptask", "surveyresponse", "surveyinvitation", "survey", "review"):
        assert admin_client.get(f"/admin/feedback/{page}/").status_code == 200, page


def test_the_survey_page_needs_few_queries(
    sara: Customer, django_assert_max_num_queries: Any
) -> None:
    invitation = invite(sara)
    client = Client()
    client.get(path_of(invitation, 9))
    with django_assert_max_num_queries(2):  # the invitation, its response
        assert client.get(path_of(invitation, 9)).status_code == 200


def test_the_api_documents_the_survey_endpoints(admin_client: Client) -> None:
    paths = Client().get("/api/v1/openapi.json").json()["paths"]
    assert {"/api/v1/survey-invitations", "/api/v1/survey-responses", "/api/v1/reviews"} <= set(
        paths)
