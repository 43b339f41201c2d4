"""`vafa loyalty …` through its typer app (the lead mounts it on the main CLI)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tests.loyalty.conftest import T0
from vafa.commands.loyalty import app
from vafa.customers.models import Customer
from vafa.loyalty.models import Lot, Member
from vafa.loyalty.selectors import ledger_reconcile
from vafa.loyalty.services import points_adjust

runner = CliRunner()


@pytest.fixture
def members(zahra: Customer, omid: Customer, program: object) -> None:
    for customer in (zahra, omid):
        points_adjust(
            customer=customer,
            points=40,
            reason="welcome",
            actor="system",
            idempotency_key="w",
            now=T0,
        )


def test_reconcile_says_ok_when_every_cache_equals_the_ledger(members: None) -> None:
    result = runner.invoke(app, ["reconcile"])
    assert result.exit_code == 0, result.output
    assert "OK: 2 member(s)" in result.output


def test_reconcile_exits_1_and_lists_a_balance_that_drifted(members: None) -> None:
    Member.objects.filter(customer__external_id="omid").update(balance=55)  # a bad raw write
    result = runner.invoke(app, ["reconcile"])
    assert result.exit_code == 1
    assert "omid" in result.output and "balance" in result.output
    assert "zahra" not in result.output


def test_reconcile_shows_the_ledgers_value_beside_what_the_lots_hold(members: None) -> None:
    Lot.objects.filter(member__customer__external_id="zahra").update(remaining=30)
    problems = {p.check: p for p in ledger_reconcile()}
    assert (problems["lots"].expected, problems["lots"].actual) == (40, 30)


def test_expire_and_tiers_run_and_report(members: None) -> None:
    expired = runner.invoke(app, ["expire"])
    assert expired.exit_code == 0 and "expired" in expired.output
    tiers = runner.invoke(app, ["tiers"])
    assert tiers.exit_code == 0 and "changed tier" in tiers.output
    birthdays = runner.invoke(app, ["birthdays"])
    assert birthdays.exit_code == 0 and "birthday bonus" in birthdays.output
