"""The PostgreSQL pass really runs on PostgreSQL (so a green run cannot hide a skipped engine)."""

import os

import pytest
from django.db import connection


@pytest.mark.django_db
def test_the_database_engine_is_the_one_this_pass_asked_for() -> None:
    expected = "postgresql" if os.environ.get("VAFA_TEST_DB") == "postgres" else "sqlite"
    assert connection.vendor == expected
