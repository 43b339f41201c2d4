"""`{% role_allows "marketer" as can_market %}`: whether the signed-in user may read (or, with
`write=True`, use) something meant for these roles, by `vafa.core.roles.has_role`. For showing
only the links and forms a user can use; the views enforce the same rules."""

from __future__ import annotations

from typing import Any

from django import template

from vafa.core.roles import has_role

register = template.Library()


@register.simple_tag(takes_context=True)
def role_allows(context: Any, *roles: str, write: bool = False) -> bool:
    """True when the request's user holds one of `roles` (the owner always; the analyst for
    reading)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    return user is not None and has_role(user, *roles, write=write)
