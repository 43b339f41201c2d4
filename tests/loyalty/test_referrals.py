"""Referrals: both sides rewarded only after the referee's first paid order outlives the return
window; self-referrals refused; a cap per referrer; the referral rate as a KPI."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.loyalty.conftest import T0, make_order, set_status
from vafa.customers.models import Customer, OrderStatus
from vafa.loyalty import selectors, services
from vafa.loyalty.errors import AlreadyReferred, NotANewCustomer, ReferralCodeUnknown, SelfReferral
from vafa.loyalty.models import (
    EarningRule,
    LedgerEntry,
    ProgramSettings,
    Referral,
    ReferralStatus,
    RuleKind,
)

pytestmark = pytest.mark.django_db

AFTER_WINDOW = T0 + timedelta(days=15)  # the program's return window is 14 days


@pytest.fixture
def referral_rule(program: ProgramSettings) -> EarningRule:
    return EarningRule.objects.create(
        name="referral", kind=RuleKind.REFERRAL, active=True, points=100
    )


def bonus(customer: Customer) -> int:
    return sum(
        LedgerEntry.objects.filter(member__customer=customer, reason="referral").values_list(
            "points", flat=True
        )
    )


def new_customer(name: str, **fields: str) -> Customer:
    return Customer.objects.create(external_id=name, **fields)


def test_a_member_gets_one_stable_code_and_a_link(zahra: Customer, program: ProgramSettings) -> None:
    code = services.referral_code_get(customer=zahra, now=T0)

    assert services.referral_code_get(customer=zahra, now=T0) == code
    assert len(code.code) == services.REFERRAL_CODE_LENGTH
    assert selectors.referral_link(code.code) == f"/r/{code.code}"


def test_both_sides_are_rewarded_only_after_the_return_window(
    zahra: Customer, referral_rule: EarningRule
) -> None:
    code = services.referral_code_get(customer=zahra, now=T0).code
    sara = new_customer("sara")
    services.referral_attach(referee=sara, code=code.lower(), now=T0)
    make_order(sara, 500_000, placed_at=T0)

    inside = services.referrals_settle(now=T0 + timedelta(days=13))
    after = services.referrals_settle(now=AFTER_WINDOW)
    again = services.referrals_settle(now=AFTER_WINDOW + timedelta(days=1))

    assert (inside, after, again) == (0, 1, 0)
    assert (bonus(zahra), bonus(sara)) == (100, 100)
    assert Referral.objects.get().status == ReferralStatus.REWARDED


def test_a_refunded_first_order_rewards_nobody(
    zahra: Customer, referral_rule: EarningRule
) -> None:
    code = services.referral_code_get(customer=zahra, now=T0).code
    sara = new_customer("sara")
    services.referral_attach(referee=sara, code=code, now=T0)
    set_status(make_order(sara, 500_000, placed_at=T0), OrderStatus.REFUNDED, refunded=500_000)

    services.referrals_settle(now=AFTER_WINDOW)

    referral = Referral.objects.get()
    assert referral.status == ReferralStatus.REJECTED and "refunded" in referral.reject_reason
    assert (bonus(zahra), bonus(sara)) == (0, 0)


@pytest.mark.parametrize(
    ("fields", "why"),
    [({"email": "Z@Example.com"}, "same email"), ({"phone": "+989121111111"}, "same phone")],
)
def test_it_refuses_a_self_referral_by_email_or_phone(
    zahra: Customer, program: ProgramSettings, fields: dict[str, str], why: str
) -> None:
    Customer.objects.filter(pk=zahra.pk).update(phone="+989121111111")
    code = services.referral_code_get(customer=zahra, now=T0).code

    with pytest.raises(SelfReferral, match=why):
        services.referral_attach(referee=new_customer("alias", **fields), code=code, now=T0)
    with pytest.raises(SelfReferral, match="same customer"):
        services.referral_attach(referee=zahra, code=code, now=T0)
    assert not Referral.objects.exists()


def test_it_refuses_a_self_referral_from_the_same_street_address(
    zahra: Customer, program: ProgramSettings
) -> None:
    Customer.objects.filter(pk=zahra.pk).update(
        attributes={"address": "تهران، خیابان ولیعصر، کوچه ۱۲، پلاک ۳"})
    code = services.referral_code_get(customer=zahra, now=T0).code
    # The same address typed otherwise: Arabic yeh and kaf, ASCII digits, other punctuation.
    alias = new_customer("alias")
    Customer.objects.filter(pk=alias.pk).update(
        attributes={"address": "تهران - خيابان وليعصر  کوچه 12 ، پلاك 3"})
    alias.refresh_from_db()
    with pytest.raises(SelfReferral, match="same address"):
        services.referral_attach(referee=alias, code=code, now=T0)

    neighbour, vague = new_customer("neighbour"), new_customer("vague")
    Customer.objects.filter(pk=neighbour.pk).update(
        attributes={"address": "تهران، خیابان ولیعصر، کوچه ۱۲، پلاک ۵"})
    Customer.objects.filter(pk=vague.pk).update(attributes={"address": "تهران"})
    Customer.objects.filter(pk=zahra.pk).update(attributes={"address": "تهران"})
    neighbour.refresh_from_db()
    vague.refresh_from_db()
    services.referral_attach(referee=neighbour, code=code, now=T0)
    services.referral_attach(referee=vague, code=code, now=T0)  # a city alone proves nothing
    assert Referral.objects.count() == 2


def test_it_refuses_unknown_codes_old_customers_and_a_second_referrer(
    zahra: Customer, omid: Customer, program: ProgramSettings
) -> None:
    code = services.referral_code_get(customer=zahra, now=T0).code
    other = services.referral_code_get(customer=omid, now=T0).code
    sara, bought = new_customer("sara"), new_customer("bought")
    make_order(bought, 100_000, placed_at=T0 - timedelta(days=30))

    with pytest.raises(ReferralCodeUnknown):
        services.referral_attach(referee=sara, code="NOPE", now=T0)
    with pytest.raises(NotANewCustomer):
        services.referral_attach(referee=bought, code=code, now=T0)
    first = services.referral_attach(referee=sara, code=code, now=T0)
    assert services.referral_attach(referee=sara, code=code, now=T0) == first
    with pytest.raises(AlreadyReferred):
        services.referral_attach(referee=sara, code=other, now=T0)


def test_referrals_past_the_cap_are_recorded_but_not_rewarded(
    zahra: Customer, referral_rule: EarningRule
) -> None:
    ProgramSettings.objects.filter(pk=1).update(referral_cap=2)
    code = services.referral_code_get(customer=zahra, now=T0).code
    for name in ("a", "b", "c"):
        friend = new_customer(name)
        services.referral_attach(referee=friend, code=code, now=T0)
        make_order(friend, 100_000, placed_at=T0)

    services.referrals_settle(now=AFTER_WINDOW)

    statuses = list(Referral.objects.order_by("pk").values_list("status", flat=True))
    assert statuses == ["rewarded", "rewarded", "capped"]  # the first two made, not the last
    assert bonus(zahra) == 200


def test_the_referral_rate_is_referred_over_new_customers(
    zahra: Customer, program: ProgramSettings
) -> None:
    code = services.referral_code_get(customer=zahra, now=T0).code
    friends = [new_customer(f"f{i}") for i in range(4)]
    services.referral_attach(referee=friends[0], code=code, now=T0)
    for friend in friends:
        make_order(friend, 100_000, placed_at=T0 + timedelta(days=1))
    make_order(zahra, 100_000, placed_at=T0 - timedelta(days=90))  # not new in the period

    rate = selectors.referral_rate(start=T0, end=T0 + timedelta(days=30))

    assert (rate.new_customers, rate.referred) == (4, 1)
    assert str(rate.rate) == "0.2500"
