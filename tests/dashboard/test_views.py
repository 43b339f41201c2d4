"""The overview page over HTTP: access, languages, empty state and its query budget."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.dashboard.visible import latin_digits, visible_text
from vafa.insights.models import AnalysisRun, CustomerScore, RfmSegment

URL = "/dashboard/"


def _get(client: Client, lang: str) -> str:
    response = client.get(URL, HTTP_ACCEPT_LANGUAGE=lang)
    assert response.status_code == 200
    return response.content.decode()


def test_visible_text_helper_sees_digits_in_text_but_not_in_scripts_or_attributes() -> None:
    page = '<p title="42">۴۲</p><script>var a = 1;</script><style>p{margin:0}</style><code>7</code>'
    assert latin_digits(page) == []
    assert latin_digits("<p>12 تومان</p>") != []


def test_anonymous_visitors_are_sent_to_the_admin_login(client: Client, db: None) -> None:
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/dashboard/"


def test_a_customer_account_without_staff_rights_is_refused(client: Client, db: None) -> None:
    User.objects.create_user("reza", password="x-long-password-1")
    client.login(username="reza", password="x-long-password-1")
    assert client.get(URL)["Location"].startswith("/admin/login/")


def test_the_site_root_leads_to_the_dashboard(client: Client, db: None) -> None:
    assert client.get("/")["Location"] == URL


def test_without_a_run_the_page_explains_how_to_make_one(client: Client, staff: User) -> None:
    client.force_login(staff)
    page = _get(client, "en")
    assert "vafa insights refresh" in page
    assert "Customers worth saving" not in page
    assert latin_digits(_get(client, "fa")) == []


def test_staff_read_the_overview_in_persian_arabic_and_english(
    client: Client, staff: User, analysed_shop: AnalysisRun
) -> None:
    client.force_login(staff)
    fa, ar, en = _get(client, "fa"), _get(client, "ar"), _get(client, "en")

    assert '<html lang="fa" dir="rtl">' in fa
    assert '<html lang="ar" dir="rtl">' in ar
    assert '<html lang="en" dir="ltr">' in en
    # Persian and Arabic pages show no ASCII digit outside scripts, styles and code samples.
    assert latin_digits(fa) == []
    assert latin_digits(ar) == []
    assert re.search("[۰-۹]", visible_text(fa))
    assert re.search("[٠-٩]", visible_text(ar))
    # Headline cards, the retention chart, the segment table and the save list are all there.
    for text in (
        "Retention rate",
        "Churn rate",
        "Predicted CLV per customer",
        "Average order value",
        "RFM segments",
        "Customers worth saving",
        "Champions",
    ):
        assert text in en, text
    assert 'data-figure="chart-1-retention"' in en
    assert "نرخ نگهداشت" in fa and "معدل الاحتفاظ" in ar
    assert "cdn" not in en.lower()


def test_customers_worth_saving_are_the_most_valuable_slipping_ones(
    client: Client, staff: User, analysed_shop: AnalysisRun
) -> None:
    client.force_login(staff)
    expected = list(
        CustomerScore.objects.filter(
            rfm_segment__in=[RfmSegment.AT_RISK, RfmSegment.CANT_LOSE, RfmSegment.ABOUT_TO_SLEEP],
            predicted_clv__isnull=False,
        )
        .order_by("-predicted_clv", "customer_id")
        .values_list("customer_id", flat=True)[:20]
    )
    assert expected, "the synthetic shop should have slipping customers"
    page = _get(client, "en")
    table = page.split('class="saveable"', 1)[1]
    shown = [int(pk) for pk in re.findall(r"/dashboard/customers/(\d+)/", table)]
    assert shown == expected
    assert re.search(r"no purchase for \d+ days?", table)


@pytest.mark.parametrize("extra_customers", [0, 60])
def test_the_overview_runs_a_fixed_number_of_queries_whatever_the_shop_size(
    client: Client,
    staff: User,
    analysed_shop: AnalysisRun,
    extra_customers: int,
    django_assert_max_num_queries: object,
) -> None:
    # More slipping customers than the list shows: the page must still not query per customer.
    if extra_customers:
        _clone_slipping_scores(analysed_shop, extra_customers)
    client.force_login(staff)
    # session + user, the user's roles, latest run, its summary (only on the first view of a run
    # in each language: the built cards and charts are kept), shop name, slipping scores,
    # their last orders
    with django_assert_max_num_queries(8):  # type: ignore[operator]
        _get(client, "fa")


def _clone_slipping_scores(run: AnalysisRun, count: int) -> None:
    from decimal import Decimal

    from vafa.customers.models import Customer

    customers = Customer.objects.bulk_create(
        [Customer(external_id=f"extra-{i}", first_name="Extra") for i in range(count)]
    )
    CustomerScore.objects.bulk_create(
        [
            CustomerScore(
                customer=c,
                run=run,
                rfm_segment=RfmSegment.CANT_LOSE,
                r_score=1,
                f_score=5,
                m_score=5,
                loyalty_label="lapsing",
                predicted_clv=Decimal(10_000 + i),
            )
            for i, c in enumerate(customers)
        ]
    )


def test_plotly_and_the_font_are_served_by_the_app_and_cached_for_good(client: Client) -> None:
    js = client.get("/dashboard/assets/7/plotly.min.js", HTTP_ACCEPT_ENCODING="gzip")
    assert js.status_code == 200
    assert js["Content-Encoding"] == "gzip"
    assert "immutable" in js["Cache-Control"]
    font = client.get("/dashboard/assets/33/vazirmatn.woff2")
    assert font["Content-Type"] == "font/woff2"
    assert font.content[:4] == b"wOF2"
    assert client.get("/dashboard/assets/1/passwords.txt").status_code == 404
