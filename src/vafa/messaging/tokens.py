"""Opaque link tokens: unsubscribe/preference links, click and open tracking.

A token is sealed with AES-GCM (authenticated encryption, from `cryptography`) under a key
derived from the shop's `SECRET_KEY` and the token's purpose, with a random nonce. So it is:

- opaque: it reveals nothing (not the customer id, not an email address), unlike
  `django.core.signing`, whose payload is readable base64;
- unforgeable and bound to its purpose: a click token is refused as an unsubscribe token;
- unlinkable: two messages to one customer carry different tokens;
- stateless and without expiry: RFC 8058 expects an unsubscribe link in an old email to keep
  working. Rotating `SECRET_KEY` invalidates old links.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import struct
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from vafa.customers.models import Channel
from vafa.messaging.errors import InvalidToken

RECIPIENT = "recipient"
CLICK = "click"
OPEN = "open"
_CHANNELS = tuple(Channel.values)
_NONCE = 12


@lru_cache(maxsize=16)
def _cipher(purpose: str, secret_key: str) -> AESGCM:
    key = hashlib.sha256(f"vafa.messaging.tokens.{purpose}:{secret_key}".encode()).digest()
    return AESGCM(key)


def seal(data: bytes, *, purpose: str) -> str:
    """`data` encrypted and authenticated for `purpose`, as URL-safe text."""
    nonce = os.urandom(_NONCE)
    sealed = _cipher(purpose, settings.SECRET_KEY).encrypt(nonce, data, purpose.encode())
    return base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()


def unseal(token: str, *, purpose: str) -> bytes:
    """The data of a token made by `seal` for `purpose`; `InvalidToken` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("this link is not valid") from None
    if len(raw) <= _NONCE + 16:
        raise InvalidToken("this link is not valid")
    try:
        return _cipher(purpose, settings.SECRET_KEY).decrypt(
            raw[:_NONCE], raw[_NONCE:], purpose.encode()
        )
    except InvalidTag:
        raise InvalidToken("this link is not valid") from None


@dataclass(frozen=True)
class RecipientToken:
    """Who a link belongs to and through which channel it reached them."""

    customer_id: int
    channel: str


def recipient_token(*, customer_id: int, channel: str) -> str:
    """The token of a customer's unsubscribe and preference links for `channel`."""
    return seal(struct.pack(">QB", customer_id, _CHANNELS.index(channel)), purpose=RECIPIENT)


def read_recipient_token(token: str) -> RecipientToken:
    data = unseal(token, purpose=RECIPIENT)
    try:
        customer_id, channel = struct.unpack(">QB", data)
        return RecipientToken(customer_id=customer_id, channel=_CHANNELS[channel])
    except (struct.error, IndexError):
        raise InvalidToken("this link is not valid") from None


def click_token(*, dedupe_key: str, url: str) -> str:
    """The token of a tracked link: which message, and where to go (only that URL)."""
    return seal(json.dumps([dedupe_key, url]).encode(), purpose=CLICK)


def read_click_token(token: str) -> tuple[str, str]:
    try:
        dedupe_key, url = json.loads(unseal(token, purpose=CLICK))
        return str(dedupe_key), str(url)
    except (ValueError, TypeError):
        raise InvalidToken("this link is not valid") from None


def open_token(*, dedupe_key: str) -> str:
    return seal(dedupe_key.encode(), purpose=OPEN)


def read_open_token(token: str) -> str:
    return unseal(token, purpose=OPEN).decode(errors="replace")
