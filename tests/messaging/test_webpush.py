"""Web push: VAPID-signed, aes128gcm-encrypted requests to a subscription endpoint on loopback,
decrypted here with the browser's keys to prove the payload is what the customer sees."""

from __future__ import annotations

import base64
import json
import os

import http_ece
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client

from tests.messaging.conftest import T0, enqueue, make_template
from tests.messaging.fakes import FakeHttp, Request
from vafa.customers.models import Channel, Customer
from vafa.messaging import tokens
from vafa.messaging.models import PushSubscription, Status


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def browser() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    """A browser's subscription keys: an ECDH P-256 key pair and a 16-byte auth secret."""
    return ec.generate_private_key(ec.SECP256R1()), os.urandom(16)


@pytest.fixture
def push_env(http: FakeHttp, monkeypatch: pytest.MonkeyPatch) -> FakeHttp:
    vapid = ec.generate_private_key(ec.SECP256R1())
    monkeypatch.setenv("VAFA_VAPID_PRIVATE_KEY", b64(vapid.private_numbers().private_value.to_bytes(32, "big")))
    monkeypatch.setenv("VAFA_VAPID_SUBJECT", "mailto:ops@shop.example")

    def respond(request: Request) -> tuple[int, dict[str, str], bytes]:
        if request.path.endswith("/gone"):
            return 410, {}, b""
        return 201, {"Location": f"{http.url}/msg/1"}, b""

    http.respond = respond
    return http


def subscribe(customer: Customer, endpoint: str, browser: tuple[ec.EllipticCurvePrivateKey, bytes]) -> None:
    key, auth = browser
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    token = tokens.recipient_token(customer_id=customer.pk, channel=Channel.PUSH)
    response = Client().post(
        f"/m/push/{token}/",
        json.dumps({"endpoint": endpoint, "keys": {"p256dh": b64(public), "auth": b64(auth)}}),
        content_type="application/json",
    )
    assert response.status_code == 201


def test_a_push_reaches_the_endpoint_encrypted_for_the_browser(
    push_env: FakeHttp, zahra: Customer, browser: tuple[ec.EllipticCurvePrivateKey, bytes]
) -> None:
    from vafa.messaging.outbox import outbox_flush

    subscribe(zahra, f"{push_env.url}/push/abc", browser)
    make_template(channel=Channel.PUSH, language="fa", subject="امتیاز شما",
                  body_html="", body_text="{{ customer.first_name }}، {{ points }} امتیاز")
    message = enqueue(zahra, channel=Channel.PUSH, data={"url": "https://shop.example/points"})
    outbox_flush(now=T0)
    [request] = push_env.requests
    assert request.path == "/push/abc"
    assert request.headers["content-encoding"] == "aes128gcm"
    assert request.headers["authorization"].startswith("vapid t=")
    assert int(request.headers["ttl"]) > 0
    key, auth = browser
    payload = json.loads(http_ece.decrypt(request.body, private_key=key, auth_secret=auth, version="aes128gcm"))
    assert payload == {
        "title": "امتیاز شما", "body": "زهرا، ۰ امتیاز", "url": "https://shop.example/points",
        "lang": "fa", "dir": "rtl",
    }
    message.refresh_from_db()
    assert message.status == Status.SENT


def test_an_expired_subscription_is_forgotten(
    push_env: FakeHttp, zahra: Customer, browser: tuple[ec.EllipticCurvePrivateKey, bytes]
) -> None:
    from vafa.messaging.outbox import outbox_flush

    subscribe(zahra, f"{push_env.url}/push/gone", browser)
    make_template(channel=Channel.PUSH, language="fa", subject="t", body_text="b")
    message = enqueue(zahra, channel=Channel.PUSH)
    outbox_flush(now=T0)
    message.refresh_from_db()
    assert message.status == Status.FAILED and "expired" in message.status_reason
    assert not PushSubscription.objects.exists()


def test_a_subscription_needs_its_keys(zahra: Customer) -> None:
    token = tokens.recipient_token(customer_id=zahra.pk, channel=Channel.PUSH)
    response = Client().post(f"/m/push/{token}/", json.dumps({"endpoint": "https://push.example/x"}),
                             content_type="application/json")
    assert response.status_code == 422
