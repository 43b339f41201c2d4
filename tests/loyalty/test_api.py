"""The loyalty API: what a shop sees and does through HTTP, with API keys and idempotent writes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests.loyalty.conftest import Api, make_order, make_score
from vafa.customers.models import Customer
from vafa.loyalty import services
from vafa.loyalty.models import (
    Allocation,
    Badge,
    BadgeRule,
    Challenge,
    ChallengeMetric,
    LedgerEntry,
    Lot,
    Member,
    ProgramSettings,
    Redemption,
    Referral,
    ReferralCode,
    Reward,
    RewardKind,
    Tier,
    WebhookDelivery,
    WebhookEndpoint,
)

pytestmark = pytest.mark.django_db


def give(customer: Customer, points: int, key: str = "seed") -> None:
    services.points_adjust(
        customer=customer, points=points, reason="seed", actor="test", idempotency_key=key
    )


def balance(customer: Customer) -> int:
    return int(customer.loyalty.entries.values_list("balance_after", flat=True).first() or 0)


def test_it_shows_a_members_balance_tier_and_endowed_progress(
    api: Api, zahra: Customer, base_rule: Any
) -> None:
    silver = Tier.objects.create(name="Silver", rank=0, min_points=0)
    Tier.objects.create(name="Gold", rank=1, min_points=500)
    now = timezone.now()
    order = make_order(zahra, 3_000_000, placed_at=now - timedelta(days=1))
    services.order_sync_points(order=order)  # 300 pending points
    give(zahra, 100)

    body = api.get("/members/zahra").json()

    assert body["balance"] == {
        "available": 100, "pending": 300, "debt": 0, "balance": 400,
        "next_available_at": body["balance"]["next_available_at"],
        "expiring_30": 0, "expiring_60": 0, "expiring_90": 0, "expiring_soon": [],
    }
    assert body["balance"]["next_available_at"] is not None
    assert body["tier"]["current"]["id"] == silver.pk
    assert body["tier"]["below"] is None and body["tier"]["above"]["name"] == "Gold"
    assert (body["tier"]["value"], body["tier"]["target"]) == ("300", "500")
    assert body["reward_progress"] == {"current": 600, "goal": 1200, "head_start": 200,
                                       "ready": False}


def test_it_lists_points_expiring_soon_with_their_dates(api: Api, zahra: Customer) -> None:
    ProgramSettings.objects.filter(pk=1).update(expiry_months=2)
    give(zahra, 70)

    body = api.get("/members/zahra").json()["balance"]

    assert body["expiring_30"] == 0 and body["expiring_90"] == 70  # 59 to 62 days away
    assert [e["points"] for e in body["expiring_soon"]] == [70]


def test_an_unknown_customer_is_a_404_in_the_error_shape(api: Api) -> None:
    response = api.get("/members/nobody")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_history_pages_with_a_cursor(api: Api, zahra: Customer) -> None:
    for i in range(5):
        give(zahra, 10 + i, key=f"seed-{i}")

    first = api.get("/members/zahra/history", limit=3).json()
    second = api.get("/members/zahra/history", limit=3, cursor=first["next_cursor"]).json()

    assert [e["points"] for e in first["items"]] == [14, 13, 12]
    assert [e["points"] for e in second["items"]] == [11, 10]
    assert second["next_cursor"] is None


def test_an_adjustment_records_the_api_key_and_its_replay_changes_nothing(
    api: Api, zahra: Customer
) -> None:
    first = api.post("/members/zahra/adjustments", {"points": 50, "reason": "goodwill"}, key="a1")
    again = api.post("/members/zahra/adjustments", {"points": 50, "reason": "goodwill"}, key="a1")

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.json()["actor"].startswith("api_key:vafa_")
    assert LedgerEntry.objects.count() == 1 and balance(zahra) == 50


def test_an_adjustment_without_a_reason_or_a_key_is_refused(api: Api, zahra: Customer) -> None:
    no_reason = api.post("/members/zahra/adjustments", {"points": 5, "reason": ""})
    no_key = api.post("/members/zahra/adjustments", {"points": 5, "reason": "x"}, key=None)

    assert no_reason.status_code == 422
    assert no_key.status_code == 400
    assert no_key.json()["error"]["code"] == "idempotency_key_missing"
    assert not LedgerEntry.objects.exists()


def test_a_points_redemption_is_201_and_a_short_balance_is_409(api: Api, zahra: Customer) -> None:
    give(zahra, 100)

    ok = api.post("/members/zahra/redemptions", {"points": 60}, key="r1")
    short = api.post("/members/zahra/redemptions", {"points": 60}, key="r2")
    replay = api.post("/members/zahra/redemptions", {"points": 60}, key="r1")

    assert ok.status_code == 201 and ok.json()["entry"]["points"] == -60
    assert short.status_code == 409
    assert short.json()["error"]["code"] == "insufficient_points"
    assert replay.json() == ok.json()
    assert balance(zahra) == 40


def test_either_points_or_a_reward_is_required(api: Api, zahra: Customer) -> None:
    both = api.post("/members/zahra/redemptions", {"points": 1, "reward_id": 1})
    neither = api.post("/members/zahra/redemptions", {}, key="k-2")

    assert both.status_code == neither.status_code == 422


@pytest.fixture
def voucher(program: ProgramSettings) -> Reward:
    return Reward.objects.create(
        name="50k off", kind=RewardKind.FIXED_DISCOUNT, points_cost=80,
        discount_amount=50_000, currency="IRT", stock=3, coupon_prefix="VF-",
    )


def test_a_reward_redemption_hands_out_a_coupon_the_shop_can_use_once(
    api: Api, zahra: Customer, voucher: Reward
) -> None:
    give(zahra, 100)

    bought = api.post("/members/zahra/redemptions", {"reward_id": voucher.pk}, key="r1")
    used = api.post(f"/coupons/{bought.json()['code']}/use", key="u1")
    cancel = api.post(f"/redemptions/{bought.json()['id']}/cancel", {"reason": "x"}, key="c1")

    assert bought.status_code == 201
    assert bought.json()["code"].startswith("VF-") and bought.json()["status"] == "issued"
    assert used.status_code == 200 and used.json()["status"] == "used"
    assert cancel.status_code == 409 and cancel.json()["error"]["code"] == "redemption_used"
    assert balance(zahra) == 20


def test_cancelling_a_redemption_returns_the_points_once(
    api: Api, zahra: Customer, voucher: Reward
) -> None:
    give(zahra, 100)
    bought = api.post("/members/zahra/redemptions", {"reward_id": voucher.pk}, key="r1").json()
    plain = api.post("/members/zahra/redemptions", {"points": 10}, key="r2").json()

    first = api.post(f"/redemptions/{bought['id']}/cancel", {"reason": "changed mind"}, key="c1")
    again = api.post(f"/redemptions/{bought['id']}/cancel", {"reason": "changed mind"}, key="c1")
    points = api.post(f"/redemptions/{plain['id']}/cancel", key="c2")

    assert first.status_code == 200 and first.json()["status"] == "cancelled"
    assert first.json()["cancel_entry"]["points"] == 80
    assert again.json() == first.json()
    assert points.json()["status"] == "cancelled"
    assert balance(zahra) == 100
    assert Reward.objects.get().stock == 3


def test_an_unknown_coupon_or_redemption_is_a_404(api: Api) -> None:
    assert api.post("/coupons/NOPE/use").status_code == 404
    assert api.post("/redemptions/999/cancel").status_code == 404


def test_the_catalogue_is_filtered_by_the_members_tier(
    api: Api, zahra: Customer, voucher: Reward
) -> None:
    gold = Tier.objects.create(name="Gold", rank=1, min_points=1000)
    Reward.objects.create(name="Lounge", kind=RewardKind.EVENT, points_cost=10, min_tier=gold)
    Reward.objects.create(name="Gone", kind=RewardKind.GIFT, points_cost=5, stock=0)

    everyone = api.get("/rewards").json()
    hers = api.get("/rewards", customer_id="zahra").json()

    assert [r["name"] for r in everyone] == ["Lounge", "50k off"]
    assert [r["name"] for r in hers] == ["50k off"]
    assert hers[0]["discount_amount"].startswith("50000")  # money as a decimal string


def test_the_liability_report_values_outstanding_points(api: Api, zahra: Customer) -> None:
    give(zahra, 30)

    body = api.get("/loyalty/liability", months=2).json()

    assert body["outstanding_points"] == 30
    assert body["outstanding_cost"].startswith("3000")
    assert len(body["months"]) == 2 and body["months"][-1]["adjusted"] == 30


def test_a_write_with_another_body_under_the_same_key_is_refused(
    api: Api, zahra: Customer
) -> None:
    give(zahra, 100)
    api.post("/members/zahra/redemptions", {"points": 10}, key="r1")

    reused = api.post("/members/zahra/redemptions", {"points": 20}, key="r1")

    assert reused.status_code == 409
    assert Redemption.objects.count() == 0 and balance(zahra) == 90


def test_a_reward_past_the_members_clv_share_is_a_409(
    api: Api, zahra: Customer, voucher: Reward
) -> None:
    give(zahra, 500)
    make_score(zahra, 50_000, vip=True)  # cap 5,000 Toman; the voucher costs 80 × 100 = 8,000

    refused = api.post("/members/zahra/redemptions", {"reward_id": voucher.pk})
    member = api.get("/members/zahra").json()

    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "spend_cap_reached"
    assert member["vip"]["vip"] is True and member["vip"]["spend_cap"].startswith("5000")


def test_a_referral_goes_through_the_api(api: Api, zahra: Customer) -> None:
    Customer.objects.create(external_id="sara", email="sara@example.com")

    code = api.post("/members/zahra/referral-code", key="c1").json()
    attached = api.post("/members/sara/referral", {"code": code["code"]}, key="a1")
    own = api.post("/members/zahra/referral", {"code": code["code"]}, key="a2")
    rate = api.get(
        "/loyalty/referral-rate", start="2020-01-01T00:00:00Z", end="2030-01-01T00:00:00Z"
    )

    assert code["link"].endswith(code["code"])
    assert attached.status_code == 201 and attached.json()["referrer_id"] == "zahra"
    assert own.status_code == 422 and own.json()["error"]["code"] == "self_referral"
    assert rate.json()["new_customers"] == 0 and rate.json()["rate"] is None


def _state() -> tuple[Any, ...]:
    """Everything a write could change."""
    return (
        LedgerEntry.objects.count(), Lot.objects.count(), Allocation.objects.count(),
        list(Redemption.objects.values_list("status", flat=True)),
        list(Reward.objects.values_list("stock", flat=True)),
        list(Member.objects.values_list("balance", "debt")),
        Referral.objects.count(), ReferralCode.objects.count(), WebhookDelivery.objects.count(),
    )


@pytest.mark.parametrize(
    "write",
    [
        "adjust", "redeem_points", "redeem_reward", "cancel", "use", "referral_code", "referral",
        "leaderboard",
    ],
)
def test_replaying_any_write_returns_the_first_response_and_changes_nothing(
    api: Api, zahra: Customer, voucher: Reward, write: str
) -> None:
    WebhookEndpoint.objects.create(url="http://127.0.0.1:9/")
    give(zahra, 500)
    Customer.objects.create(external_id="sara")
    bought = services.reward_redeem(customer=zahra, reward=voucher, idempotency_key="seed-r")
    code = services.referral_code_get(customer=zahra).code
    path, body = {
        "adjust": ("/members/zahra/adjustments", {"points": -5, "reason": "fix"}),
        "redeem_points": ("/members/zahra/redemptions", {"points": 10}),
        "redeem_reward": ("/members/zahra/redemptions", {"reward_id": voucher.pk}),
        "cancel": (f"/redemptions/{bought.entry_id}/cancel", {"reason": "x"}),
        "use": (f"/coupons/{bought.code}/use", None),
        "referral_code": ("/members/sara/referral-code", None),
        "referral": ("/members/sara/referral", {"code": code}),
        "leaderboard": ("/members/zahra/leaderboard", {"opt_in": True}),
    }[write]

    first = api.post(path, body, key="same")
    after_first = _state()
    again = api.post(path, body, key="same")

    assert first.status_code in (200, 201), first.json()
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _state() == after_first


def test_badges_and_the_pseudonymous_leaderboard_show_through_the_api(
    api: Api, zahra: Customer, base_rule: Any
) -> None:
    Badge.objects.create(name="Earner", slug="earner", rule=BadgeRule.POINTS_EARNED, threshold=1)
    now = timezone.now()
    services.order_sync_points(order=make_order(zahra, 1_000_000, placed_at=now - timedelta(1)))
    services.badges_evaluate(customer=zahra)

    joined = api.post("/members/zahra/leaderboard", {"opt_in": True}, key="j1").json()
    member = api.get("/members/zahra").json()
    board = api.get("/loyalty/leaderboard").json()
    left = api.post("/members/zahra/leaderboard", {"opt_in": False}, key="j2").json()

    assert joined["pseudonym"].startswith("Member-")
    assert member["leaderboard_pseudonym"] == joined["pseudonym"]
    assert [b["slug"] for b in member["badges"]] == ["earner"]
    assert board == [{"rank": 1, "pseudonym": joined["pseudonym"], "points": 100}]
    assert left == {"pseudonym": None} and api.get("/loyalty/leaderboard").json() == []


def test_the_member_read_shows_running_challenges_with_progress(
    api: Api, zahra: Customer, base_rule: Any
) -> None:
    now = timezone.now()
    three = Challenge.objects.create(
        name="Three orders before Yalda", metric=ChallengeMetric.ORDERS, target=3,
        reward_points=50, starts_at=now - timedelta(days=5), ends_at=now + timedelta(days=20),
    )
    one = Challenge.objects.create(
        name="One order this week", metric=ChallengeMetric.ORDERS, target=1, reward_points=10,
        starts_at=now - timedelta(days=5), ends_at=now + timedelta(days=2),
    )
    Challenge.objects.create(  # over: not shown
        name="Last month", metric=ChallengeMetric.ORDERS, target=1,
        starts_at=now - timedelta(days=40), ends_at=now - timedelta(days=10),
    )
    Challenge.objects.create(  # switched off: not shown
        name="Draft", metric=ChallengeMetric.ORDERS, target=1, active=False,
        starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1),
    )
    make_order(zahra, 100_000, placed_at=now - timedelta(days=20))  # before the challenges
    make_order(zahra, 100_000, placed_at=now - timedelta(days=1))
    services.challenges_evaluate(customer=zahra)

    rows = api.get("/members/zahra").json()["challenges"]

    assert [(r["id"], r["progress"], r["target"], r["completed"]) for r in rows] == [
        (one.pk, 1, 1, True), (three.pk, 1, 3, False)
    ]
    assert rows[0]["completed_at"] is not None and rows[1]["completed_at"] is None
    assert rows[1]["name"] == "Three orders before Yalda" and rows[1]["reward_points"] == 50
    assert api.get("/members/omid-unknown").status_code == 404
