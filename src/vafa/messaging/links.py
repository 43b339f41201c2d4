"""Absolute URLs of the links messages carry (unsubscribe, preferences, tracking).

Messages are read outside the site, so every link is absolute, built on `VAFA_SITE_URL`.

Every link here is one URL name whose only argument is a token, and a campaign builds several
per message: `reverse()` each time cost about a quarter of rendering. So each URL name is
reversed once with a placeholder, and the token is put between the two halves. The halves are
cached per URL configuration and script prefix (the two things `reverse()` depends on), so a
test that swaps `ROOT_URLCONF` or a site mounted under a prefix still gets the right URL.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.urls import get_script_prefix, get_urlconf, reverse

from vafa.messaging import tokens

_PLACEHOLDER = "vafa-token-placeholder"


def absolute(site_url: str, path: str) -> str:
    return site_url.rstrip("/") + path


@lru_cache(maxsize=64)
def _halves(name: str, urlconf: str, script_prefix: str) -> tuple[str, str]:
    """The path of `name` before and after its token argument (`urlconf` and `script_prefix`
    are the cache key; `reverse()` reads them itself)."""
    before, found, after = reverse(name, args=[_PLACEHOLDER]).partition(_PLACEHOLDER)
    if not found:  # the pattern transformed its argument: nothing safe to cache
        raise ValueError(f"{name} does not take its token verbatim")
    return before, after


@receiver(setting_changed)
def _forget_halves(*, setting: str, **kwargs: Any) -> None:
    """A test that replaces the URL configuration under the same module name gets new URLs
    (Django clears its own resolver caches on this signal too)."""
    if setting in {"ROOT_URLCONF", "FORCE_SCRIPT_NAME"}:
        _halves.cache_clear()


def token_halves(name: str) -> tuple[str, str]:
    """The path of URL name `name` before and after its only argument, a token, in the
    current URL configuration (to build many links of one name at once)."""
    urlconf = get_urlconf() or settings.ROOT_URLCONF
    return _halves(name, str(urlconf), get_script_prefix())


def token_path(name: str, token: str) -> str:
    """`reverse(name, args=[token])` for a URL name whose only argument is a token, without
    resolving the URL configuration again (tokens are URL-safe base64, inserted as they are)."""
    before, after = token_halves(name)
    return f"{before}{token}{after}"


def unsubscribe_url(*, site_url: str, customer_id: int, channel: str) -> str:
    token = tokens.recipient_token(customer_id=customer_id, channel=channel)
    return absolute(site_url, token_path("messaging:unsubscribe", token))


def preferences_url(*, site_url: str, customer_id: int, channel: str) -> str:
    token = tokens.recipient_token(customer_id=customer_id, channel=channel)
    return absolute(site_url, token_path("messaging:preferences", token))


def click_url(*, site_url: str, dedupe_key: str, url: str) -> str:
    token = tokens.click_token(dedupe_key=dedupe_key, url=url)
    return absolute(site_url, token_path("messaging:click", token))


def open_url(*, site_url: str, dedupe_key: str) -> str:
    token = tokens.open_token(dedupe_key=dedupe_key)
    return absolute(site_url, token_path("messaging:open", token))
