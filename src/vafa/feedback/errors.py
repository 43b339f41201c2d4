"""Errors of the feedback app, each with a stable code (rendered by the API and the pages)."""

from __future__ import annotations

from vafa.core.errors import NotFoundError, PermissionDeniedError, VafaError, ValidationError


class InvitationInvalid(NotFoundError):
    """A link whose signature does not verify or whose token is unknown."""

    code = "survey_link_invalid"


class InvitationExpired(VafaError):
    code = "survey_link_expired"
    status = 410


class InvitationUsed(VafaError):
    """The survey behind this link was already answered: links are single-use."""

    code = "survey_link_used"
    status = 410


class AnswerInvalid(ValidationError):
    code = "survey_answer_invalid"


class ReviewNotAllowed(PermissionDeniedError):
    """Only a customer who bought (and kept) the product may review it."""

    code = "review_not_verified"
