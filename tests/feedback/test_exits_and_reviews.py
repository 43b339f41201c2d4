"""Exit surveys (why customers leave, counted by segment) and verified-buyer reviews."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client

from vafa.core.errors import ConflictError, ValidationError
from vafa.core.services import apikey_create
from vafa.customers.models import Customer, Order, OrderLine, OrderStatus, Product
from vafa.feedback.errors import AnswerInvalid, ReviewNotAllowed
from vafa.feedback.models import ReviewStatus, Trigger
from vafa.feedback.reviews import review_moderate, review_reply, review_submit
from vafa.feedback.selectors import exit_reasons
from vafa.feedback.services import (
    exit_invitation_create,
    response_complete,
    survey_invitations_due,
)
from vafa.loyalty.models import EarningRule, EntryKind, LedgerEntry, RuleKind

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, 10, tzinfo=UTC)


def test_leaving_customers_are_asked_once_per_trigger(sara: Customer) -> None:
    first = exit_invitation_create(customer=sara, trigger=Trigger.UNSUBSCRIBE, channel="email")
    assert first is not None and first.survey.slug == "exit"
    assert exit_invitation_create(customer=sara, trigger=Trigger.UNSUBSCRIBE) is None
    assert exit_invitation_create(customer=sara, trigger=Trigger.DELETION) is not None
    with pytest.raises(AnswerInvalid):
        exit_invitation_create(customer=sara, trigger=Trigger.API)


def test_customers_who_stopped_buying_get_the_exit_survey(db: None) -> None:
    gone = Customer.objects.create(external_id="G")
    active = Customer.objects.create(external_id="A")
    Order.objects.create(external_id="O1", customer=gone, placed_at=NOW - timedelta(days=182),
                         status=OrderStatus.PAID, total=Decimal(1), currency="IRT")
    Order.objects.create(external_id="O2", customer=active, placed_at=NOW - timedelta(days=190),
                         status=OrderStatus.PAID, total=Decimal(1), currency="IRT")
    Order.objects.create(external_id="O3", customer=active, placed_at=NOW - timedelta(days=20),
                         status=OrderStatus.PAID, total=Decimal(1), currency="IRT")
    created = survey_invitations_due(now=NOW)
    exits = [i for i in created if i.trigger == Trigger.LAPSED]
    assert [(i.customer.external_id, i.survey.slug) for i in exits] == [("G", "exit")]


def test_exit_reasons_are_counted_by_segment(db: None) -> None:
    answers = [("Tehran", "price"), ("Tehran", "price"), ("Tehran", "delivery"),
               ("Shiraz", "delivery")]
    for n, (city, reason) in enumerate(answers):
        customer = Customer.objects.create(external_id=f"E{n}", city=city)
        invitation = exit_invitation_create(customer=customer, trigger=Trigger.UNSUBSCRIBE)
        assert invitation is not None
        response_complete(invitation=invitation, data={"reason": reason, "detail": "<i>"})
    with pytest.raises(AnswerInvalid):  # a made-up reason is refused
        invitation = exit_invitation_create(customer=customer, trigger=Trigger.DELETION)
        assert invitation is not None
        response_complete(invitation=invitation, data={"reason": "aliens"})
    by_city = [(r.segment, r.reason, r.count) for r in exit_reasons(by="city")]
    assert by_city == [("Shiraz", "delivery", 1), ("Tehran", "price", 2),
                       ("Tehran", "delivery", 1)]
    by_trigger = [(r.segment, r.reason, r.count) for r in exit_reasons(by="trigger")]
    assert by_trigger == [("unsubscribe", "delivery", 2), ("unsubscribe", "price", 2)]
    with pytest.raises(ValidationError):
        exit_reasons(by="password")


# -- reviews ---------------------------------------------------------------------------------------


@pytest.fixture
def bought(sara: Customer) -> Product:
    product = Product.objects.create(external_id="P1", name="Tea")
    order = Order.objects.create(external_id="O1", customer=sara, placed_at=NOW,
                                 status=OrderStatus.PAID, total=Decimal(10), currency="IRT")
    OrderLine.objects.create(order=order, line_no=1, product=product, quantity=1,
                             unit_price=Decimal(10))
    return product


def test_only_verified_buyers_may_review(sara: Customer, john: Customer, bought: Product) -> None:
    with pytest.raises(ReviewNotAllowed):
        review_submit(customer=john, product=bought, stars=5)
    review = review_submit(customer=sara, product=bought, stars=1, text="دیر رسید")
    assert review.status == ReviewStatus.PENDING and review.order is not None
    with pytest.raises(ConflictError):
        review_submit(customer=sara, product=bought, stars=2)
    for stars in (0, 6):
        with pytest.raises(ValidationError):
            review_submit(customer=sara, product=bought, stars=stars)


def test_a_refunded_order_does_not_make_a_verified_buyer(sara: Customer, bought: Product) -> None:
    Order.objects.filter(external_id="O1").update(status=OrderStatus.REFUNDED)
    with pytest.raises(ReviewNotAllowed):
        review_submit(customer=sara, product=bought, stars=4)


def test_publishing_rewards_once_and_negative_reviews_show_with_the_reply(
    sara: Customer, bought: Product, survey_reward: EarningRule
) -> None:
    EarningRule.objects.create(name="review", kind=RuleKind.REVIEW, active=True, points=80)
    review = review_submit(customer=sara, product=bought, stars=1, text="<script>x</script>")
    review_moderate(review=review, publish=True)
    review_moderate(review=review, publish=True)
    review_reply(review=review, text="ببخشید؛ جبران می‌کنیم")
    points = LedgerEntry.objects.filter(member__customer=sara, kind=EntryKind.EARN)
    assert [e.points for e in points] == [80]
    headers = {"Authorization": f"Bearer {apikey_create(name='shop')[1]}"}
    page = Client().get("/api/v1/reviews?product_id=P1", headers=headers).json()
    item = page["items"][0]
    assert (item["stars"], item["author"], item["verified_buyer"]) == (1, "سارا", True)
    assert item["text"] == "<script>x</script>" and item["reply"] == "ببخشید؛ جبران می‌کنیم"
    review_moderate(review=review, publish=False)
    assert Client().get("/api/v1/reviews?product_id=P1", headers=headers).json()["items"] == []


def test_the_shop_submits_reviews_through_the_api(sara: Customer, bought: Product) -> None:
    headers = {"Authorization": f"Bearer {apikey_create(name='shop')[1]}",
               "Idempotency-Key": "r1"}
    body = {"customer_id": "C-SARA", "product_id": "P1", "stars": 4, "text": "خوب"}
    created = Client().post("/api/v1/reviews", json.dumps(body), content_type="application/json",
                            headers=headers)
    assert created.status_code == 201 and created.json()["status"] == "pending"
    unknown = {**body, "product_id": "nope"}
    refused = Client().post("/api/v1/reviews", json.dumps(unknown),
                            content_type="application/json",
                            headers={**headers, "Idempotency-Key": "r2"})
    assert refused.status_code == 404 and refused.json()["error"]["field"] == "product_id"
    john_body = {**body, "customer_id": "C-JOHN"}
    Customer.objects.create(external_id="C-JOHN")
    not_a_buyer = Client().post("/api/v1/reviews", json.dumps(john_body),
                                content_type="application/json",
                                headers={**headers, "Idempotency-Key": "r3"})
    assert not_a_buyer.status_code == 403
    assert not_a_buyer.json()["error"]["code"] == "review_not_verified"
