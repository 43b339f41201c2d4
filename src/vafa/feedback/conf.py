"""Feedback settings, read from Django settings first and then the environment.

Reading at call time (not import time) lets tests change them with `settings` overrides.
"""

from __future__ import annotations

import os

from django.conf import settings


def _value(name: str, default: str) -> str:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, default)
    return str(value)


def base_url() -> str:
    """Absolute origin of survey links (`VAFA_BASE_URL`), without a trailing slash."""
    return _value("VAFA_BASE_URL", "http://127.0.0.1:8000").rstrip("/")


def invitation_days() -> int:
    """How long a survey link stays valid (`VAFA_SURVEY_LINK_DAYS`, default 30)."""
    return int(_value("VAFA_SURVEY_LINK_DAYS", "30"))


def relationship_gap_days() -> int:
    """Minimum days between two relationship NPS invitations to one customer
    (`VAFA_SURVEY_MIN_GAP_DAYS`, default 90)."""
    return int(_value("VAFA_SURVEY_MIN_GAP_DAYS", "90"))


def fatigue_days() -> int:
    """No transactional survey to a customer invited to any survey this recently
    (`VAFA_SURVEY_FATIGUE_DAYS`, default 7): one question a week is plenty."""
    return int(_value("VAFA_SURVEY_FATIGUE_DAYS", "7"))


def delivery_delay_days() -> int:
    """Days after a paid order before asking about it (`VAFA_SURVEY_DELIVERY_DAYS`, default 5):
    orders carry no delivery date, so this stands in for the delivery time."""
    return int(_value("VAFA_SURVEY_DELIVERY_DAYS", "5"))


MAX_TEXT = 4000
"""Longest free-text answer accepted, in characters (longer is refused, not truncated)."""


def lapse_days() -> int:
    """A customer whose last paid order is this old has stopped buying and gets the exit
    survey once (`VAFA_SURVEY_LAPSE_DAYS`, default 180)."""
    return int(_value("VAFA_SURVEY_LAPSE_DAYS", "180"))


MAX_PHOTO_BYTES = 5 * 1024 * 1024
"""Largest review photo accepted (5 MiB): a phone photo fits, a video renamed .jpg does not."""


def review_link_days() -> int:
    """How long a review-request link stays valid (`VAFA_REVIEW_LINK_DAYS`, default 60)."""
    return int(_value("VAFA_REVIEW_LINK_DAYS", "60"))
