"""Signed survey links: the URL carries the invitation's random token signed with SECRET_KEY.

The signature rejects a forged or mistyped link before any database lookup; the token (unique
in the database) finds the invitation, whose row decides expiry and single use.
"""

from __future__ import annotations

from django.core import signing
from django.urls import reverse

from vafa.feedback import conf

_SALT = "vafa.feedback.invitation"


def sign_token(token: str) -> str:
    return signing.Signer(salt=_SALT).sign(token)


def unsign_token(signed: str) -> str | None:
    """The token inside a signed value, or None when the signature does not verify."""
    try:
        return signing.Signer(salt=_SALT).unsign(signed)
    except signing.BadSignature:
        return None


def survey_url(token: str, *, score: int | None = None) -> str:
    """The absolute survey link; with `score`, the one-click answer link."""
    path = reverse("feedback:survey", kwargs={"signed": sign_token(token)})
    url = f"{conf.base_url()}{path}"
    return url if score is None else f"{url}?score={score}"


_REVIEW_SALT = "vafa.feedback.review"


def review_url(*, customer_id: int, product_id: int) -> str:
    """The absolute link to the review form for one customer and product (what the "review
    request after delivery" message carries). Signed and dated: it works for
    `conf.review_link_days()`; a review can be written once, so reuse is harmless."""
    signed = signing.TimestampSigner(salt=_REVIEW_SALT).sign(f"{customer_id}:{product_id}")
    return f"{conf.base_url()}{reverse('feedback:review', kwargs={'signed': signed})}"


def review_link_read(signed: str) -> tuple[int, int] | None:
    """(customer id, product id) of a review link; None when forged or expired."""
    try:
        value = signing.TimestampSigner(salt=_REVIEW_SALT).unsign(
            signed, max_age=conf.review_link_days() * 24 * 3600
        )
        customer_id, product_id = value.split(":")
        return int(customer_id), int(product_id)
    except (signing.BadSignature, ValueError):
        return None
