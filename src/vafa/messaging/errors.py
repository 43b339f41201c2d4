"""The messaging app's errors, each with a stable `code` the API and the admin can show."""

from __future__ import annotations

from vafa.core.errors import NotFoundError, ValidationError


class TemplateError(ValidationError):
    """A merchant's template that cannot be rendered: a syntax error, an unknown variable, or
    something the sandbox refuses. The message says where (`field`, `line`); nothing is sent."""

    code = "template_error"

    def __init__(self, message: str, *, field: str | None = None, line: int | None = None) -> None:
        where = f"{field}, line {line}" if field and line else field or ""
        super().__init__(f"{where}: {message}" if where else message, field=field)
        self.line = line
        self.detail = message


class TemplateNotFound(NotFoundError):
    """No template with this key exists for the channel (in any language)."""

    code = "template_not_found"


class InvalidToken(NotFoundError):
    """A link token that was not issued by this shop or was altered."""

    code = "invalid_token"


class ChannelUnavailable(ValidationError):
    """The customer has no address on this channel (no email, no phone, no linked chat)."""

    code = "channel_unavailable"
