"""SMS: segment arithmetic and cost, and Kavenegar and Twilio spoken to over HTTP by local
servers that answer as their documentation says. The Kavenegar key travels in the URL path and
must never reach a log line or the database."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from tests.messaging.conftest import T0, enqueue
from tests.messaging.fakes import FakeHttp, Request, json_reply
from vafa.customers.models import Channel, Customer
from vafa.messaging.channels.sms import count_segments, kavenegar_receptor, sms_cost_preview
from vafa.messaging.models import DeliveryLog, OutboxMessage, Status, Suppression
from vafa.messaging.outbox import outbox_flush

KEY = "4F6B2D6E5A7365637265744B6579"
TOKEN = "twilio-auth-token-secret"


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("", "gsm7", 0),
        ("Hello", "gsm7", 1),
        ("a" * 160, "gsm7", 1),
        ("a" * 161, "gsm7", 2),  # 153 + 8
        ("a" * 306, "gsm7", 2),
        ("a" * 307, "gsm7", 3),
        ("€" * 80, "gsm7", 1),  # 160 septets: the euro sign takes two
        ("€" * 81, "gsm7", 2),  # 76 escape pairs fit in 153 septets, never split
        ("a" + "€" * 76 + "b" * 84, "gsm7", 2),  # 153 + 84: the pair that would cross waits
        ("س" * 70, "ucs2", 1),
        ("س" * 71, "ucs2", 2),
        ("س" * 134, "ucs2", 2),
        ("س" * 135, "ucs2", 3),
        ("Hello سلام", "ucs2", 1),  # one Persian letter makes the whole message UCS-2
        ("😀" * 35, "ucs2", 1),  # 70 UTF-16 units
        ("😀" * 36, "ucs2", 2),  # 33 surrogate pairs per 67-unit segment
    ],
)
def test_segments_are_counted_as_carriers_bill_them(text: str, encoding: str, segments: int) -> None:
    info = count_segments(text)
    assert (info.encoding, info.segments) == (encoding, segments)


def test_the_cost_preview_shows_what_persian_costs_before_sending() -> None:
    text = "سلام زهرا جان، امتیازهای شما به زودی منقضی می‌شوند. همین حالا از فروشگاه دیدن کنید و خرید کنید!"
    cost = sms_cost_preview(text=text, price_per_segment=Decimal(150), currency="IRT", recipients=1000)
    assert cost.segments.encoding == "ucs2" and cost.segments.segments == 2
    assert (cost.total_segments, cost.cost) == (2000, Decimal(300_000))


def test_kavenegar_receptors_use_the_local_form_for_iran() -> None:
    assert kavenegar_receptor("+989121234567") == "09121234567"
    assert kavenegar_receptor("+971501234567") == "00971501234567"


def kavenegar(request: Request) -> tuple[int, dict[str, str], bytes]:
    form = request.form()
    if form["receptor"] == "09120000000":
        return json_reply(411, {"return": {"status": 411, "message": "گیرنده نامعتبر است"}, "entries": None})
    if form["receptor"] == "09129999999":
        return json_reply(418, {"return": {"status": 418, "message": "اعتبار حساب شما کافی نیست"}, "entries": None})
    return json_reply(200, {
        "return": {"status": 200, "message": "تایید شد"},
        "entries": [{
            "messageid": 8792343, "message": form["message"], "status": 1,
            "statustext": "در صف ارسال", "sender": form.get("sender", ""),
            "receptor": form["receptor"], "date": 1356619709, "cost": 120,
        }],
    })


@pytest.fixture
def kavenegar_env(http: FakeHttp, monkeypatch: pytest.MonkeyPatch) -> FakeHttp:
    monkeypatch.setenv("VAFA_SMS_PROVIDER", "kavenegar")
    monkeypatch.setenv("VAFA_KAVENEGAR_API_KEY", KEY)
    monkeypatch.setenv("VAFA_KAVENEGAR_SENDER", "10004346")
    monkeypatch.setenv("VAFA_KAVENEGAR_BASE_URL", http.url)
    http.respond = kavenegar
    return http


def test_kavenegar_receives_the_documented_request_and_the_key_never_leaks(
    kavenegar_env: FakeHttp, zahra: Customer, templates: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    message = enqueue(zahra, channel=Channel.SMS)
    outbox_flush(now=T0)
    [request] = kavenegar_env.requests
    assert request.method == "POST" and request.path == f"/v1/{KEY}/sms/send.json"
    assert request.form() == {
        "receptor": "09121234567",
        "message": "سلام زهرا\nلغو۱۱",  # marketing SMS carry the operators' opt-out keyword
        "sender": "10004346",
    }
    message.refresh_from_db()
    assert (message.status, message.provider_message_id, message.provider) == (
        Status.SENT, "8792343", "kavenegar"
    )
    Customer.objects.filter(pk=zahra.pk).update(phone="+989129999999")  # credit runs out
    failing = enqueue(zahra, channel=Channel.SMS, step="2")
    outbox_flush(now=T0)
    failing.refresh_from_db()
    assert failing.status == Status.DEFERRED and "418" in failing.status_reason
    assert KEY not in caplog.text
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # httpx did log
    stored = [
        *OutboxMessage.objects.values_list("status_reason", "to_address", "provider_message_id"),
        *DeliveryLog.objects.values_list("reason", "provider_message_id"),
    ]
    assert not any(KEY in str(value) for row in stored for value in row)


def test_an_invalid_number_at_kavenegar_bounces_and_suppresses_it(
    kavenegar_env: FakeHttp, zahra: Customer, templates: object
) -> None:
    Customer.objects.filter(pk=zahra.pk).update(phone="+989120000000")
    message = enqueue(zahra, channel=Channel.SMS)
    outbox_flush(now=T0)
    message.refresh_from_db()
    assert message.status == Status.BOUNCED and message.status_reason.startswith("Kavenegar 411")
    assert Suppression.objects.filter(
        channel=Channel.SMS, address="+989120000000", reason="hard_bounce"
    ).exists()


def twilio(request: Request) -> tuple[int, dict[str, str], bytes]:
    form = request.form()
    if form["To"] == "+14165550199":
        return json_reply(400, {
            "code": 21610, "message": "Attempt to send to unsubscribed recipient",
            "more_info": "https://www.twilio.com/docs/errors/21610", "status": 400,
        })
    if form["To"] == "+14165550188":
        return json_reply(429, {"code": 20429, "message": "Too Many Requests", "status": 429},
                          {"Retry-After": "900"})
    return json_reply(201, {
        "sid": "SM" + "a" * 32, "status": "queued", "to": form["To"], "from": form["From"],
        "body": form["Body"], "num_segments": "1",
    })


@pytest.fixture
def twilio_env(http: FakeHttp, monkeypatch: pytest.MonkeyPatch) -> FakeHttp:
    monkeypatch.setenv("VAFA_SMS_PROVIDER", "twilio")
    monkeypatch.setenv("VAFA_TWILIO_ACCOUNT_SID", "AC123")
    monkeypatch.setenv("VAFA_TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("VAFA_TWILIO_FROM", "+15005550006")
    monkeypatch.setenv("VAFA_TWILIO_BASE_URL", http.url)
    http.respond = twilio
    return http


def test_twilio_receives_basic_auth_and_the_documented_form(
    twilio_env: FakeHttp, olivia: Customer, templates: object
) -> None:
    import base64

    message = enqueue(olivia, channel=Channel.SMS)
    outbox_flush(now=T0)
    [request] = twilio_env.requests
    assert request.path == "/2010-04-01/Accounts/AC123/Messages.json"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(
        f"AC123:{TOKEN}".encode()
    ).decode()
    assert request.form() == {"To": "+14165550123", "From": "+15005550006", "Body": "Hello Olivia\nSTOP to opt out"}
    message.refresh_from_db()
    assert (message.status, message.provider_message_id) == (Status.SENT, "SM" + "a" * 32)


def test_twilio_unsubscribed_recipients_are_suppressed_and_throttling_is_retried_later(
    twilio_env: FakeHttp, olivia: Customer, templates: object
) -> None:
    Customer.objects.filter(pk=olivia.pk).update(phone="+14165550199")
    stopped = enqueue(olivia, channel=Channel.SMS)
    outbox_flush(now=T0)
    stopped.refresh_from_db()
    assert stopped.status == Status.FAILED and "21610" in stopped.status_reason
    assert Suppression.objects.filter(channel=Channel.SMS, reason="unsubscribed").exists()
    Customer.objects.filter(pk=olivia.pk).update(phone="+14165550188")
    throttled = enqueue(olivia, channel=Channel.SMS, kind="transactional", source="flow:shipping")
    outbox_flush(now=T0)
    throttled.refresh_from_db()
    assert throttled.status == Status.DEFERRED
    assert (throttled.due_at - T0).total_seconds() >= 900  # Retry-After honoured
