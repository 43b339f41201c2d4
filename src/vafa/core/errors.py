"""The platform's exception hierarchy. Each error has a stable `code`; the API renders every one
as `{"error": {"code", "message", "field"}}`, the CLI as `FILE:LINE: field: reason`."""

from __future__ import annotations

from dataclasses import dataclass


class VafaError(Exception):
    """Base of every error raised on purpose by Vafa's services."""

    code = "error"
    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def as_dict(self) -> dict[str, str]:
        body = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return body


class ValidationError(VafaError):
    code = "invalid"
    status = 422


class NotFoundError(VafaError):
    code = "not_found"
    status = 404


class ConflictError(VafaError):
    code = "conflict"
    status = 409


class AuthenticationError(VafaError):
    code = "unauthenticated"
    status = 401


class PermissionDeniedError(VafaError):
    code = "forbidden"
    status = 403


@dataclass(frozen=True)
class RowError:
    """One problem in one row of an import file, printed as `FILE:LINE: field: reason`."""

    line: int
    field: str
    reason: str

    def render(self, filename: str) -> str:
        return f"{filename}:{self.line}: {self.field}: {self.reason}"


class ImportRejected(VafaError):
    """An import file had bad rows; nothing was written."""

    code = "import_rejected"
    status = 422

    def __init__(self, errors: list[RowError], total: int, filename: str) -> None:
        super().__init__(f"{total} bad row(s) in {filename}; nothing was imported")
        self.errors = errors
        self.total = total
        self.filename = filename
