"""Preferences and interests (K6): the built-in survey's answers land on the customer's profile
and are read back through `customer_preferences`, which flows and the 360 page call."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import translation

from tests.feedback.conftest import invite
from vafa.customers.models import Customer
from vafa.feedback.errors import AnswerInvalid
from vafa.feedback.links import survey_url
from vafa.feedback.models import CustomerPreference, Survey, questions_problems
from vafa.feedback.selectors import customer_preferences
from vafa.feedback.services import customer_preference_update, response_complete

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 1, 10, tzinfo=UTC)


def test_a_customer_who_never_said_anything_has_empty_preferences(sara: Customer) -> None:
    preferences = customer_preferences(sara.pk)
    assert preferences.interests == [] and preferences.reward_type == ""
    assert preferences.channel == "" and preferences.updated_at is None


def test_the_built_in_survey_asks_in_three_languages_and_is_valid() -> None:
    survey = Survey.objects.get(slug="preferences")
    assert questions_problems(survey.questions) == []
    profiles = {q["id"]: q.get("profile") for q in survey.questions}
    assert profiles == {"interests": "interests", "reward_type": "reward_type",
                        "channel": "channel"}
    for question in survey.questions:
        assert set(question["label"]) == {"fa", "ar", "en"}


def test_answering_the_survey_in_the_browser_fills_the_profile(sara: Customer) -> None:
    invitation = invite(sara, "preferences")
    path = urlsplit(survey_url(invitation.token)).path
    client = Client()
    form = client.get(path).content.decode()
    assert 'type="checkbox" name="interests" value="books"' in form
    assert "کتاب و لوازم‌التحریر" in form  # Persian labels for a Persian speaker
    done = client.post(path, {"interests": ["books", "kids"], "reward_type": "free_shipping",
                              "channel": "telegram"})
    assert done.status_code == 200
    preferences = customer_preferences(sara.pk)
    assert preferences.interests == ["books", "kids"]
    assert preferences.reward_type == "free_shipping" and preferences.channel == "telegram"
    assert preferences.updated_at is not None
    assert CustomerPreference.objects.get().source.startswith("survey-response:")


def test_an_unknown_interest_is_refused_and_nothing_is_stored(sara: Customer) -> None:
    invitation = invite(sara, "preferences")
    path = urlsplit(survey_url(invitation.token)).path
    page = Client().post(path, {"interests": ["books", "<script>x</script>"]})
    assert page.status_code == 400
    assert "<script>x" not in page.content.decode()
    assert customer_preferences(sara.pk).interests == []


def test_a_later_survey_answering_only_one_question_keeps_the_other_answers(
    sara: Customer,
) -> None:
    first = invite(sara, "preferences", now=NOW)
    response_complete(invitation=first, data={"interests": "books", "reward_type": "gift",
                                              "channel": "sms"}, now=NOW)
    second = invite(sara, "preferences", now=NOW)
    response_complete(invitation=second, data={"channel": "email"}, now=NOW)
    preferences = customer_preferences(sara.pk)
    assert preferences.interests == ["books"] and preferences.reward_type == "gift"
    assert preferences.channel == "email"


def test_the_service_refuses_unknown_values_and_keeps_interests_unique(sara: Customer) -> None:
    with pytest.raises(AnswerInvalid):
        customer_preference_update(customer=sara, reward_type="yacht", now=NOW)
    with pytest.raises(AnswerInvalid):
        customer_preference_update(customer=sara, channel="pigeon", now=NOW)
    with pytest.raises(AnswerInvalid):
        customer_preference_update(customer=sara, interests="books", now=NOW)
    with pytest.raises(AnswerInvalid):
        customer_preference_update(customer=sara, interests=[f"t{i}" for i in range(31)],
                                   now=NOW)
    customer_preference_update(customer=sara, interests=[" books", "books", "kids"],
                               source="staff", now=NOW)
    assert customer_preferences(sara.pk).interests == ["books", "kids"]


def test_a_profile_field_on_a_text_question_is_refused() -> None:
    with translation.override("en"):
        problems = questions_problems([
            {"id": "x", "type": "text", "profile": "channel", "label": {"en": "Channel?"}},
        ])
    assert any("profile" in p for p in problems)
