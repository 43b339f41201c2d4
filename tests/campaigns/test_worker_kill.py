"""The issue's done-when test: kill the worker (SIGKILL) in the middle of a 10,000-recipient
campaign, start it again, and count at a real SMTP server that every message arrived exactly
once. The worker is the real CLI, `vafa outbox flush`, in its own process on the test database
(the SQLite test database is copied to a file for it; PostgreSQL is shared as it is).

The kill comes while the worker waits for the SMTP server's answer to a message: the one case
the outbox cannot make exactly-once is a crash in the instant after the server accepted a
message and before the row was marked sent (see `vafa.messaging.outbox`); here the server has
not accepted the message in flight, as in any crash before the final `250`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.db import connection
from django.utils import timezone

from tests.campaigns.conftest import make_campaign
from tests.messaging.fakes import SmtpSink
from tests.support.services import free_port
from vafa.customers.models import Channel, Consent, Customer
from vafa.messaging.campaigns.services import campaign_enqueue, campaign_schedule, campaign_start
from vafa.messaging.models import MessageTemplate, MessagingSettings

RECIPIENTS = 10_000
KILL_AFTER = 3_000
VAFA = str(Path(sys.executable).parent / "vafa")


class StallingSink(SmtpSink):
    """Accepts `stall_after` messages, then holds the next one unanswered (as a slow server
    would) until released, and refuses it then: it was never accepted."""

    def __init__(self, stall_after: int) -> None:
        super().__init__()
        self.stall_after: int | None = stall_after
        self.stalled = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.stall_after is not None and len(self.received) >= self.stall_after:
            self.stalled.set()
            while self.stall_after is not None:
                await asyncio.sleep(0.05)
            return "451 4.3.0 try again later"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def stalling_smtp() -> Iterator[tuple[StallingSink, int]]:
    sink, port = StallingSink(KILL_AFTER), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        sink.stall_after = None
        controller.stop()


def database_url(tmp_path: Path) -> str:
    """A URL another process can open: PostgreSQL's test database, or a file copy of SQLite's
    in-memory one."""
    if connection.vendor == "postgresql":
        db = connection.settings_dict
        return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    path = tmp_path / "campaign.sqlite3"
    connection.ensure_connection()
    target = sqlite3.connect(path)
    connection.connection.backup(target)
    target.close()
    return f"sqlite:///{path}"


def vafa(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    done = subprocess.run(
        [VAFA, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


AFTER_THE_LEASE = """
from datetime import timedelta
from django.utils import timezone
from vafa.messaging.models import OutboxMessage
# Ten minutes later: the dead worker's claims have expired.
print(OutboxMessage.objects.filter(status="sending").update(
    locked_until=timezone.now() - timedelta(seconds=1)))
"""

CHECK = """
import json
from django.utils import timezone
from vafa.messaging.campaigns.models import Campaign
from vafa.messaging.campaigns.selectors import campaign_status_counts
from vafa.messaging.campaigns.services import campaigns_tick
campaigns_tick(now=timezone.now())
campaign = Campaign.objects.get()
print(json.dumps({"status": campaign.status, "counts": campaign_status_counts(campaign)}))
"""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_midway_through_a_10000_recipient_campaign_delivers_each_once(
    tmp_path: Path, stalling_smtp: tuple[StallingSink, int]
) -> None:
    sink, port = stalling_smtp
    # Real time (the CLI flushes at the clock's now): no quiet hours, cap or control group.
    MessagingSettings.objects.create(
        pk=1, control_percent=0, cap_messages=0, quiet_start="00:00", quiet_end="00:00",
        track_links=False,
    )
    MessageTemplate.objects.create(
        key="news", channel=Channel.EMAIL, language="en", subject="Hello {{ customer.first_name }}",
        body_html="", body_text="Hi {{ customer.first_name }}",
    )
    now = timezone.now()
    Customer.objects.bulk_create(
        [Customer(external_id=f"k{i}", first_name=f"K{i}", email=f"k{i}@example.com",
                  language="en", timezone="UTC") for i in range(RECIPIENTS)],
        batch_size=2000,
    )
    Consent.objects.bulk_create(
        [Consent(customer_id=pk, channel=Channel.EMAIL, granted=True, changed_at=now,
                 source="test") for pk in Customer.objects.values_list("pk", flat=True)],
        batch_size=2000,
    )
    campaign = make_campaign()
    campaign = campaign_start(campaign=campaign_schedule(campaign=campaign, now=now), now=now)
    assert campaign_enqueue(campaign=campaign, now=now).created == RECIPIENTS
    env = {
        **os.environ, "DATABASE_URL": database_url(tmp_path),
        "VAFA_SMTP_URL": f"smtp://127.0.0.1:{port}", "VAFA_EMAIL_FROM": "shop@shop.example",
    }
    worker = subprocess.Popen(
        [VAFA, "outbox", "flush"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert sink.stalled.wait(timeout=120), "the worker never reached the kill point"
    finally:
        worker.kill()  # SIGKILL: no cleanup, its claimed rows stay locked
        worker.wait(timeout=30)
    assert len(sink.received) == KILL_AFTER
    sink.stall_after = None
    assert int(vafa(env, "manage", "shell", "-c", AFTER_THE_LEASE).split()[-1]) > 0  # it held claimed rows
    # Two workers restart together: they share the rest without sending anything twice.
    restarted = [
        subprocess.Popen([VAFA, "outbox", "flush"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for proc in restarted:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
    delivered = Counter(str(m["To"]) for m in sink.received)
    assert len(delivered) == RECIPIENTS and set(delivered.values()) == {1}
    result = json.loads(vafa(env, "manage", "shell", "-c", CHECK).strip().splitlines()[-1])
    assert result == {"status": "finished", "counts": {"sent": RECIPIENTS}}
