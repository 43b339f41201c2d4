"""An address with non-ASCII characters before the @ goes through SMTPUTF8 (RFC 6531) when the
server offers it, and fails for good, with a reason that says why, when it does not."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.messaging.conftest import T0, enqueue, make_customer
from tests.messaging.fakes import SmtpServer, SmtpSink
from tests.support.services import free_port
from vafa.messaging.models import MessagingSettings, OutboxMessage, Status
from vafa.messaging.outbox import outbox_flush

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("templates")]


class EnvelopeSink(SmtpSink):
    """Also keeps each transaction's envelope: the `MAIL FROM` options and the recipients."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[tuple[list[str], list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.envelopes.append((list(envelope.mail_options), list(envelope.rcpt_tos)))
        return await super().handle_DATA(server, session, envelope)


@contextlib.contextmanager
def smtp_server(*, smtputf8: bool) -> Iterator[SmtpServer]:
    """aiosmtpd on loopback, offering SMTPUTF8 or not."""
    sink = EnvelopeSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, enable_SMTPUTF8=smtputf8)
    controller.start()
    try:
        yield SmtpServer(sink=sink, port=port)
    finally:
        controller.stop()


def test_a_non_ascii_mailbox_is_delivered_through_smtputf8_when_the_server_offers_it(
    policy: MessagingSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    zahra = make_customer("zahra", first_name="زهرا", email="زهرا@Example.ir", language="fa")
    olivia = make_customer("olivia", first_name="Olivia", email="olivia@example.ca")
    enqueue(zahra)
    enqueue(olivia)
    with smtp_server(smtputf8=True) as server:
        monkeypatch.setenv("VAFA_SMTP_URL", server.url)
        outbox_flush(now=T0)
    sink = server.sink
    assert isinstance(sink, EnvelopeSink)
    by_recipient = {rcpt[0]: options for options, rcpt in sink.envelopes}
    # the mailbox as written; only the UTF-8 transaction asks for SMTPUTF8
    assert set(by_recipient) == {"زهرا@example.ir", "olivia@example.ca"}
    assert "SMTPUTF8" in by_recipient["زهرا@example.ir"]
    assert "SMTPUTF8" not in by_recipient["olivia@example.ca"]
    to_zahra = sink.to("زهرا@example.ir")
    assert len(to_zahra) == 1 and str(to_zahra[0]["To"]) == "زهرا@example.ir"
    assert "زهرا" in str(to_zahra[0]["Subject"])
    assert OutboxMessage.objects.get(customer=zahra).status == Status.SENT


def test_a_non_ascii_mailbox_fails_for_good_with_its_reason_when_the_server_lacks_smtputf8(
    policy: MessagingSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    zahra = make_customer("zahra", first_name="زهرا", email="زهرا@example.ir", language="fa")
    olivia = make_customer("olivia", first_name="Olivia", email="olivia@example.ca")
    enqueue(zahra)
    enqueue(olivia)
    with smtp_server(smtputf8=False) as smtp:
        monkeypatch.setenv("VAFA_SMTP_URL", smtp.url)
        result = outbox_flush(now=T0)
    failed = OutboxMessage.objects.get(customer=zahra)
    assert failed.status == Status.FAILED and failed.attempts == 1  # permanent: no retry
    assert "SMTPUTF8" in failed.status_reason and "non-ASCII" in failed.status_reason
    assert result.failed == 1
    # the connection stays usable: the next message in the same flush goes
    assert [str(m["To"]) for m in smtp.sink.received] == ["olivia@example.ca"]
    assert OutboxMessage.objects.get(customer=olivia).status == Status.SENT
