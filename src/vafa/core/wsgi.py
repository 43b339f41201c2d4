"""The WSGI application: Django's handler, with a shorter middleware chain for the REST API.

Every API request authenticates with its key (`Authorization: Bearer`), never a session or a
cookie, and answers in English (machine-readable codes, messages for the developer). So the
page middlewares (sessions, the signed-in user, messages, CSRF, the visitor's language, static
files) have nothing to do there, yet they cost about a tenth of an API write's CPU, the
language alone half of that. Requests under `API_PREFIX` therefore go to a second Django
handler built over `settings.API_MIDDLEWARE`, an ordered subset of `MIDDLEWARE` that keeps what
matters to an API too: the trusted proxy's client address and scheme, the HTTPS redirect and
security headers, the frame guard, and `Content-Length` (`ContentLengthMiddleware`, in place of
`CommonMiddleware`). Every other request takes the full chain.

The test client builds its own handler over `MIDDLEWARE`; tests of this split call
`application` itself (tests/core/test_wsgi.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponseBase
from django.utils import translation

API_PREFIX = "/api/"


class ContentLengthMiddleware:
    """What the API needs of Django's `CommonMiddleware`: a `Content-Length` on every whole
    answer (a keep-alive client reads exactly that much; without it gunicorn sends chunks).
    The rest of it is for pages: its trailing-slash check resolved every API path a second
    time (all of them resolve: unknown ones reach the API's JSON 404), and `PREPEND_WWW` and
    `DISALLOWED_USER_AGENTS` are redirects and refusals for browsers."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if not response.streaming and not response.has_header("Content-Length"):
            response.headers["Content-Length"] = str(len(response.content))  # type: ignore[attr-defined]
        return response


class ApiHandler(WSGIHandler):
    """Django's WSGI handler over `settings.API_MIDDLEWARE` instead of `MIDDLEWARE`."""

    def load_middleware(self, is_async: bool = False) -> None:
        # Django reads the list from settings; it is swapped only while this handler is built
        # (once, when the application is imported).
        pages = settings.MIDDLEWARE
        settings.MIDDLEWARE = list(settings.API_MIDDLEWARE)
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = pages

    def get_response(self, request: HttpRequest) -> HttpResponseBase:
        # No `LocaleMiddleware` here: the language a page request left active on this thread
        # must not carry over, so the API runs in the site's default language.
        translation.deactivate()
        return super().get_response(request)


class Application:
    """The WSGI callable: API requests to `ApiHandler`, everything else to Django's own."""

    def __init__(self) -> None:
        self.pages = WSGIHandler()
        self.api = ApiHandler()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        handler = self.api if environ.get("PATH_INFO", "").startswith(API_PREFIX) else self.pages
        return handler(environ, start_response)


def get_application() -> Application:
    """What `django.core.wsgi.get_wsgi_application` does, with the API's own chain."""
    django.setup(set_prefix=False)
    return Application()
