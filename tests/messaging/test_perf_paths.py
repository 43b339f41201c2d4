"""The fast paths of delivery and rendering behave like the slow ones they replace: the email
written without the email package reads back like Django's, the SMTP exchange (with and
without RFC 2920 pipelining) accepts and refuses like `sendmail`, links reversed once give
`reverse()`'s URL, and outcomes saved with prepared statements keep the claim's guard."""

from __future__ import annotations

import email
import email.policy
import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext

from tests.messaging.conftest import T0, enqueue
from tests.messaging.fakes import SmtpServer, SmtpSink
from tests.support.services import free_port
from vafa.customers.models import Customer
from vafa.messaging import links
from vafa.messaging.channels.base import PermanentFailure, Recipient
from vafa.messaging.channels.email import (
    EmailChannel,
    build_email,
    encode_subject,
    raw_email,
    smtp_send,
)
from vafa.messaging.compose import footer_labels
from vafa.messaging.conf import MessagingEnv, SmtpConfig
from vafa.messaging.models import DeliveryLog, MessageKind, OutboxMessage, Status
from vafa.messaging.outbox import _Flush, outbox_claim, outbox_flush
from vafa.messaging.selectors import messaging_config, messaging_settings


class PipeliningSink(SmtpSink):
    """The test sink, advertising PIPELINING as Postfix does (aiosmtpd reads pipelined
    commands in order; it only does not announce it)."""

    def __init__(self) -> None:
        super().__init__()
        self.pipelined: list[bool] = []

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        # RCPT and DATA already waiting in the buffer mean they came in the same write.
        self.pipelined.append(b"RCPT" in bytes(server._reader._buffer))
        envelope.mail_from = address
        return "250 OK"


@pytest.fixture
def pipelining() -> Iterator[tuple[PipeliningSink, int]]:
    sink, port = PipeliningSink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


def env_for(port: int, **fields: Any) -> MessagingEnv:
    values: dict[str, Any] = {"site_url": "https://shop.example", "email_from": "shop@shop.example"}
    return MessagingEnv(smtp=SmtpConfig(host="127.0.0.1", port=port), **{**values, **fields})


def outbox_message(**fields: Any) -> OutboxMessage:
    values: dict[str, Any] = {
        "pk": 41, "customer_id": 7, "channel": "email", "kind": MessageKind.MARKETING,
        "language": "fa", "dedupe_key": "campaign:1|7||", "subject": "سلام زهرا، حراج بهاری",
        "body_text": "سلام زهرا\n.\nهمین حالا", "body_html": "<p dir=\"rtl\">سلام زهرا</p>",
        "data": {"unsubscribe_url": "https://shop.example/m/unsubscribe/abc/"},
    }
    return OutboxMessage(**{**values, **fields})


def parsed(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def django_copy(message: OutboxMessage, recipient: Recipient, env: MessagingEnv) -> EmailMessage:
    return parsed(build_email(message, recipient, env).message().as_bytes())


HEADERS = (
    "Subject", "From", "To", "Reply-To", "Message-ID", "Content-Language", "List-Unsubscribe",
    "List-Unsubscribe-Post", "MIME-Version",
)


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"subject": "Hello Olivia, spring sale", "language": "en", "kind": MessageKind.TRANSACTIONAL},
        {"subject": "تخفيضات " * 30, "language": "ar"},
        {"subject": "A long plain subject " * 8, "body_html": ""},
        {"body_text": "x" * 3000, "body_html": "<p>" + "ی" * 2000 + "</p>"},
    ],
    ids=["persian", "ascii-service", "long-arabic-subject", "long-ascii-no-html", "long-lines"],
)
def test_the_raw_email_reads_back_like_djangos(fields: dict[str, Any]) -> None:
    env = env_for(25, email_from="فروشگاه <shop@shop.example>", reply_to="help@shop.example")
    message = outbox_message(**fields)
    recipient = Recipient(customer=Customer(pk=7), address="zahra@example.ir")
    sender, recipients, data = raw_email(message, recipient, env)
    assert (sender, recipients) == ("shop@shop.example", ["zahra@example.ir"])
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    assert b"\n" not in data.replace(b"\r\n", b"")
    ours, theirs = parsed(data), django_copy(message, recipient, env)
    # The subject exactly as written (the email package's folding of a long one may move a
    # space; ours keeps it where it was), every other header as Django writes it.
    assert ours["Subject"] == message.subject
    for name in HEADERS[1:]:
        assert ours[name] == theirs[name], name
    assert ours.get_content_type() == theirs.get_content_type()
    for kind in ("plain", "html"):
        mine, django = ours.get_body((kind,)), theirs.get_body((kind,))
        assert (mine is None) == (django is None)
        if mine is not None and django is not None:
            # Line ends as the parser read them from the wire (CRLF) or the generator (LF).
            assert mine.get_content().replace("\r\n", "\n") == django.get_content().replace(
                "\r\n", "\n"
            )
            assert mine.get_content_charset() == "utf-8"


def test_a_subject_is_never_cut_inside_a_character() -> None:
    subject = "🌷" * 40 + "سلام"
    encoded = encode_subject(subject)
    assert encoded.isascii() and all(len(line) <= 76 for line in encoded.split("\r\n "))
    assert parsed(f"Subject: {encoded}\r\n\r\n".encode())["Subject"] == subject


def test_it_refuses_a_newline_in_a_header_as_django_does() -> None:
    from django.core.mail import BadHeaderError

    with pytest.raises(BadHeaderError):
        encode_subject("hello\r\nBcc: victim@example.com")


def test_a_pipelined_exchange_delivers_in_one_round_trip_and_reports_refusals(
    pipelining: tuple[PipeliningSink, int],
) -> None:
    sink, port = pipelining
    sink.refuse = {"gone@example.com"}
    with smtplib.SMTP("127.0.0.1", port) as client:
        smtp_send(client, "shop@shop.example", ["a@example.com"], b"Subject: one\r\n\r\n.hi\r\n")
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp_send(client, "shop@shop.example", ["gone@example.com"], b"Subject: x\r\n\r\nx")
        assert refused.value.recipients["gone@example.com"][0] == 550
        smtp_send(client, "shop@shop.example", ["b@example.com"], b"Subject: two\r\n\r\nbye")
    assert sink.pipelined == [True, True, True]
    assert [str(m["Subject"]) for m in sink.received] == ["one", "two"]
    assert sink.received[0].get_content().rstrip() == ".hi"  # the dot stuffed, then unstuffed


def test_without_pipelining_it_speaks_one_command_at_a_time_with_sendmails_errors(
    smtp: SmtpServer,
) -> None:
    smtp.sink.refuse = {"gone@example.com"}
    with smtplib.SMTP("127.0.0.1", smtp.port) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp_send(client, "shop@shop.example", ["gone@example.com"], b"Subject: x\r\n\r\nx")
        smtp.sink.fail_data_with = "451 4.3.0 try again later"
        with pytest.raises(smtplib.SMTPDataError) as failed:
            smtp_send(client, "shop@shop.example", ["a@example.com"], b"Subject: y\r\n\r\ny")
        assert failed.value.smtp_code == 451
        smtp.sink.fail_data_with = None
        smtp_send(client, "shop@shop.example", ["a@example.com"], b"Subject: z\r\n\r\nz")
    assert [str(m["Subject"]) for m in smtp.sink.received] == ["z"]


def test_the_channel_bounces_a_refused_address_and_keeps_the_connection_for_the_next(
    pipelining: tuple[PipeliningSink, int],
) -> None:
    sink, port = pipelining
    sink.refuse = {"gone@example.com"}
    channel = EmailChannel(env_for(port))
    try:
        with pytest.raises(PermanentFailure) as bounced:
            channel.send(outbox_message(), Recipient(Customer(pk=7), "gone@example.com"))
        assert bounced.value.bounced
        delivery = channel.send(outbox_message(pk=42), Recipient(Customer(pk=7), "z@example.ir"))
    finally:
        channel.close()
    [received] = sink.received
    assert delivery.provider_message_id == received["Message-ID"]
    assert received["Subject"] == "سلام زهرا، حراج بهاری"


@pytest.mark.django_db
def test_links_reversed_once_are_reverses_urls_under_any_urlconf(settings: Any) -> None:
    for name in ("messaging:unsubscribe", "messaging:preferences", "messaging:click",
                 "messaging:open"):
        assert links.token_path(name, "AbC-_9") == reverse(name, args=["AbC-_9"])
    settings.FORCE_SCRIPT_NAME = "/shop/"
    from django.urls import set_script_prefix

    set_script_prefix("/shop/")
    try:
        assert links.token_path("messaging:open", "t") == reverse("messaging:open", args=["t"])
        assert links.token_path("messaging:open", "t").startswith("/shop/")
    finally:
        set_script_prefix("/")


def test_footer_labels_are_the_translations_of_each_language() -> None:
    for language in ("fa", "ar", "en"):
        with translation.override(language):
            expected = (gettext("Unsubscribe"), gettext("Email preferences"))
        assert footer_labels(language) == expected


@pytest.mark.django_db
@pytest.mark.usefixtures("templates")
def test_a_sent_outcome_is_saved_with_its_log_and_a_lost_claim_saves_nothing(
    smtp: SmtpServer, zahra: Customer, olivia: Customer
) -> None:
    mine, lost = enqueue(zahra), enqueue(olivia)
    result = outbox_flush(now=T0, limit=1)
    assert result.sent == 1
    sent = OutboxMessage.objects.get(status=Status.SENT)
    assert sent.sent_at is not None and sent.sent_at >= T0
    assert sent.attempts == 1 and sent.claim_token == "" and sent.locked_until is None
    assert sent.provider_message_id == smtp.sink.received[0]["Message-ID"]
    [log] = DeliveryLog.objects.filter(message=sent, event="sent")
    assert log.provider_message_id == sent.provider_message_id and log.at >= sent.sent_at
    # A flush whose claim was taken over by another worker must not overwrite its outcome.
    flush = _Flush(now=T0, env=messaging_config(), policy=messaging_settings(), channels={},
                   sleep=lambda _: None)
    other = next(m for m in (mine, lost) if m.pk != sent.pk)
    assert outbox_claim(now=T0, size=1, token="someone-else") == [other.pk]
    assert not flush._finish(other, event="failed", reason="late", status=Status.FAILED)
    other.refresh_from_db()
    assert other.status == Status.SENDING and other.claim_token == "someone-else"
    assert not DeliveryLog.objects.filter(message=other, event="failed").exists()
    assert flush.result.lost_claims == 1
