"""Team roles: who on a shop's team may see and do what in the dashboard.

Four roles, each a Django group created by a migration (`core.0002_role_groups`), so a shop
assigns them in the admin like any group:

- **owner**: everything, including settings and API keys. A superuser counts as an owner.
- **marketer**: segments, campaigns, flows, goals; sends messages to customers.
- **support**: customers, tickets, surveys; adjusts a customer's points with a reason.
- **analyst**: reads every page, changes nothing (no form, no action, no API write).

A page says which roles it serves with `@role_required(...)`; the owner is always allowed, and
the analyst may read every page (`write=False`) but never writes. Being on the team means being
`is_staff` (the admin login admits only staff) *and* having at least one role: a staff account
with no role sees nothing, so adding someone to the team is an explicit choice of role.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, Final, TypeVar

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

OWNER: Final = "owner"
MARKETER: Final = "marketer"
SUPPORT: Final = "support"
ANALYST: Final = "analyst"
ROLES: Final[tuple[str, ...]] = (OWNER, MARKETER, SUPPORT, ANALYST)

# HTTP methods that only read; anything else is a write, refused to a read-only role.
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})

_CACHE_ATTRIBUTE = "_vafa_roles"

ViewFunction = TypeVar("ViewFunction", bound=Callable[..., HttpResponse])


def user_roles(user: Any) -> frozenset[str]:
    """The roles of `user` (a `User` or `AnonymousUser`): empty for anonymous, inactive or
    non-staff accounts, `{"owner"}` for a superuser, else the role groups it belongs to.

    The answer is kept on the user object, so a request asks the database at most once however
    many times a page checks a role.
    """
    cached = getattr(user, _CACHE_ATTRIBUTE, None)
    if cached is not None:
        return frozenset(cached)
    roles: frozenset[str]
    if not getattr(user, "is_authenticated", False) or not user.is_active or not user.is_staff:
        roles = frozenset()
    elif user.is_superuser:
        roles = frozenset({OWNER})
    else:
        roles = frozenset(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
    setattr(user, _CACHE_ATTRIBUTE, roles)
    return roles


def has_role(user: Any, *roles: str, write: bool = False) -> bool:
    """Whether `user` may use something meant for `roles`: the owner always may; an analyst may
    whenever it only reads (`write=False`); anyone else needs one of `roles`."""
    _check_names(roles)
    held = user_roles(user)
    if OWNER in held or held.intersection(roles):
        return True
    return not write and ANALYST in held


def role_required(*roles: str, write: bool = False) -> Callable[[ViewFunction], ViewFunction]:
    """View decorator: let in the owner and `roles`; the analyst too when the view only reads.

    `write=True` marks a view whose non-GET requests change something (a form that saves): a
    GET to it is still a read (the analyst may look at the form), a POST needs one of `roles`
    or the owner. Whatever `write` says, a read-only role is refused every unsafe method, so a
    view that forgets `write=True` cannot be used to write by an analyst.

    Anonymous visitors and accounts outside the team are sent to the admin login (as
    `staff_member_required` does); a team member without the role (or with no role at all)
    gets a 403.
    """
    _check_names(roles)

    def decorate(view: ViewFunction) -> ViewFunction:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            held = user_roles(request.user)
            if not held and not _on_team(request.user):
                return redirect_to_login(request.get_full_path(), reverse("admin:login"))
            writing = request.method not in SAFE_METHODS
            if not has_role(request.user, *roles, write=write and writing):
                raise PermissionDenied
            if writing and not held.intersection((OWNER, *roles)):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def _on_team(user: Any) -> bool:
    """A staff account that may log in: without a role it gets a 403, not the login page
    (which would send it straight back here)."""
    return bool(getattr(user, "is_authenticated", False) and user.is_active and user.is_staff)


def _check_names(roles: Iterable[str]) -> None:
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown role(s) {sorted(unknown)}; the roles are {list(ROLES)}")
