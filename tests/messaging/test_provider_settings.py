"""Provider settings edited in the admin over secrets from the environment: which wins, what
the admin shows about secrets (names, never values), the "send a test message" page through
the real channel path (aiosmtpd, a Postmark-shaped and Twilio/Kavenegar-shaped local server),
and what a switched-off channel does to its messages."""

from __future__ import annotations

import base64
from datetime import timedelta
from decimal import Decimal
from email.utils import parseaddr
from typing import Any

import pytest
from django.test import Client

from tests.messaging.conftest import SITE, T0, enqueue
from tests.messaging.fakes import FakeHttp, Request, SmtpServer, json_reply
from vafa.customers.models import Channel, Customer
from vafa.messaging.conf import (
    StoredChannel,
    StoredSettings,
    apply_stored,
    channel_status,
    load_env,
)
from vafa.messaging.models import (
    ChannelSettings,
    DeliveryLog,
    MessageKind,
    MessagingSettings,
    OutboxMessage,
    Status,
)
from vafa.messaging.outbox import outbox_flush
from vafa.messaging.selectors import messaging_config


@pytest.fixture(autouse=True)
def english_pages(settings: Any) -> None:
    """The admin pages here are read in English (the shop's default language is Persian)."""
    settings.LANGUAGE_CODE = "en"

SECRET = "sk-very-secret-123456"


# -- precedence, without a database ----------------------------------------------------------


def test_a_saved_setting_wins_and_a_blank_one_falls_back_to_the_environment(
    settings: object,
) -> None:
    environ = {
        "VAFA_SITE_URL": "https://env.example/",
        "VAFA_EMAIL_FROM": "env@shop.example",
        "VAFA_SMTP_URL": "smtp://127.0.0.1:2525",
        "VAFA_SMS_PROVIDER": "kavenegar",
        "VAFA_KAVENEGAR_API_KEY": SECRET,
        "VAFA_KAVENEGAR_SENDER": "10004346",
        "VAFA_TELEGRAM_BOT_USERNAME": "env_bot",
        "VAFA_SMS_RATE": "5",
    }
    env = load_env(environ)
    assert (env.site_url, env.email_provider, env.sms_provider) == (
        "https://env.example", "smtp", "kavenegar",
    )
    # Nothing saved: the environment decides.
    assert apply_stored(env, StoredSettings(), environ).kavenegar_sender == "10004346"
    stored = StoredSettings(
        site_url="https://shop.example/",
        channels={
            "email": StoredChannel(from_name="فروشگاه وفا", from_address="hello@shop.example",
                                   reply_to="care@shop.example"),
            "sms": StoredChannel(sender="30005000", rate=2.5),
            "telegram": StoredChannel(bot_username="@vafa_bot", enabled=False),
        },
    )
    config = apply_stored(env, stored, environ)
    assert config.site_url == "https://shop.example"
    assert parseaddr(config.email_from) == ("فروشگاه وفا", "hello@shop.example")
    assert config.reply_to == "care@shop.example"
    assert (config.sms_provider, config.kavenegar_sender) == ("kavenegar", "30005000")
    assert config.telegram_bot_username == "vafa_bot"
    assert config.rates["sms"] == 2.5 and config.rates["telegram"] == 30  # blank: env/default
    assert config.disabled == frozenset({"telegram"})
    # Secrets are never stored: they still come from the environment, and are redacted.
    assert config.kavenegar_api_key == SECRET and SECRET in config.secrets


def test_choosing_an_esp_takes_its_key_from_the_environment_only() -> None:
    environ = {"VAFA_POSTMARK_SERVER_TOKEN": SECRET, "VAFA_POSTMARK_API_URL": "http://127.0.0.1:9/"}
    config = apply_stored(
        load_env(environ), StoredSettings(channels={"email": StoredChannel(provider="postmark")}),
        environ,
    )
    assert config.email_backend == "anymail.backends.postmark.EmailBackend"
    assert config.email_backend_options == {"server_token": SECRET,
                                            "api_url": "http://127.0.0.1:9/"}
    assert SECRET in config.secrets and SECRET not in repr(config)


def test_the_status_names_missing_secrets_and_never_their_values() -> None:
    environ = {"VAFA_SMS_PROVIDER": "twilio", "VAFA_TWILIO_ACCOUNT_SID": "AC123",
               "VAFA_TELEGRAM_BOT_TOKEN": SECRET}
    env = load_env(environ)
    sms = channel_status("sms", env, environ)
    assert sms.provider == "twilio" and sms.present == ("VAFA_TWILIO_ACCOUNT_SID",)
    assert sms.missing == ("VAFA_TWILIO_AUTH_TOKEN", "VAFA_TWILIO_FROM") and not sms.ready
    telegram = channel_status("telegram", env, environ)
    assert telegram.missing == ("VAFA_TELEGRAM_WEBHOOK_SECRET",)
    assert SECRET not in repr(telegram)
    email = channel_status("email", env, environ)
    assert (email.provider, email.missing) == ("smtp", ("VAFA_SMTP_URL",))


# -- the admin ---------------------------------------------------------------------------------


def row(channel: str, **fields: object) -> ChannelSettings:
    """The channel's row (made by the migration; made again if a transactional test flushed
    the database), with `fields` saved on it."""
    return ChannelSettings.objects.update_or_create(channel=channel, defaults=fields)[0]


@pytest.mark.django_db
def test_the_migration_creates_one_blank_row_per_channel() -> None:
    assert sorted(ChannelSettings.objects.values_list("channel", flat=True)) == sorted(
        Channel.values
    )
    assert not ChannelSettings.objects.exclude(provider="").exists()
    assert ChannelSettings.objects.filter(enabled=True).count() == len(Channel.values)


def test_the_admin_lists_channels_with_present_and_missing_secrets_by_name_only(
    admin_client: Client, policy: MessagingSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAFA_SMTP_URL", f"smtps://shop:{SECRET}@mail.example.com")
    monkeypatch.setenv("VAFA_KAVENEGAR_API_KEY", "kavenegar-" + SECRET)
    page = admin_client.get("/admin/messaging/channelsettings/")
    body = page.content.decode()
    assert page.status_code == 200
    assert SECRET not in body
    assert "VAFA_SMTP_URL" in body and "VAFA_KAVENEGAR_API_KEY" in body
    assert "VAFA_TELEGRAM_BOT_TOKEN" in body  # missing, named
    change = admin_client.get(f"/admin/messaging/channelsettings/{row('sms').pk}/change/")
    form = change.content.decode()
    assert 'name="sender"' in form and 'name="from_address"' not in form
    assert 'value="twilio"' in form and 'value="mailgun"' not in form
    assert SECRET not in form


def test_staff_save_sender_identities_and_they_reach_the_mailbox(
    admin_client: Client, smtp: SmtpServer, policy: MessagingSettings
) -> None:
    email = row("email")
    response = admin_client.post(f"/admin/messaging/channelsettings/{email.pk}/change/", {
        "enabled": "on", "provider": "smtp", "from_name": "فروشگاه وفا",
        "from_address": "hello@shop.example", "reply_to": "care@shop.example",
        "rate_per_second": "",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    test_page = f"/admin/messaging/channelsettings/{email.pk}/test/"
    assert admin_client.get(test_page).status_code == 200
    sent = admin_client.post(test_page, {"address": "owner@shop.example"}, follow=True)
    assert "accepted the test message" in sent.content.decode()
    [mail] = smtp.sink.to("owner@shop.example")
    assert parseaddr(str(mail["From"])) == ("فروشگاه وفا", "hello@shop.example")
    assert str(mail["Reply-To"]) == "care@shop.example"
    assert "List-Unsubscribe" not in mail  # a test to staff is not marketing
    assert not OutboxMessage.objects.exists()  # and not a customer's message


def test_a_bad_test_address_is_refused_on_the_form(
    admin_client: Client, smtp: SmtpServer, policy: MessagingSettings
) -> None:
    page = admin_client.post(f"/admin/messaging/channelsettings/{row('email').pk}/test/",
                             {"address": "not-an-address"})
    assert page.status_code == 200 and "errorlist" in page.content.decode()
    assert not smtp.sink.received


def postmark(request: Request) -> tuple[int, dict[str, str], bytes]:
    """Postmark's documented answer to `POST /email`."""
    to = request.json()["To"]
    return json_reply(200, {"To": to, "SubmittedAt": "2025-03-05T14:30:00Z", "ErrorCode": 0,
                            "MessageID": "0a129aee-e1cd-480d-b08d-4f48548ff48d",
                            "Message": "OK"})


def test_a_test_message_goes_through_the_esp_chosen_in_the_admin(
    admin_client: Client, http: FakeHttp, policy: MessagingSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VAFA_POSTMARK_SERVER_TOKEN", SECRET)
    monkeypatch.setenv("VAFA_POSTMARK_API_URL", http.url + "/")
    http.respond = postmark
    row("email", provider="postmark")
    sent = admin_client.post(f"/admin/messaging/channelsettings/{row('email').pk}/test/",
                             {"address": "owner@shop.example"}, follow=True)
    assert "0a129aee-e1cd-480d-b08d-4f48548ff48d" in sent.content.decode()
    [request] = http.requests
    assert request.path == "/email"
    assert request.headers["x-postmark-server-token"] == SECRET
    assert request.json()["From"] == "shop@shop.example"


def test_a_refused_test_shows_the_reason_without_the_key(
    admin_client: Client, http: FakeHttp, policy: MessagingSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VAFA_KAVENEGAR_API_KEY", SECRET)
    monkeypatch.setenv("VAFA_KAVENEGAR_BASE_URL", http.url)
    http.respond = lambda request: json_reply(
        200, {"return": {"status": 418, "message": f"credit too low for {SECRET}"}, "entries": None}
    )
    sent = admin_client.post(f"/admin/messaging/channelsettings/{row('sms').pk}/test/",
                             {"address": "۰۹۱۲۱۲۳۴۵۶۷"}, follow=True)
    body = sent.content.decode()
    assert "was not sent" in body and "Kavenegar 418" in body and SECRET not in body
    [request] = http.requests
    assert request.form()["receptor"] == "09121234567"  # Persian digits read into E.164


def test_twilio_chosen_in_the_admin_sends_from_the_saved_sender_line(
    admin_client: Client, http: FakeHttp, policy: MessagingSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VAFA_SMS_PROVIDER", "kavenegar")  # the admin's choice wins
    monkeypatch.setenv("VAFA_TWILIO_ACCOUNT_SID", "AC123")
    monkeypatch.setenv("VAFA_TWILIO_AUTH_TOKEN", SECRET)
    monkeypatch.setenv("VAFA_TWILIO_BASE_URL", http.url)
    http.respond = lambda request: json_reply(201, {"sid": "SM" + "b" * 32})
    row("sms", provider="twilio", sender="+15005550006")
    admin_client.post(f"/admin/messaging/channelsettings/{row('sms').pk}/test/",
                      {"address": "+14165550123"})
    [request] = http.requests
    assert request.path == "/2010-04-01/Accounts/AC123/Messages.json"
    assert request.form()["From"] == "+15005550006" and request.form()["To"] == "+14165550123"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(
        f"AC123:{SECRET}".encode()).decode()


# -- what a switched-off channel and a saved site URL do ---------------------------------------


def test_a_switched_off_channel_keeps_its_messages_waiting_until_it_is_on_again(
    smtp: SmtpServer, olivia: Customer, templates: object, caplog: pytest.LogCaptureFixture
) -> None:
    row("email", enabled=False)
    message = enqueue(olivia, kind=MessageKind.TRANSACTIONAL, source="flow:shipping")
    sms = enqueue(olivia, channel=Channel.SMS, kind=MessageKind.TRANSACTIONAL,
                  source="flow:shipping", step="sms")
    with caplog.at_level("WARNING", logger="vafa.messaging"):
        for minutes in range(0, 120, 10):  # many flushes while it is off
            assert outbox_flush(now=T0 + timedelta(minutes=minutes)).sent == 0
    message.refresh_from_db()
    assert (message.status, message.attempts) == (Status.QUEUED, 0)
    assert not DeliveryLog.objects.filter(message=message).exists() and not smtp.sink.received
    assert "email is switched off: 1 due message(s) wait for it" in caplog.text
    # Other channels are not held up (SMS has no provider here: it was tried, and retried).
    sms.refresh_from_db()
    assert sms.attempts > 1 and "Kavenegar" in sms.status_reason
    row("email", enabled=True)
    assert outbox_flush(now=T0 + timedelta(hours=2)).sent == 1
    message.refresh_from_db()
    assert message.status == Status.SENT and len(smtp.sink.to("olivia@example.ca")) == 1


def test_the_saved_site_url_is_used_in_message_links(
    olivia: Customer, templates: object
) -> None:
    MessagingSettings.objects.filter(pk=1).update(site_url="https://loyal.shop.example/")
    message = enqueue(olivia)
    assert message.data["unsubscribe_url"].startswith("https://loyal.shop.example/m/")
    assert messaging_config().site_url == "https://loyal.shop.example"
    MessagingSettings.objects.filter(pk=1).update(site_url="")
    assert messaging_config().site_url == SITE


def test_a_negative_rate_is_refused_by_the_database(policy: MessagingSettings) -> None:
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        row("sms", rate_per_second=Decimal("-1"))
    assert row("sms").rate_per_second is None
