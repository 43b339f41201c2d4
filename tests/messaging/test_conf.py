"""Provider settings read from the environment, and the worker's periodic task."""

from __future__ import annotations

import pytest

from tests.messaging.conftest import enqueue
from tests.messaging.fakes import SmtpServer
from vafa.customers.models import Customer
from vafa.messaging.conf import ConfigError, load_env, parse_smtp_url, redact
from vafa.messaging.models import MessageKind, OutboxMessage, Status


def test_smtp_urls_say_host_port_credentials_and_tls() -> None:
    plain = parse_smtp_url("smtp://127.0.0.1:2525")
    assert (plain.host, plain.port, plain.use_tls, plain.use_ssl) == ("127.0.0.1", 2525, False, False)
    ssl = parse_smtp_url("smtps://shop%40example.com:p%3Ass@mail.example.com")
    assert (ssl.port, ssl.use_ssl, ssl.username, ssl.password) == (465, True, "shop@example.com", "p:ss")
    starttls = parse_smtp_url("smtp+starttls://u:p@mail.example.com?timeout=5")
    assert (starttls.port, starttls.use_tls, starttls.timeout) == (587, True, 5.0)
    assert "p:ss" not in repr(ssl)


@pytest.mark.parametrize("url", ["http://mail.example.com", "smtp://", "smtp://host:port"])
def test_a_malformed_smtp_url_is_refused_with_a_reason(url: str) -> None:
    with pytest.raises(ConfigError, match="VAFA_SMTP_URL"):
        parse_smtp_url(url)


def test_secrets_are_listed_for_redaction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAFA_SMTP_URL", "smtps://user:smtp-password@mail.example.com")
    monkeypatch.setenv("VAFA_KAVENEGAR_API_KEY", "kavenegar-key-123")
    env = load_env()
    assert {"smtp-password", "kavenegar-key-123"} <= set(env.secrets)
    assert redact("GET /v1/kavenegar-key-123/sms", env.secrets) == "GET /v1/***/sms"
    assert "kavenegar-key-123" not in repr(env)


def test_the_periodic_task_flushes_the_outbox(
    smtp: SmtpServer, olivia: Customer, templates: object
) -> None:
    from vafa.messaging.tasks import flush_outbox

    message = enqueue(olivia, kind=MessageKind.TRANSACTIONAL, source="flow:shipping")
    result = flush_outbox.call_local()
    assert result.sent == 1
    assert OutboxMessage.objects.get(pk=message.pk).status == Status.SENT
