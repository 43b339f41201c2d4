"""The platform itself: settings from the environment, the database engines, the task queue."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection

from vafa.customers.models import Customer, Order, OrderStatus

SRC = Path(__file__).resolve().parents[2] / "src"


def _run_settings(env: dict[str, str], expr: str) -> str:
    """Evaluate an expression on freshly imported settings in a clean interpreter."""
    code = f"import vafa.settings as s; print({expr})"
    full_env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "SECRET_KEY",
                                                                 "VAFA_QUEUE_URL", "DEBUG"}}
    full_env.update(env)
    result = subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True,
                            text=True, check=True)
    return result.stdout.strip()


def test_it_generates_a_secret_key_once_and_keeps_it(tmp_path: Path) -> None:
    first = _run_settings({"VAFA_HOME": str(tmp_path)}, "s.SECRET_KEY")
    second = _run_settings({"VAFA_HOME": str(tmp_path)}, "s.SECRET_KEY")
    assert len(first) >= 50
    assert first == second
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_it_defaults_to_sqlite_in_var_and_debug_off(tmp_path: Path) -> None:
    out = _run_settings({"VAFA_HOME": str(tmp_path)},
                        "s.DATABASES['default']['NAME'], s.DEBUG, s.HUEY['huey_class']")
    assert str(tmp_path / "vafa.sqlite3") in out
    assert "False" in out
    assert "huey.SqliteHuey" in out


def test_it_reads_database_and_queue_urls_from_the_environment(tmp_path: Path) -> None:
    out = _run_settings(
        {"VAFA_HOME": str(tmp_path), "DATABASE_URL": "postgres://u:p@db.example:5433/shop",
         "VAFA_QUEUE_URL": "redis://127.0.0.1:6379/2", "DEBUG": "1"},
        "s.DATABASES['default']['ENGINE'], s.DATABASES['default']['PORT'], "
        "s.HUEY['huey_class'], s.DEBUG",
    )
    assert out == "vafa.core.postgresql 5433 huey.RedisHuey True"


def test_it_refuses_an_unknown_queue_scheme(tmp_path: Path) -> None:
    with pytest.raises(subprocess.CalledProcessError) as info:
        _run_settings({"VAFA_HOME": str(tmp_path), "VAFA_QUEUE_URL": "amqp://x"}, "1")
    assert "VAFA_QUEUE_URL" in info.value.stderr


@pytest.mark.django_db
def test_it_stores_money_as_exact_decimals_and_times_in_utc() -> None:
    from datetime import UTC, datetime

    customer = Customer.objects.create(external_id="C1", first_name="زهرا")
    Order.objects.create(
        external_id="O1", customer=customer, placed_at=datetime(2025, 3, 20, 10, 30, tzinfo=UTC),
        status=OrderStatus.PAID, total=Decimal("1234567890.125"), currency="IRR",
    )
    order = Order.objects.get(external_id="O1")
    assert order.total == Decimal("1234567890.125")
    assert order.placed_at.tzinfo is not None
    assert order.placed_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


@pytest.mark.django_db
def test_the_connection_is_configured_for_concurrent_writers() -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA journal_mode")
            # The test database is in memory, where SQLite reports "memory"; a file reports WAL.
            assert cursor.fetchone()[0] in {"wal", "memory"}
            assert connection.settings_dict["OPTIONS"]["timeout"] >= 5
            assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
        else:
            cursor.execute("SHOW transaction_isolation")
            assert cursor.fetchone()[0] == "read committed"
            cursor.execute("SHOW server_encoding")
            assert cursor.fetchone()[0] == "UTF8"


@pytest.mark.django_db
def test_the_database_refuses_a_negative_total() -> None:
    from datetime import UTC, datetime

    from django.db import IntegrityError, transaction

    customer = Customer.objects.create(external_id="C2")
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.create(
            external_id="O2", customer=customer, placed_at=datetime.now(UTC),
            status=OrderStatus.PAID, total=Decimal("-1"), currency="IRT",
        )


def test_sqlite_file_database_is_in_wal_mode(tmp_path: Path) -> None:
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='vafa.settings'; django.setup();"
        "from django.db import connection; c=connection.cursor(); c.execute('PRAGMA journal_mode');"
        "print(c.fetchone()[0])"
    )
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["VAFA_HOME"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "wal"


def test_huey_runs_a_task_through_a_real_redis(redis_url: str) -> None:
    from huey import RedisHuey

    huey = RedisHuey("vafa-test", url=redis_url)

    @huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    result = add(2, 3)
    task = huey.dequeue()
    assert task is not None
    huey.execute(task)
    assert result.get(blocking=True, timeout=5) == 5
