"""The surveys API: invitations return a signed link, answers are listed by cursor."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client

from vafa.core.services import apikey_create
from vafa.customers.models import Customer
from vafa.feedback.models import SurveyInvitation
from vafa.feedback.services import response_score_record

pytestmark = pytest.mark.django_db


class Api:
    def __init__(self) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {apikey_create(name='shop')[1]}"}

    def post(self, body: Any, key: str = "k-1") -> Any:
        return self.client.post("/api/v1/survey-invitations", json.dumps(body),
                                content_type="application/json",
                                headers={**self.headers, "Idempotency-Key": key})

    def get(self, query: str) -> Any:
        return self.client.get(f"/api/v1/survey-responses?{query}", headers=self.headers)


@pytest.fixture
def api() -> Api:
    return Api()


def test_it_returns_the_signed_link_of_a_new_invitation(api: Api, john: Customer) -> None:
    response = api.post({"customer_id": "C-JOHN", "survey": "nps", "channel": "sms"})
    assert response.status_code == 201
    url = response.json()["url"]
    assert url.startswith("http://127.0.0.1:8000/f/s/")
    invitation = SurveyInvitation.objects.get()
    assert invitation.channel == "sms" and invitation.token in url
    # The same request again (a retry) returns the same link and creates nothing.
    assert api.post({"customer_id": "C-JOHN", "survey": "nps", "channel": "sms"}).json()[
        "url"] == url
    assert SurveyInvitation.objects.count() == 1
    # The link with ?score= records the one-click answer.
    assert Client().get(f"{urlsplit(url).path}?score=10").status_code == 200
    assert invitation.response.score == 10


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"customer_id": "nobody", "survey": "nps"}, 404, "customer_id"),
    ({"customer_id": "C-JOHN", "survey": "no-such"}, 404, "survey"),
    ({"customer_id": "C-JOHN"}, 422, None),
    ({"customer_id": "C-JOHN", "survey": "nps", "extra": 1}, 422, None),
])
def test_it_refuses_bad_invitations_in_the_error_shape(
    api: Api, john: Customer, body: dict[str, Any], status: int, field: str | None
) -> None:
    response = api.post(body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["message"]
    if field:
        assert error["field"] == field
    assert not SurveyInvitation.objects.exists()


def test_it_needs_an_api_key_and_an_idempotency_key(john: Customer) -> None:
    client = Client()
    body = json.dumps({"customer_id": "C-JOHN", "survey": "nps"})
    assert client.post("/api/v1/survey-invitations", body,
                       content_type="application/json").status_code == 401
    headers = {"Authorization": f"Bearer {apikey_create(name='x')[1]}"}
    assert client.post("/api/v1/survey-invitations", body, content_type="application/json",
                       headers=headers).status_code == 400


def test_it_lists_a_customers_answers_page_by_page(api: Api, john: Customer, sara: Customer
                                                   ) -> None:
    for n, slug in enumerate(["nps", "csat", "ces"]):
        api.post({"customer_id": "C-JOHN", "survey": slug}, key=f"k{n}")
    api.post({"customer_id": "C-SARA", "survey": "nps"}, key="other")
    for invitation in SurveyInvitation.objects.order_by("id"):
        response_score_record(invitation=invitation, score=4)
    first = api.get("customer_id=C-JOHN&limit=2").json()
    assert [i["survey"] for i in first["items"]] == ["nps", "csat"]
    assert first["items"][0]["score"] == 4 and first["items"][0]["customer_id"] == "C-JOHN"
    second = api.get(f"customer_id=C-JOHN&limit=2&cursor={first['next_cursor']}").json()
    assert [i["survey"] for i in second["items"]] == ["ces"] and second["next_cursor"] is None
    assert api.get("customer_id=ghost").status_code == 404
    assert api.get("customer_id=C-JOHN&cursor=!!").status_code == 422
