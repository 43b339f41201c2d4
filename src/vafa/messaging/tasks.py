"""The worker's side of messaging: a thin periodic wrapper around `outbox_flush`."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

from vafa.messaging.outbox import FlushResult, outbox_flush


@db_periodic_task(crontab(minute="*"))
@lock_task("vafa-outbox-flush")
def flush_outbox() -> FlushResult:
    """Every minute: send what is due. The lock keeps one flush per queue at a time (parallel
    flushes would also be safe, the outbox claims rows; the lock just avoids idle contention)."""
    return outbox_flush()
