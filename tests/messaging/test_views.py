"""The unsubscribe and preference pages and the inbound-SMS webhook, through HTTP."""

from __future__ import annotations

import base64
import struct
from datetime import timedelta

import pytest
from django.test import Client
from django.test.client import MULTIPART_CONTENT, encode_multipart
from django.utils import timezone

from tests.messaging.conftest import T0
from vafa.customers.models import Channel, Consent, Customer
from vafa.messaging import tokens
from vafa.messaging.models import ConsentChange, Preference, Suppression
from vafa.messaging.services import sms_keyword


def unsubscribe_path(customer: Customer, channel: str = Channel.EMAIL) -> str:
    return f"/m/unsubscribe/{tokens.recipient_token(customer_id=customer.pk, channel=channel)}/"


def email_consent(customer: Customer) -> bool:
    return Consent.objects.get(customer=customer, channel=Channel.EMAIL).granted


def test_a_get_shows_the_preference_page_and_never_unsubscribes(zahra: Customer) -> None:
    response = Client().get(unsubscribe_path(zahra))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'lang="fa"' in body and 'dir="rtl"' in body
    assert 'name="List-Unsubscribe" value="One-Click"' in body
    assert email_consent(zahra) and not Suppression.objects.exists()


def test_a_one_click_post_unsubscribes_without_cookies_or_a_redirect(zahra: Customer) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post(unsubscribe_path(zahra), "List-Unsubscribe=One-Click",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert not response.cookies and "Location" not in response
    assert not email_consent(zahra)
    change = ConsentChange.objects.filter(customer=zahra, channel=Channel.EMAIL).first()
    assert change is not None and change.source == "one-click"
    assert Suppression.objects.filter(customer=zahra, reason="unsubscribed").count() == 1
    # SMS consent is untouched: the link unsubscribes from the channel it came by.
    assert Consent.objects.get(customer=zahra, channel=Channel.SMS).granted
    # A second POST (mailbox providers retry) changes nothing.
    assert client.post(unsubscribe_path(zahra), {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert Suppression.objects.filter(customer=zahra, reason="unsubscribed").count() == 1


def test_a_multipart_one_click_post_works_too(olivia: Customer) -> None:
    body = encode_multipart("BoUnDaRy", {"List-Unsubscribe": "One-Click"})
    response = Client().post(unsubscribe_path(olivia), body,
                             content_type="multipart/form-data; boundary=BoUnDaRy")
    assert response.status_code == 200 and not email_consent(olivia)
    assert MULTIPART_CONTENT.startswith("multipart/form-data")


def test_a_forged_or_altered_token_is_refused(zahra: Customer) -> None:
    token = tokens.recipient_token(customer_id=zahra.pk, channel=Channel.EMAIL)
    altered = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    for path in (f"/m/unsubscribe/{altered}/", "/m/unsubscribe/not-a-token/",
                 f"/m/unsubscribe/{tokens.click_token(dedupe_key='k', url='https://x')}/"):
        response = Client().post(path, {"List-Unsubscribe": "One-Click"})
        assert response.status_code == 404
    assert email_consent(zahra)


def test_tokens_are_opaque_and_unlinkable(zahra: Customer) -> None:
    first = tokens.recipient_token(customer_id=zahra.pk, channel=Channel.EMAIL)
    second = tokens.recipient_token(customer_id=zahra.pk, channel=Channel.EMAIL)
    assert first != second
    assert tokens.read_recipient_token(first) == tokens.read_recipient_token(second)
    raw = base64.urlsafe_b64decode(first + "=" * (-len(first) % 4))
    assert struct.pack(">Q", zahra.pk) not in raw  # the id is encrypted, not just encoded


def test_the_preference_centre_saves_channels_topics_frequency_and_a_pause(zahra: Customer) -> None:
    path = f"/m/preferences/{tokens.recipient_token(customer_id=zahra.pk, channel=Channel.EMAIL)}/"
    page = Client().get(path)
    assert page.status_code == 200 and 'name="channel_sms"' in page.content.decode()
    before = timezone.now()
    response = Client().post(path, {
        "channel_sms": "on",  # email left unticked
        "topic_news": "on", "topic_loyalty": "on",
        "frequency": "weekly", "pause": "on",
    })
    assert response.status_code == 200
    preference = Preference.objects.get(customer=zahra)
    assert preference.topics_off == ["feedback", "offers"]
    assert preference.frequency == "weekly"
    assert preference.paused_until is not None
    assert preference.paused_until >= before + timedelta(days=30)
    assert not email_consent(zahra)
    assert Consent.objects.get(customer=zahra, channel=Channel.SMS).granted
    assert "۱۴۰" in response.content.decode()  # paused until a Jalali date, in Persian digits


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("STOP", "opt_out"), (" stop ", "opt_out"), ("Unsubscribe", "opt_out"),
        ("لغو", "opt_out"), ("لغو۱۱", "opt_out"), ("لغو 11", "opt_out"), ("لغو١١", "opt_out"),
        ("توقف", "opt_out"), ("انصراف", "opt_out"),
        ("إلغاء", "opt_out"), ("الغاء", "opt_out"), ("إيقاف", "opt_out"),
        ("START", "opt_in"),
        ("stop sending me the wrong size", ""), ("سلام", ""), ("", ""),
    ],
)
def test_opt_out_keywords_are_recognised_in_three_languages(text: str, action: str) -> None:
    assert sms_keyword(text) == action


def test_an_inbound_kavenegar_opt_out_unsubscribes_the_number(
    zahra: Customer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAFA_SMS_INBOUND_SECRET", "inbound-secret")
    response = Client().post("/m/sms/inbound-secret/", {
        "messageid": "1", "from": "09121234567", "to": "10004346", "message": "لغو۱۱",
    })
    assert response.status_code == 200 and response.content == b"OK"
    assert not Consent.objects.get(customer=zahra, channel=Channel.SMS).granted
    assert Suppression.objects.filter(channel=Channel.SMS, address="+989121234567").exists()
    assert email_consent(zahra)


def test_an_inbound_twilio_stop_answers_twiml_and_start_opts_back_in(
    olivia: Customer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAFA_SMS_INBOUND_SECRET", "inbound-secret")
    client = Client()
    response = client.post("/m/sms/inbound-secret/", {"From": "+14165550123", "Body": "STOP"})
    assert response["Content-Type"] == "text/xml" and b"<Response>" in response.content
    assert not Consent.objects.get(customer=olivia, channel=Channel.SMS).granted
    client.post("/m/sms/inbound-secret/", {"From": "+14165550123", "Body": "START"})
    assert Consent.objects.get(customer=olivia, channel=Channel.SMS).granted
    assert not Suppression.objects.filter(lifted_at__isnull=True).exists()


def test_the_inbound_webhook_refuses_a_wrong_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAFA_SMS_INBOUND_SECRET", "inbound-secret")
    assert Client().post("/m/sms/guess/", {"from": "0912", "message": "STOP"}).status_code == 404


def test_the_open_pixel_is_an_image_even_for_a_bad_token(db: None) -> None:
    response = Client().get("/m/o/nonsense/")
    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    assert T0  # time is not needed: the pixel records the moment it is loaded
