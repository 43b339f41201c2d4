"""The WSGI application: API requests take `API_MIDDLEWARE`, pages the full chain (`vafa.core.wsgi`).

Django's test client builds its own handler over `MIDDLEWARE`, so these tests call the WSGI
application itself, as gunicorn does.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from django.conf import settings
from django.core import signals
from django.db import close_old_connections
from django.test import override_settings
from django.utils import translation

from vafa.core.services import apikey_create
from vafa.core.wsgi import Application
from vafa.customers.models import Customer
from vafa.loyalty.services import points_adjust


@pytest.fixture(autouse=True)
def _keep_the_test_transaction() -> Iterator[None]:
    # A real request closes the thread's connection when it starts and ends (the test
    # client does not, for the test's transaction to survive); nor may these.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _call(
    app: Application, path: str, *, method: str = "GET", body: Any = None, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    data = b"" if body is None else json.dumps(body).encode()
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "wsgi.input": io.BytesIO(data),
        "CONTENT_LENGTH": str(len(data)), "CONTENT_TYPE": "application/json",
        **{f"HTTP_{name.upper()}": value for name, value in headers.items()},
    }
    setup_testing_defaults(environ)
    seen: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], *_: Any) -> None:
        seen["status"], seen["headers"] = int(status.split()[0]), dict(response_headers)

    answer = app(environ, start_response)
    try:
        content = b"".join(answer)
    finally:
        answer.close()  # type: ignore[attr-defined]
    return seen["status"], seen["headers"], content


def test_api_middleware_is_part_of_the_full_chain_in_its_order() -> None:
    # The full chain's `CommonMiddleware` stands where the API has its `Content-Length` alone.
    pages = [
        "vafa.core.wsgi.ContentLengthMiddleware" if path.endswith(".CommonMiddleware") else path
        for path in settings.MIDDLEWARE
    ]
    positions = [pages.index(path) for path in settings.API_MIDDLEWARE]
    assert positions == sorted(positions)
    assert "django.contrib.sessions.middleware.SessionMiddleware" not in settings.API_MIDDLEWARE


@pytest.mark.django_db
def test_an_api_write_skips_the_page_middlewares_and_keeps_the_security_ones() -> None:
    customer = Customer.objects.create(external_id="zahra")
    points_adjust(customer=customer, points=10, reason="welcome", actor="test",
                  idempotency_key="welcome")
    key = apikey_create(name="shop backend")[1]
    app = Application()

    status, headers, content = _call(
        app, "/api/v1/members/zahra/adjustments", method="POST",
        body={"points": 5, "reason": "apology"}, authorization=f"Bearer {key}",
        idempotency_key="k-1", accept_language="en", cookie="sessionid=x; csrftoken=y",
    )

    assert status == 201, content
    assert json.loads(content)["balance_after"] == 15
    # The page middlewares did not run: no language, no session or CSRF cookie, no Vary on them.
    assert "Content-Language" not in headers
    assert "Set-Cookie" not in headers
    assert "Cookie" not in headers.get("Vary", "")
    assert "Accept-Language" not in headers.get("Vary", "")
    # What an API keeps: the security headers, the frame guard and the length.
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Content-Length"] == str(len(content))


@pytest.mark.django_db
def test_pages_still_take_the_full_chain() -> None:
    status, headers, _ = _call(Application(), "/admin/login/", accept_language="en")

    assert status == 200
    assert headers["Content-Language"] == "en"
    assert "csrftoken=" in headers.get("Set-Cookie", "")
    assert headers["X-Frame-Options"] == "DENY"


@pytest.mark.django_db
def test_the_api_answers_in_the_default_language_whatever_a_page_left_active() -> None:
    app = Application()
    _call(app, "/admin/login/", accept_language="en")
    assert translation.get_language() == "en"  # a page request leaves its language active

    status, _, _ = _call(app, "/api/v1/no-such-thing", accept_language="en")

    assert status == 404
    assert translation.get_language() == settings.LANGUAGE_CODE


@pytest.mark.django_db
def test_the_api_keeps_the_https_redirect() -> None:
    with override_settings(SECURE_SSL_REDIRECT=True):
        status, headers, _ = _call(Application(), "/api/v1/no-such-thing")

    assert status == 301
    assert headers["Location"].startswith("https://")
