"""Getting into the member portal: a magic link by email or SMS, the shop's signed embed link
through the API, and a member session that is not staff authentication."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from tests.messaging.fakes import smtp_server
from tests.portal.conftest import SITE, Club, signed_in
from vafa.core.services import apikey_create
from vafa.customers.models import Customer
from vafa.dashboard.portal import access
from vafa.dashboard.portal.selectors import customer_by_identifier
from vafa.dashboard.portal.services import LOGIN_SOURCE
from vafa.messaging.models import MessageKind, MessageTemplate, OutboxMessage
from vafa.messaging.outbox import outbox_flush
from vafa.messaging.tokens import recipient_token

LINK = re.compile(r"https://shop\.example(/p/e/[A-Za-z0-9_-]+/)")


def test_a_member_asks_for_a_link_by_email_receives_it_and_gets_in(
    club: Club, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    with smtp_server() as server:
        monkeypatch.setenv("VAFA_SMTP_URL", server.url)
        response = client.post("/p/sign-in/", {"identifier": "  Zahra@Example.com "})
        assert response.status_code == 200
        assert 'id="link-sent"' in response.content.decode()
        message = OutboxMessage.objects.get(source=LOGIN_SOURCE)
        assert message.kind == MessageKind.TRANSACTIONAL and message.language == "fa"
        outbox_flush(now=timezone.now() + timedelta(seconds=1))
        [mail] = server.sink.to("zahra@example.com")
    assert mail["Subject"] == "ورود به باشگاه مشتریان"
    html_part, text_part = mail.get_body(("html",)), mail.get_body(("plain",))
    assert html_part is not None and text_part is not None
    assert 'dir="rtl"' in html_part.get_content()
    text = text_part.get_content()
    assert "سلام زهرا" in text and "۳۰ دقیقه" in text  # personal, with Persian digits
    path = LINK.search(text)
    assert path is not None, text

    entered = client.get(path.group(1))
    assert entered.status_code == 302 and entered["Location"] == "/p/"
    cookie = entered.cookies[access.SESSION_COOKIE]
    assert cookie["httponly"] and cookie["path"] == "/p/" and cookie["samesite"] == "Lax"
    page = client.get("/p/").content.decode()
    assert "زهرا" in page and 'id="points-available"' in page


def test_asking_twice_within_ten_minutes_queues_one_message_and_unknown_addresses_get_none(
    club: Club, client: Client
) -> None:
    for _ in range(3):
        client.post("/p/sign-in/", {"identifier": "olivia@example.com"})
    unknown = client.post("/p/sign-in/", {"identifier": "nobody@example.com"})
    assert 'id="link-sent"' in unknown.content.decode()  # the same answer: nothing is revealed
    assert OutboxMessage.objects.filter(source=LOGIN_SOURCE).count() == 1
    # The default templates were created once per language for the merchant to edit.
    assert set(
        MessageTemplate.objects.filter(key="portal-login", channel="email").values_list(
            "language", flat=True
        )
    ) == {"fa", "ar", "en"}


def test_a_phone_number_written_with_persian_digits_gets_the_link_by_sms(
    club: Club, client: Client
) -> None:
    client.post("/p/sign-in/", {"identifier": "۰۹۱۲ ۱۲۳ ۴۵۶۷"})
    message = OutboxMessage.objects.get(source=LOGIN_SOURCE)
    assert message.channel == "sms" and message.customer == club.members["fa"]
    assert LINK.search(message.body_text)


def test_an_expired_link_shows_a_page_that_says_so(club: Club, client: Client) -> None:
    token = access.link_token(
        customer_id=club.members["en"].pk,
        kind=access.MAGIC,
        expires_at=timezone.now() - timedelta(seconds=1),
    )
    response = client.get(f"/p/e/{token}/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 410
    body = response.content.decode()
    assert "This link has expired." in body and 'name="identifier"' in body
    assert access.SESSION_COOKIE not in response.cookies


def test_a_tampered_link_is_refused_with_a_clear_page(club: Club, client: Client) -> None:
    token = access.link_token(
        customer_id=club.members["en"].pk,
        kind=access.MAGIC,
        expires_at=timezone.now() + timedelta(minutes=5),
    )
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    response = client.get(f"/p/e/{tampered}/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 404
    assert "This link is not valid." in response.content.decode()
    assert client.get("/p/e/not-a-token/").status_code == 404
    assert access.SESSION_COOKIE not in client.cookies


def test_a_forged_session_cookie_or_a_staff_login_does_not_open_a_members_portal(
    club: Club, client: Client
) -> None:
    client.cookies[access.SESSION_COOKIE] = str(club.members["fa"].pk)  # unsigned
    assert 'name="identifier"' in client.get("/p/").content.decode()
    User.objects.create_user("staff", password="a-long-password-1", is_staff=True)
    staff = Client()
    staff.login(username="staff", password="a-long-password-1")
    assert 'name="identifier"' in staff.get("/p/").content.decode()
    assert staff.post("/p/export/").status_code == 401


def test_signing_out_ends_the_member_session(club: Club, client: Client) -> None:
    signed_in(client, club.members["en"])
    assert 'id="points-available"' in client.get("/p/").content.decode()
    client.post("/p/sign-out/")
    assert 'name="identifier"' in client.get("/p/").content.decode()


def test_the_shop_gets_a_signed_link_through_the_api_and_a_replay_returns_the_same_link(
    club: Club, client: Client
) -> None:
    _, raw = apikey_create(name="shop")
    headers = {"Authorization": f"Bearer {raw}", "Idempotency-Key": "embed-1"}
    response = client.post(
        "/api/v1/members/C-AR/portal-link",
        {"minutes": 10},
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["url"].startswith(f"{SITE}/p/e/")
    again = client.post(
        "/api/v1/members/C-AR/portal-link",
        {"minutes": 10},
        content_type="application/json",
        headers=headers,
    )
    assert again["Idempotent-Replayed"] == "true" and again.json()["url"] == body["url"]
    browser = Client()
    entered = browser.get(body["url"].removeprefix(SITE))
    assert entered.status_code == 302
    assert "ليلى" in browser.get("/p/").content.decode()


def test_the_api_refuses_without_a_key_an_unknown_member_and_an_overlong_link(
    club: Club, client: Client
) -> None:
    url = "/api/v1/members/C-FA/portal-link"
    assert client.post(url, {}, content_type="application/json").status_code == 401
    _, raw = apikey_create(name="shop")
    auth = {"Authorization": f"Bearer {raw}"}
    missing = client.post(url, {}, content_type="application/json", headers=auth)
    assert missing.status_code == 400
    unknown = client.post(
        "/api/v1/members/NOPE/portal-link",
        {},
        content_type="application/json",
        headers={**auth, "Idempotency-Key": "k1"},
    )
    assert unknown.status_code == 404
    too_long = client.post(
        url,
        {"minutes": 24 * 60 + 1},
        content_type="application/json",
        headers={**auth, "Idempotency-Key": "k2"},
    )
    assert too_long.status_code == 422
    assert too_long.json()["error"]["field"].endswith("minutes")
    default = client.post(  # no body at all
        url, "", content_type="application/json", headers={**auth, "Idempotency-Key": "k3"}
    )
    assert default.status_code == 201, default.content
    expires = datetime.fromisoformat(default.json()["expires_at"])
    assert timedelta(minutes=14) < expires - timezone.now() <= timedelta(minutes=15)


def test_an_embed_link_expires_after_the_minutes_asked_for(club: Club) -> None:
    now = timezone.now()
    token = access.link_token(
        customer_id=club.members["fa"].pk,
        kind=access.EMBED,
        expires_at=access.link_expiry(now=now, minutes=15),
    )
    assert access.read_link_token(token, now=now + timedelta(minutes=14)).kind == access.EMBED
    with pytest.raises(access.LinkError, match="expired"):
        access.read_link_token(token, now=now + timedelta(minutes=15))


def test_the_portal_link_endpoint_is_in_the_openapi_schema(db: None, client: Client) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    operation = schema["paths"]["/api/v1/members/{customer_id}/portal-link"]["post"]
    assert "201" in operation["responses"]


def test_staff_see_members_data_requests_in_the_admin(club: Club, admin_client: Client) -> None:
    member = club.members["fa"]
    signed_in(Client(), member).post("/p/delete/", {"note": "remove me"})
    page = admin_client.get("/admin/dashboard/datarequest/?q=C-FA", HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200 and "1 data request" in page.content.decode()


def test_an_unsubscribe_token_cannot_be_used_as_a_portal_link(club: Club, client: Client) -> None:
    token = recipient_token(customer_id=club.members["fa"].pk, channel="email")
    assert client.get(f"/p/e/{token}/").status_code == 404
    assert access.SESSION_COOKIE not in client.cookies


def test_an_address_shared_by_two_customers_gets_no_link(club: Club, client: Client) -> None:
    Customer.objects.create(external_id="C-TWIN", email="OLIVIA@example.com")
    assert customer_by_identifier("olivia@example.com") == (None, "")
    client.post("/p/sign-in/", {"identifier": "olivia@example.com"})
    assert not OutboxMessage.objects.filter(source=LOGIN_SOURCE).exists()
    assert customer_by_identifier("layla@EXAMPLE.com") == (club.members["ar"], "email")
    assert customer_by_identifier("not a phone") == (None, "")
