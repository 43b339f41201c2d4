"""Control groups: which customers a marketing flow or campaign holds out, to measure uplift.

A customer's bucket is a keyed hash of the customer id and the flow or campaign (`salt`), mod
10,000: stable across runs and machines, independent between flows (each flow holds out its own
10%, so no customer is starved of every message), and unpredictable without the key. A customer
is held out when the bucket is below `percent` × 100.
"""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal

from django.conf import settings

BUCKETS = 10_000


def holdout_key(configured: str = "") -> bytes:
    """The hash key: `VAFA_HOLDOUT_KEY` when set, else one derived from `SECRET_KEY`."""
    if configured:
        return configured.encode()
    return hashlib.sha256(b"vafa.messaging.holdout:" + settings.SECRET_KEY.encode()).digest()


def control_bucket(*, customer_id: int, salt: str, key: bytes) -> int:
    """The customer's bucket in 0…9,999 for the flow or campaign `salt`."""
    digest = hmac.new(key, f"{salt}:{customer_id}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def is_held_out(*, customer_id: int, salt: str, percent: Decimal | int, key: bytes) -> bool:
    """Whether the customer belongs to the control group of `salt` (`percent` of 0–100)."""
    threshold = Decimal(percent) * BUCKETS / 100
    return control_bucket(customer_id=customer_id, salt=salt, key=key) < threshold
