"""Absolute URLs of the links messages carry (unsubscribe, preferences, tracking).

Messages are read outside the site, so every link is absolute, built on `VAFA_SITE_URL`.
"""

from __future__ import annotations

from django.urls import reverse

from vafa.messaging import tokens


def absolute(site_url: str, path: str) -> str:
    return site_url.rstrip("/") + path


def unsubscribe_url(*, site_url: str, customer_id: int, channel: str) -> str:
    token = tokens.recipient_token(customer_id=customer_id, channel=channel)
    return absolute(site_url, reverse("messaging:unsubscribe", args=[token]))


def preferences_url(*, site_url: str, customer_id: int, channel: str) -> str:
    token = tokens.recipient_token(customer_id=customer_id, channel=channel)
    return absolute(site_url, reverse("messaging:preferences", args=[token]))


def click_url(*, site_url: str, dedupe_key: str, url: str) -> str:
    token = tokens.click_token(dedupe_key=dedupe_key, url=url)
    return absolute(site_url, reverse("messaging:click", args=[token]))


def open_url(*, site_url: str, dedupe_key: str) -> str:
    token = tokens.open_token(dedupe_key=dedupe_key)
    return absolute(site_url, reverse("messaging:open", args=[token]))
