"""One shape for every API error: `{"error": {"code", "message", "field"?, "details"?}}`.

`install(api)` replaces django-ninja's default handlers so that Vafa's own errors, request
validation errors (pydantic), authentication failures, 404s and unexpected exceptions all answer
in that shape. `details` lists every problem when there is more than one (a batch, a form).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError as NinjaAuthenticationError
from ninja.errors import HttpError
from ninja.errors import ValidationError as NinjaValidationError

from vafa.core.errors import AuthenticationError, ImportRejected, VafaError

logger = logging.getLogger(__name__)

_STATUS_CODES = {
    400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "too_large", 422: "invalid",
    429: "throttled", 503: "unavailable",
}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    details: Sequence[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    """A JSON error response in Vafa's shape."""
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    if details:
        body["details"] = list(details)
    response = JsonResponse({"error": body}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _vafa_error(request: HttpRequest, exc: VafaError) -> HttpResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="vafa"'} if exc.status == 401 else None
    return error_response(exc.status, exc.code, exc.message, field=exc.field, headers=headers)


def _rejected(request: HttpRequest, exc: ImportRejected) -> HttpResponse:
    """Row problems of an API write: the first one on top, all of them in `details`."""
    details = [{"field": e.field, "message": e.reason} for e in exc.errors]
    first = exc.errors[0] if exc.errors else None
    message = first.reason if first else exc.message
    if exc.total > len(exc.errors):
        message += f" (and {exc.total - 1} more problems)"
    return error_response(
        422, "invalid", message, field=first.field if first else None,
        details=details if len(details) > 1 else None,
    )


def _is_union_tag(part: Any) -> bool:
    """pydantic names the branch of a union it tried (`list[…]`, `function-wrap[…]`)."""
    return isinstance(part, str) and part.endswith("]") and "[" in part


def _location(loc: Iterable[Any]) -> str:
    """pydantic's `("body", "payload", "list[…]", 0, "email")` as `[0].email`."""
    text = ""
    for part in loc:
        if part in ("body", "payload", "query", "path", "header", "cookie", "form", "file"):
            continue
        if _is_union_tag(part):
            continue
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def _validation(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    errors = list(exc.errors)
    # A body that may be one object or a list fails in both branches of the union; keep the
    # complaints about the branch the client meant (a JSON list → the list branch).
    if any(_is_union_tag(p) for e in errors for p in e.get("loc", ())):
        sent_list = request.body.lstrip().startswith(b"[")
        meant = [
            e for e in errors
            if any(isinstance(p, str) and p.startswith("list[") for p in e.get("loc", ()))
            == sent_list
        ]
        errors = meant or errors
    details = [{"field": _location(e.get("loc", ())), "message": str(e.get("msg", ""))}
               for e in errors]
    first = details[0] if details else {"field": "", "message": "invalid request"}
    return error_response(
        422, "invalid", first["message"], field=first["field"] or None,
        details=details if len(details) > 1 else None,
    )


def _authentication(request: HttpRequest, exc: NinjaAuthenticationError) -> HttpResponse:
    return _vafa_error(
        request, AuthenticationError("missing API key: send Authorization: Bearer <key>")
    )


def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    code = _STATUS_CODES.get(exc.status_code, "error")
    return error_response(exc.status_code, code, str(exc))


def _not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
    message = str(exc) if isinstance(exc, Http404) and str(exc) else "not found"
    return error_response(404, "not_found", message)


def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.exception("unhandled error in %s %s", request.method, request.path)
    return error_response(500, "server_error", "internal error; it has been logged")


def install(api: NinjaAPI) -> None:
    """Make every error of `api` answer in Vafa's shape."""
    handlers: list[tuple[type[Exception], Callable[..., HttpResponse]]] = [
        (Exception, _unexpected),
        (Http404, _not_found),
        (HttpError, _http_error),
        (NinjaAuthenticationError, _authentication),
        (NinjaValidationError, _validation),
        (VafaError, _vafa_error),
        (ImportRejected, _rejected),
    ]
    for exc_class, handler in handlers:
        # ninja types the handler's argument as "the exception or its class"; ours take the
        # exception, which is what ninja passes.
        api.add_exception_handler(exc_class, handler)


def not_found_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """A 404 in the API's shape for paths under /api/ that no route matches."""
    return error_response(404, "not_found", f"no API endpoint at {request.path}")
