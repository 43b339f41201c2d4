"""The admin works for the shop's team, in Persian, Arabic and English."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from vafa.core.models import ApiKey, hash_key

pytestmark = pytest.mark.django_db

ADMIN_PAGES = ["customers/customer", "customers/order", "customers/product", "customers/event",
               "customers/ticket", "customers/consent", "core/apikey", "loyalty/member",
               "insights/customerscore"]


def test_creating_an_api_key_shows_it_once_and_stores_only_its_hash(admin_client: Client) -> None:
    response = admin_client.post("/admin/core/apikey/add/",
                                 {"name": "shop backend", "role": "support"}, follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    raw = re.search(r"vafa_[A-Za-z0-9_\-]{20,}", page)
    assert raw, "the new key is shown on the page"
    key = ApiKey.objects.get(name="shop backend")
    assert key.role == "support"
    assert key.key_hash == hash_key(raw.group(0))
    assert raw.group(0) not in str(ApiKey.objects.values_list(flat=True))
    listing = admin_client.get("/admin/core/apikey/").content.decode()
    assert raw.group(0) not in listing


def test_revoking_keys_from_the_list(admin_client: Client) -> None:
    admin_client.post("/admin/core/apikey/add/", {"name": "old", "role": "owner"})
    key = ApiKey.objects.get(name="old")
    admin_client.post("/admin/core/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None


@pytest.mark.parametrize("lang,word", [("fa", "مشتریان"), ("ar", "العملاء"), ("en", "Customers")])
def test_the_admin_speaks_the_merchants_language(admin_client: Client, lang: str,
                                                 word: str) -> None:
    response = admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE=lang)
    page = response.content.decode()
    assert f'lang="{lang}"' in page
    assert ('dir="rtl"' in page) == (lang != "en")
    assert word in page


@pytest.mark.parametrize("page", ADMIN_PAGES)
def test_every_list_page_opens_with_search(admin_client: Client, page: str) -> None:
    response = admin_client.get(f"/admin/{page}/?q=x", HTTP_ACCEPT_LANGUAGE="fa")
    assert response.status_code == 200
