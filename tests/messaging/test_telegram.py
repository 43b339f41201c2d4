"""Telegram: linking a chat through the `/start TOKEN` deep link, sending through a local
server that answers like the Bot API, and honouring 403 (blocked) and 429 (retry_after)."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from django.test import Client

from tests.messaging.conftest import T0, enqueue, make_template
from tests.messaging.fakes import FakeHttp, Request, json_reply
from vafa.customers.models import Channel, Consent, Customer
from vafa.messaging.channels.base import Recipient
from vafa.messaging.channels.telegram import TelegramChannel
from vafa.messaging.conf import load_env
from vafa.messaging.models import MessageKind, OutboxMessage, Status, Suppression, TelegramLink
from vafa.messaging.outbox import outbox_flush
from vafa.messaging.services import telegram_link_complete, telegram_link_start

BOT_TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"
SECRET = "webhook-secret-value"


@pytest.fixture
def telegram(http: FakeHttp, monkeypatch: pytest.MonkeyPatch) -> FakeHttp:
    monkeypatch.setenv("VAFA_TELEGRAM_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("VAFA_TELEGRAM_BASE_URL", http.url)
    monkeypatch.setenv("VAFA_TELEGRAM_WEBHOOK_SECRET", SECRET)
    replies = {
        "blocked": (403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}),
        "flood": (429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 600", "parameters": {"retry_after": 600}}),
    }

    def respond(request: Request) -> tuple[int, dict[str, str], bytes]:
        chat = str(request.json()["chat_id"])
        status, body = replies.get(chat, (200, {"ok": True, "result": {"message_id": 77, "chat": {"id": chat}}}))
        return json_reply(status, body)

    http.respond = respond
    return http


def linked(customer: Customer, chat_id: str) -> Customer:
    url = telegram_link_start(customer=customer, bot_username="@vafa_shop_bot", now=T0)
    token = url.rsplit("=", 1)[1]
    assert telegram_link_complete(token=token, chat_id=chat_id, now=T0) is not None
    return customer


def webhook(update: dict[str, object], secret: str = SECRET) -> object:
    return Client().post(
        f"/m/telegram/{secret}/", json.dumps(update), content_type="application/json",
        headers={"X-Telegram-Bot-Api-Secret-Token": secret},
    )


def test_the_start_deep_link_links_the_chat_once_and_opts_in(
    telegram: FakeHttp, zahra: Customer
) -> None:
    url = telegram_link_start(customer=zahra, bot_username="@vafa_shop_bot", now=T0)
    assert url.startswith("https://t.me/vafa_shop_bot?start=")
    token = url.rsplit("=", 1)[1]
    assert len(token) <= 64 and token.replace("-", "").replace("_", "").isalnum()
    response = webhook({"update_id": 1, "message": {"text": f"/start {token}", "chat": {"id": 555}}})
    assert response.status_code == 200  # type: ignore[attr-defined]
    reply = response.json()  # type: ignore[attr-defined]
    assert reply["method"] == "sendMessage" and reply["chat_id"] == "555"
    assert TelegramLink.objects.get(customer=zahra).chat_id == "555"
    assert Consent.objects.get(customer=zahra, channel=Channel.TELEGRAM).granted
    # The token worked once: a stranger replaying it links nothing.
    assert telegram_link_complete(token=token, chat_id="666", now=T0) is None


def test_the_webhook_refuses_a_wrong_secret(telegram: FakeHttp) -> None:
    assert webhook({"message": {"text": "/start x", "chat": {"id": 1}}}, secret="guess").status_code == 404  # type: ignore[attr-defined]


def test_a_message_goes_to_the_bot_api_and_the_token_never_leaks(
    telegram: FakeHttp, zahra: Customer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    make_template(channel=Channel.TELEGRAM, language="fa", subject="", body_html="",
                  body_text="سلام {{ customer.first_name }}")
    message = enqueue(linked(zahra, "555"), channel=Channel.TELEGRAM)
    outbox_flush(now=T0)
    [request] = telegram.requests
    assert request.path == f"/bot{BOT_TOKEN}/sendMessage"
    assert request.json()["chat_id"] == "555" and request.json()["text"] == "سلام زهرا"
    message.refresh_from_db()
    assert (message.status, message.provider_message_id) == (Status.SENT, "77")
    assert BOT_TOKEN not in caplog.text


def test_a_customer_who_blocked_the_bot_is_opted_out_of_telegram(
    telegram: FakeHttp, zahra: Customer
) -> None:
    make_template(channel=Channel.TELEGRAM, language="fa", body_text="hi")
    first = enqueue(linked(zahra, "blocked"), channel=Channel.TELEGRAM)
    outbox_flush(now=T0)
    first.refresh_from_db()
    assert first.status == Status.FAILED and "blocked" in first.status_reason
    assert Suppression.objects.filter(channel=Channel.TELEGRAM, reason="blocked_bot").exists()
    receipt = enqueue(zahra, channel=Channel.TELEGRAM, kind=MessageKind.TRANSACTIONAL, source="flow:shipping")
    outbox_flush(now=T0 + timedelta(minutes=1))
    receipt.refresh_from_db()
    assert receipt.status == Status.SUPPRESSED
    assert len(telegram.requests) == 1


def test_blocking_reported_by_the_webhook_suppresses_the_chat(
    telegram: FakeHttp, zahra: Customer
) -> None:
    linked(zahra, "555")
    webhook({"my_chat_member": {"chat": {"id": 555}, "new_chat_member": {"status": "kicked"}}})
    assert Suppression.objects.filter(
        customer=zahra, channel=Channel.TELEGRAM, reason="blocked_bot", lifted_at__isnull=True
    ).exists()
    webhook({"message": {"text": "/stop", "chat": {"id": 555}}})
    assert not Consent.objects.get(customer=zahra, channel=Channel.TELEGRAM).granted


def test_a_flood_wait_is_honoured(telegram: FakeHttp, zahra: Customer) -> None:
    make_template(channel=Channel.TELEGRAM, language="fa", body_text="hi")
    message = enqueue(linked(zahra, "flood"), channel=Channel.TELEGRAM)
    outbox_flush(now=T0)
    message.refresh_from_db()
    assert message.status == Status.DEFERRED
    assert (message.due_at - T0).total_seconds() >= 600


def test_two_messages_to_one_chat_are_a_second_apart(telegram: FakeHttp, zahra: Customer) -> None:
    waits: list[float] = []
    clock = iter([0.0, 0.2, 1.0, 5.0])  # first send, second arrives 0.2 s later, …
    channel = TelegramChannel(load_env(), sleep=waits.append, clock=lambda: next(clock))
    message = OutboxMessage(body_text="hi", customer=zahra)
    for _ in range(2):
        channel.send(message, Recipient(customer=zahra, address="555"))
    channel.send(message, Recipient(customer=zahra, address="556"))
    assert waits == [pytest.approx(0.8)]
    channel.close()
