"""The segment builder pages through HTTP: staff only, live count, save, edit, delete."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from vafa.customers.models import Customer
from vafa.insights.models import Segment

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_in(staff: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(staff)
    return client


@pytest.fixture
def customers() -> None:
    for key, city, gender in (("a", "Tehran", "female"), ("b", "Tehran", "male"),
                              ("c", "Shiraz", "female")):
        Customer.objects.create(external_id=key, city=city, gender=gender)


def test_strangers_and_non_staff_are_sent_to_the_login_page(customers: None) -> None:
    anonymous = Client()
    response = anonymous.get("/dashboard/segments/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    member = Client()
    member.force_login(User.objects.create_user("customer", password="x-long-password-1"))
    assert member.get("/dashboard/segments/count/?city=Tehran").status_code == 302
    assert member.post("/dashboard/segments/save/", {"name": "x"}).status_code == 302
    assert not Segment.objects.exists()


def test_an_analyst_reads_segments_but_cannot_save_and_support_sees_none(
    analyst: User, support_agent: User, customers: None
) -> None:
    reader = Client(HTTP_ACCEPT_LANGUAGE="en")
    reader.force_login(analyst)
    page = reader.get("/dashboard/segments/")
    assert page.status_code == 200 and "Save segment" not in page.content.decode()
    assert reader.get("/dashboard/segments/count/?city=Tehran").json()["count"] == 2
    assert reader.post("/dashboard/segments/save/", {"name": "x"}).status_code == 403
    agent = Client()
    agent.force_login(support_agent)
    assert agent.get("/dashboard/segments/").status_code == 403
    assert not Segment.objects.exists()


def test_the_count_endpoint_counts_the_form_filters(client_in: Client, customers: None) -> None:
    assert client_in.get("/dashboard/segments/count/").json()["count"] == 3
    body = client_in.get("/dashboard/segments/count/?city=Tehran&gender=female").json()
    assert body["count"] == 1
    body = client_in.get("/dashboard/segments/count/?city=Tehran&gender=female&match=any").json()
    assert body["count"] == 3
    body = client_in.get("/dashboard/segments/count/?city=Tehran&city__exclude=1").json()
    assert body["count"] == 1


def test_the_count_is_in_persian_digits_in_persian(staff: User, customers: None) -> None:
    client = Client()
    client.force_login(staff)
    client.cookies["django_language"] = "fa"
    assert client.get("/dashboard/segments/count/?city=Tehran").json()["display"] == "۲"


def test_a_bad_filter_is_reported_against_its_input(client_in: Client) -> None:
    response = client_in.get("/dashboard/segments/count/?clv__min=abc")
    assert response.status_code == 422
    assert response.json()["error"]["input"] == "clv__min"
    response = client_in.get("/dashboard/segments/count/?p_alive__min=0.9&p_alive__max=0.2")
    assert response.json()["error"]["input"] == "p_alive__max"


def test_staff_save_edit_and_delete_a_segment(client_in: Client, customers: None) -> None:
    response = client_in.post("/dashboard/segments/save/", {
        "name": "Tehran", "description": "Customers in Tehran", "city": "Tehran",
        "match": "all", "order_count__min": "0"})
    segment = Segment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/dashboard/segments/{segment.pk}/"
    assert segment.definition == {"match": "all", "rules": [
        {"field": "city", "values": ["Tehran"]}, {"field": "order_count", "min": 0}]}
    assert (segment.last_count, segment.created_by) == (2, "shirin")

    page = client_in.get(f"/dashboard/segments/{segment.pk}/").content.decode()
    assert "Segment “Tehran” saved." in page
    assert re.search(r'<option value="Tehran" selected>', page)
    assert 'name="order_count__min" value="0"' in page

    client_in.post("/dashboard/segments/save/", {"segment_id": segment.pk, "name": "Shiraz",
                                                 "city": "Shiraz"})
    segment.refresh_from_db()
    assert (segment.name, segment.last_count) == ("Shiraz", 1)
    assert Segment.objects.count() == 1

    response = client_in.post(f"/dashboard/segments/{segment.pk}/delete/")
    assert response.status_code == 302 and not Segment.objects.exists()


def test_an_invalid_form_is_shown_again_with_the_problem(client_in: Client) -> None:
    response = client_in.post("/dashboard/segments/save/", {"name": "", "city": "Tehran"})
    assert response.status_code == 422
    page = response.content.decode()
    assert "A segment needs a name." in page
    assert '<option value="Tehran" selected>' in page
    assert not Segment.objects.exists()
    response = client_in.post("/dashboard/segments/save/", {"name": "x", "age__min": "-3"})
    assert response.status_code == 422
    assert 'class="filter invalid" data-filter="age"' in response.content.decode()


def test_the_list_shows_saved_segments_with_localised_counts(staff: User,
                                                            customers: None) -> None:
    client = Client()
    client.force_login(staff)
    client.post("/dashboard/segments/save/", {"name": "همه", "gender": ["female", "male"]})
    client.cookies["django_language"] = "fa"
    page = client.get("/dashboard/segments/").content.decode()
    assert 'dir="rtl"' in page
    assert re.search(r'<td class="num">۳</td>', page)


def test_a_segment_used_by_a_campaign_cannot_be_deleted(client_in: Client,
                                                        customers: None) -> None:
    from vafa.messaging.campaigns.models import Campaign

    client_in.post("/dashboard/segments/save/", {"name": "All"})
    segment = Segment.objects.get()
    Campaign.objects.create(name="Spring", segment=segment)
    response = client_in.post(f"/dashboard/segments/{segment.pk}/delete/", follow=True)
    assert Segment.objects.filter(pk=segment.pk).exists()
    assert "is used by a campaign and cannot be deleted" in response.content.decode()


def test_the_live_count_takes_a_fixed_number_of_queries(
    client_in: Client, customers: None, django_assert_max_num_queries: Any
) -> None:
    from vafa.customers.models import Category
    from vafa.loyalty.models import Tier

    tier = Tier.objects.create(name="Gold", rank=1)
    shoes = Category.objects.create(name="Shoes")
    query = (f"/dashboard/segments/count/?city=Tehran&tier={tier.pk}&category={shoes.pk}"
             "&rfm_segment=champions&clv__min=10&last_purchase_days__max=30&order_count__min=2"
             "&consent=email&vip=yes&age__min=20")
    client_in.get(query)  # warm the session and the user's roles
    # Session and user (2), roles (1), tier and category checks (2), the category tree (1),
    # the stored purchase totals' mark (1) and the count itself (1): eight, whatever the
    # number of customers or filters.
    with django_assert_max_num_queries(8):
        assert client_in.get(query).json()["count"] == 0


def test_persian_merchants_type_and_read_the_date_filters_in_the_jalali_calendar(
    staff: User, customers: None
) -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    from vafa.customers.models import Order

    # 1405/01/01 is 21 March 2026 (Nowruz); the order is on 1405/01/10.
    Order.objects.create(external_id="o1", customer=Customer.objects.get(external_id="a"),
                         placed_at=datetime(2026, 3, 30, 8, 0, tzinfo=UTC), status="paid",
                         total=Decimal(10), currency="IRR")
    fa = Client(HTTP_ACCEPT_LANGUAGE="fa")
    fa.force_login(staff)
    count = fa.get("/dashboard/segments/count/",
                   {"last_purchase_date__from": "۱۴۰۵/۰۱/۰۱",
                    "last_purchase_date__to": "1405/01/31"}).json()
    assert count["count"] == 1
    saved = fa.post("/dashboard/segments/save/", {
        "name": "Nowruz buyers", "last_purchase_date__from": "۱۴۰۵/۰۱/۰۱"})
    assert saved.status_code == 302
    segment = Segment.objects.get(name="Nowruz buyers")
    assert segment.definition["rules"][0]["from"] == "2026-03-21"  # stored Gregorian
    page = fa.get(f"/dashboard/segments/{segment.pk}/").content.decode()
    field = re.search(r'<input type="(\w+)"[^>]*name="last_purchase_date__from" '
                      r'value="([^"]*)"', page)
    assert field is not None and field.groups() == ("text", "۱۴۰۵/۰۱/۰۱")
    en = Client(HTTP_ACCEPT_LANGUAGE="en")
    en.force_login(staff)
    page = en.get(f"/dashboard/segments/{segment.pk}/").content.decode()
    assert 'type="date" name="last_purchase_date__from" value="2026-03-21"' in page
