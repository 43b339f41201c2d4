"""The portal page: every section in Persian, Arabic and English, and the member's actions
(redeem, invite link, push opt-in, export and deletion request)."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import translation
from django.utils.translation import gettext

from tests.dashboard.visible import latin_digits, visible_text
from tests.loyalty.conftest import make_score
from tests.portal.conftest import SITE, VAPID_PUBLIC, Club, signed_in
from vafa.core.timeutil import format_date
from vafa.dashboard.portal.models import DataRequest
from vafa.loyalty.models import LedgerEntry, ProgramSettings, Redemption, Tier
from vafa.messaging.models import PushSubscription

KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


def page_of(client: Client) -> str:
    response = client.get("/p/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-store"
    return response.content.decode()


@pytest.mark.parametrize(
    ("language", "direction", "available", "expected"),
    [
        ("fa", "rtl", "۲٬۴۰۰", ["امتیاز", "Silver", "Gold", "Free coffee", "نظرسنجی رضایت"]),
        ("ar", "rtl", "٢٬٤٠٠", ["النقاط", "Silver", "Gold", "Free coffee", "استطلاع الرضا"]),
        ("en", "ltr", "2,400", ["Points", "Silver", "Gold", "Free coffee", "How are we doing?"]),
    ],
)
def test_each_section_is_shown_in_the_members_language(
    club: Club,
    client: Client,
    language: str,
    direction: str,
    available: str,
    expected: list[str],
) -> None:
    page = page_of(signed_in(client, club.members[language]))
    assert f'<html lang="{language}" dir="{direction}">' in page
    assert re.search(rf'id="points-available">{available}<', page), "available points"
    for section in (
        "points",
        "tier",
        "rewards",
        "badges",
        "challenges",
        "referral",
        "surveys",
        "settings",
        "data",
    ):
        assert f'id="{section}"' in page, section
    for text in expected:
        assert text in page, text
    assert 'id="tier-ladder"' in page and 'aria-current="true"' in page
    assert 'id="tier-progress"' in page  # Silver held, Gold above: "x of y to reach Gold"
    assert 'href="/m/preferences/' in page
    assert f'data-key="{VAPID_PUBLIC}"' in page
    assert 'data-worker="/p/sw.js"' in page
    if language == "fa":
        assert latin_digits(page) == [], latin_digits(page)
        progress = page.split('id="tier-progress"', 1)[1].split("</div>", 1)[0]
        assert "۲٬۴۰۰" in progress and "۵٬۰۰۰" in progress  # "x of y", in Persian digits


@pytest.mark.parametrize(("language", "shown"), [("en", "×1.25"), ("fa", "۱٫۲۵×"),
                                                ("ar", "١٫٢٥×")])
def test_a_tiers_multiplier_is_shown_exactly(
    club: Club, client: Client, language: str, shown: str
) -> None:
    Tier.objects.filter(name="Silver").update(earn_multiplier=Decimal("1.25"))
    page = page_of(signed_in(client, club.members[language]))
    assert shown in page.split('id="tier-ladder"', 1)[1]


def test_a_vip_member_sees_their_perks_and_others_do_not(club: Club, client: Client) -> None:
    ProgramSettings.objects.filter(pk=1).update(
        vip_earn_multiplier=Decimal("1.5"), vip_early_access=True
    )
    olivia = club.members["en"]
    make_score(olivia, 50_000_000, vip=True)
    page = page_of(signed_in(client, olivia))
    vip = " ".join(visible_text(page.split('id="vip">', 1)[1].split("</p>", 1)[0]).split())
    assert vip == "You are one of our VIP members. ×1.5 points · early access"
    other = page_of(signed_in(Client(), club.members["fa"]))
    assert 'id="vip"' not in other


def test_the_tier_shows_x_of_y_toward_the_next_one_in_english(club: Club, client: Client) -> None:
    text = visible_text(page_of(signed_in(client, club.members["en"])))
    assert "2,400 of 5,000 to reach Gold" in text
    assert "Next reward: 1,200 of 1,200 points" in text  # 1,000 + the 200-point head start


def test_redeeming_twice_with_the_same_form_key_makes_one_redemption(
    club: Club, client: Client
) -> None:
    signed_in(client, club.members["en"])
    page = page_of(client)
    coffee = club.rewards["coffee"]
    form = re.search(
        rf'name="reward" value="{coffee.pk}">\s*<input type="hidden" name="idempotency_key" '
        r'value="([^"]+)"',
        page,
    )
    assert form is not None
    data = {"reward": coffee.pk, "idempotency_key": form.group(1)}
    first = client.post("/p/redeem/", data)
    second = client.post("/p/redeem/", data)
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    redemption = Redemption.objects.get()
    assert redemption.code.startswith("CAFE-")
    assert LedgerEntry.objects.filter(kind="redeem").count() == 1
    shown = client.get(first["Location"]).content.decode()
    assert redemption.code in shown and 'id="redeemed"' in shown
    assert re.search(r'id="points-available">1,900<', shown)


def test_a_reward_the_member_cannot_afford_is_refused_with_a_translated_reason(
    club: Club, client: Client
) -> None:
    signed_in(client, club.members["fa"])
    response = client.post(
        "/p/redeem/", {"reward": club.rewards["box"].pk, "idempotency_key": "k" * 20}
    )
    assert response.status_code == 409
    body = response.content.decode()
    with translation.override("fa"):
        reason = gettext("You do not have enough points for this reward yet.")
    assert f'id="error">{reason}<' in body
    assert not Redemption.objects.exists()
    bad_key = client.post(
        "/p/redeem/", {"reward": club.rewards["coffee"].pk, "idempotency_key": "x"}
    )
    assert bad_key.status_code == 400 and not Redemption.objects.exists()


def test_nothing_can_be_redeemed_without_a_member_session(club: Club, client: Client) -> None:
    response = client.post(
        "/p/redeem/", {"reward": club.rewards["coffee"].pk, "idempotency_key": "k" * 20}
    )
    assert response.status_code == 401 and not Redemption.objects.exists()


def test_the_invite_link_comes_with_telegram_and_whatsapp_share_links(
    club: Club, client: Client
) -> None:
    signed_in(client, club.members["en"])
    assert "Get my invite link" in page_of(client)
    client.post("/p/referral/")
    page = page_of(client)
    code = club.members["en"].loyalty.referral_code.code
    assert f'value="{SITE}/r/{code}"' in page
    assert f"https://t.me/share/url?url=https%3A%2F%2Fshop.example%2Fr%2F{code}" in page
    assert "https://wa.me/?text=" in page and f"%2Fr%2F{code}" in page


def test_push_opt_in_saves_the_subscription_and_the_service_worker_covers_the_portal(
    club: Club, client: Client
) -> None:
    worker = client.get("/p/sw.js")
    assert worker.status_code == 200
    assert worker["Content-Type"].startswith("text/javascript")
    assert worker["Service-Worker-Allowed"] == "/p/"
    assert b"showNotification" in worker.content
    signed_in(client, club.members["ar"])
    subscription = {
        "endpoint": "https://push.example/send/abc",
        "keys": {
            "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u",
            "auth": "tBHItJI5svbpez7KI4CCXg",
        },
    }
    response = client.post("/p/push/", json.dumps(subscription), content_type="application/json")
    assert response.status_code == 201
    saved = PushSubscription.objects.get()
    assert saved.customer == club.members["ar"] and saved.auth == "tBHItJI5svbpez7KI4CCXg"
    assert club.members["ar"].consents.get(channel="push").granted
    broken = client.post("/p/push/", "{}", content_type="application/json")
    assert broken.status_code == 422


def test_export_downloads_the_members_data_and_is_recorded(club: Club, client: Client) -> None:
    signed_in(client, club.members["fa"])
    response = client.post("/p/export/")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="my-data-')
    data = json.loads(response.content)
    assert data["customer"]["customer_id"] == "C-FA"
    assert data["customer"]["email"] == "zahra@example.com"
    assert data["loyalty"]["points_available"] == 2400
    assert [e["points"] for e in data["loyalty"]["ledger"]] == [2400]
    assert {c["channel"] for c in data["consents"]} == {"email", "sms"}
    request = DataRequest.objects.get()
    assert (request.kind, request.status, request.handled_by) == ("export", "done", "portal")


def test_a_deletion_request_is_recorded_once_for_staff_and_deletes_nothing(
    club: Club, client: Client
) -> None:
    signed_in(client, club.members["en"])
    first = client.post("/p/delete/", {"note": "please remove my account"})
    assert first.status_code == 302 and first["Location"].endswith("?notice=delete#data")
    client.post("/p/delete/", {"note": "again"})
    request = DataRequest.objects.get()
    assert (request.kind, request.status, request.note) == (
        "delete",
        "open",
        "please remove my account",
    )
    page = client.get(first["Location"]).content.decode()
    assert 'id="delete-recorded"' in page and 'id="delete-pending"' in page
    assert club.members["en"].__class__.objects.filter(pk=club.members["en"].pk).exists()


def test_persian_dates_are_jalali_and_spend_tiers_show_money_in_toman(
    club: Club, client: Client
) -> None:
    member = club.members["fa"]
    [lot_expiry] = {lot.expires_at for lot in member.loyalty.lots.all()}
    assert lot_expiry is not None
    local = lot_expiry.astimezone(ZoneInfo("Asia/Tehran"))
    jalali = format_date(local, "fa")
    assert jalali.startswith(("۱۴۰", "۱۴۱"))  # a Jalali year, in Persian digits
    page = page_of(signed_in(client, member))
    assert jalali in page.split('id="expiring-list"', 1)[1].split("</ul>", 1)[0]

    ProgramSettings.objects.filter(pk=1).update(tier_metric="spend")
    Tier.objects.filter(pk=club.tiers["gold"].pk).update(min_spend=Decimal(5_000_000))
    ladder = page_of(client).split('id="tier-ladder"', 1)[1].split("</ol>", 1)[0]
    assert "۵٬۰۰۰٬۰۰۰ تومان" in ladder
    assert latin_digits(ladder) == []


def test_the_page_reads_a_fixed_number_of_queries(
    club: Club, client: Client, django_assert_max_num_queries: Any
) -> None:
    """About thirty queries, one more per running challenge; never one per reward, badge,
    redemption or ledger entry."""
    signed_in(client, club.members["en"])
    client.post("/p/referral/")
    for key in ("a" * 20, "b" * 20):
        client.post("/p/redeem/", {"reward": club.rewards["coffee"].pk, "idempotency_key": key})
    # +1: the site URL is an admin setting; +1: the member's VIP standing
    with django_assert_max_num_queries(32):
        page_of(client)


def test_a_member_joins_the_leaderboard_under_a_pseudonym_and_can_leave(
    club: Club, client: Client
) -> None:
    signed_in(client, club.members["fa"])
    assert 'id="leaderboard-join"' in page_of(client)
    client.post("/p/leaderboard/", {"join": "1"})
    pseudonym = club.members["fa"].loyalty.leaderboard.pseudonym
    page = page_of(client)
    board = page.split('class="rows board"', 1)[1].split("</ol>", 1)[0]
    assert f"{pseudonym}</code>" in board and "زهرا" not in board
    assert "۲٬۴۰۰" in board and latin_digits(page) == []
    client.post("/p/leaderboard/")
    assert 'id="leaderboard-join"' in page_of(client)
