"""`vafa import …` with the canonical CSV: all or nothing, idempotent, real-world text."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from vafa.cli import app
from vafa.core.errors import ImportRejected
from vafa.customers import services
from vafa.customers.importers import pipeline, writer
from vafa.customers.importers.sources import CsvSource
from vafa.customers.models import (
    Category,
    Consent,
    Customer,
    Event,
    Order,
    OrderLine,
    Product,
    Ticket,
)
from vafa.customers.validation import default_context

pytestmark = pytest.mark.django_db

CUSTOMERS_HEADER = "customer_id,email,phone,first_name,last_name,city,accepts_email,accepts_sms\n"
MODELS = (Customer, Consent, Category, Product, Order, OrderLine, Event, Ticket)


def run_import(*args: str) -> Result:
    return CliRunner().invoke(app, ["import", *args])


def write(tmp_path: Path, name: str, text: str, *, bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def some_customers(n: int) -> str:
    return "".join(f"C{i},c{i}@shop.example,0912000{i:04d},Name{i},Family,Tehran,yes,no\n"
                   for i in range(1, n + 1))


def import_customers(tmp_path: Path, rows: str) -> None:
    result = run_import("customers", str(write(tmp_path, "base.csv", CUSTOMERS_HEADER + rows)))
    assert result.exit_code == 0, result.output


def test_a_bad_row_on_line_7_exits_2_names_line_and_field_and_changes_nothing(
    tmp_path: Path,
) -> None:
    import_customers(tmp_path, some_customers(2))
    before = counts()
    rows = some_customers(5).replace("C1,", "C101,").replace("C2,", "C102,")
    bad = "C9,not-an-email,09121112233,Bad,Row,Tehran,yes,no\n"
    path = write(tmp_path, "customers.csv", CUSTOMERS_HEADER + rows + bad)  # header=1, bad=7

    result = run_import("customers", str(path))

    assert result.exit_code == 2
    assert f"{path}:7: email: not an email address" in result.stderr
    assert "nothing was imported" in result.stderr
    assert counts() == before


def test_importing_a_good_file_twice_leaves_the_same_counts_and_reports_unchanged(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "customers.csv", CUSTOMERS_HEADER + some_customers(4))

    first = run_import("customers", str(path))
    after_first = counts()
    consent_times = list(Consent.objects.order_by("id").values_list("changed_at", flat=True))
    second = run_import("customers", str(path))

    assert first.exit_code == second.exit_code == 0
    assert "4 created" in first.stdout
    assert "0 created, 0 updated, 4 unchanged" in second.stdout
    assert counts() == after_first == {**after_first, "Customer": 4, "Consent": 8}
    assert list(Consent.objects.order_by("id").values_list("changed_at", flat=True)) == (
        consent_times
    )


def test_a_changed_row_is_updated_and_only_columns_in_the_file_are_touched(
    tmp_path: Path,
) -> None:
    import_customers(tmp_path, some_customers(2))
    path = write(tmp_path, "names.csv", "customer_id,first_name\nC1,Leila\nC2,Name2\n")

    result = run_import("customers", str(path))

    assert result.exit_code == 0, result.output
    assert "0 created, 1 updated, 1 unchanged" in result.stdout
    leila = Customer.objects.get(external_id="C1")
    assert (leila.first_name, leila.email) == ("Leila", "c1@shop.example")


def test_a_file_with_a_utf8_bom_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, "bom.csv", CUSTOMERS_HEADER + some_customers(1), bom=True)

    result = run_import("customers", str(path))

    assert result.exit_code == 0, result.output
    assert Customer.objects.get().external_id == "C1"


def test_a_file_that_is_not_utf8_is_refused_at_the_line_of_the_first_bad_byte(
    tmp_path: Path,
) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("customer_id,first_name\nC1,Ali\nC2,Jos\u00e9\n".encode("latin-1"))

    result = run_import("customers", str(path))

    assert result.exit_code == 2
    assert f"{path}:3: file: not UTF-8 text" in result.stderr
    assert Customer.objects.count() == 0


def test_persian_digits_in_phones_and_amounts_are_read(tmp_path: Path) -> None:
    import_customers(tmp_path, "C1,,۰۹۱۲۳۴۵۶۷۸۹,,,,,\nC2,,٠٩٣٥١٢٣٤٥٦٧,,,,,\n")
    path = write(tmp_path, "orders.csv", (
        "order_id,customer_id,placed_at,status,total,currency\n"
        "O1,C1,2025-03-20 10:00,paid,۱۲۰٬۰۰۰,IRT\n"
        "O2,C2,2025-03-20 10:00,paid,١٥٠٠٫٥٠,USD\n"
    ))

    result = run_import("orders", str(path))

    assert result.exit_code == 0, result.output
    phones = dict(Customer.objects.values_list("external_id", "phone"))
    assert phones == {"C1": "+989123456789", "C2": "+989351234567"}
    totals = dict(Order.objects.values_list("external_id", "total"))
    assert totals == {"O1": Decimal("120000"), "O2": Decimal("1500.50")}


def test_thousands_separators_are_read_and_a_decimal_comma_is_refused(tmp_path: Path) -> None:
    import_customers(tmp_path, some_customers(1))
    header = "order_id,customer_id,placed_at,status,total,currency,discount\n"
    good = write(tmp_path, "good.csv", header + '"O1",C1,2025-01-01,paid,"1,250,000",IRT,"12 000"\n')
    bad = write(tmp_path, "bad.csv", header + 'O2,C1,2025-01-01,paid,"12,5",USD,0\n')

    assert run_import("orders", str(good)).exit_code == 0
    result = run_import("orders", str(bad))

    order = Order.objects.get()
    assert (order.total, order.discount) == (Decimal("1250000"), Decimal("12000"))
    assert result.exit_code == 2
    assert f"{bad}:2: total: not an amount" in result.stderr


def test_arabic_yeh_and_kaf_become_persian_in_names_but_not_for_arabic_speakers(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "names.csv", (
        "customer_id,first_name,last_name,city,language\n"
        "C1,علي,كريمي,كرج,fa\n"
        "C2,علي,الكعبي,الكويت,ar\n"
    ))

    assert run_import("customers", str(path)).exit_code == 0

    persian = Customer.objects.get(external_id="C1")
    arabic = Customer.objects.get(external_id="C2")
    assert (persian.first_name, persian.last_name, persian.city) == ("علی", "کریمی", "کرج")
    assert (arabic.first_name, arabic.last_name) == ("علي", "الكعبي")


def test_jalali_dates_are_read_with_the_jalali_calendar_and_refused_without(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "jalali.csv", (
        "customer_id,birth_date,signup_at\n"
        "C1,۱۳۷۰/۰۵/۰۱,1404/01/01 12:30\n"
    ))

    wrong = run_import("customers", str(path))
    right = run_import("customers", str(path), "--calendar", "jalali")

    assert wrong.exit_code == 2
    assert "birth_date: implausible year 1370" in wrong.stderr
    assert right.exit_code == 0, right.output
    customer = Customer.objects.get()
    assert customer.birth_date == date(1991, 7, 23)
    # 1404-01-01 is 2025-03-21; 12:30 in Tehran (UTC+03:30) is 09:00 UTC.
    assert customer.signup_at == datetime(2025, 3, 21, 9, 0, tzinfo=UTC)


def test_naive_timestamps_are_read_in_the_given_timezone(tmp_path: Path) -> None:
    path = write(tmp_path, "c.csv", "customer_id,signup_at\nC1,2025-06-01 12:00\n")

    result = run_import("customers", str(path), "--timezone", "Europe/Berlin")

    assert result.exit_code == 0, result.output
    assert Customer.objects.get().signup_at == datetime(2025, 6, 1, 10, 0, tzinfo=UTC)


def test_an_unknown_currency_is_a_row_error_and_a_missing_one_uses_the_default(
    tmp_path: Path,
) -> None:
    import_customers(tmp_path, some_customers(1))
    header = "order_id,customer_id,placed_at,status,total,currency\n"
    bad = write(tmp_path, "bad.csv", header + "O1,C1,2025-01-01,paid,10,XYZ\n")
    good = write(tmp_path, "good.csv", header + "O1,C1,2025-01-01,paid,10,\n")

    rejected = run_import("orders", str(bad))
    accepted = run_import("orders", str(good), "--currency", "EUR")

    assert rejected.exit_code == 2
    assert f"{bad}:2: currency: unknown currency 'XYZ'" in rejected.stderr
    assert accepted.exit_code == 0
    assert Order.objects.get().currency == "EUR"


def test_an_order_before_its_customer_is_an_error_not_an_orphan(tmp_path: Path) -> None:
    import_customers(tmp_path, some_customers(1))
    path = write(tmp_path, "orders.csv", (
        "order_id,customer_id,placed_at,status,total\n"
        "O1,C1,2025-01-01,paid,100\n"
        "O2,C404,2025-01-01,paid,100\n"
    ))

    result = run_import("orders", str(path))

    assert result.exit_code == 2
    assert (
        f"{path}:3: customer_id: unknown customer 'C404' (import customers first)"
        in result.stderr
    )
    assert Order.objects.count() == 0


def test_a_dry_run_reports_what_would_change_and_writes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, "customers.csv", CUSTOMERS_HEADER + some_customers(3))

    result = run_import("customers", str(path), "--dry-run")

    assert result.exit_code == 0, result.output
    assert "3 created, 0 updated, 0 unchanged" in result.stdout
    assert "dry run: nothing would be written" in result.stdout
    assert counts() == dict.fromkeys(counts(), 0)


def test_it_prints_the_first_50_errors_and_counts_the_rest(tmp_path: Path) -> None:
    rows = "".join(f"C{i},bad-email-{i},,,,,,\n" for i in range(60))
    path = write(tmp_path, "many.csv", CUSTOMERS_HEADER + rows)

    result = run_import("customers", str(path))

    error_lines = [line for line in result.stderr.splitlines() if ": email: " in line]
    assert result.exit_code == 2
    assert len(error_lines) == 50
    assert error_lines[0].startswith(f"{path}:2: email:")
    assert "… and 10 more errors" in result.stderr


def test_a_missing_required_column_is_reported_on_the_header_line(tmp_path: Path) -> None:
    path = write(tmp_path, "orders.csv", "order_id,customer_id,status,total\nO1,C1,paid,1\n")

    result = run_import("orders", str(path))

    assert result.exit_code == 2
    assert f"{path}:1: placed_at: required column missing" in result.stderr


def test_line_numbers_are_physical_lines_even_after_a_quoted_newline(tmp_path: Path) -> None:
    path = write(tmp_path, "c.csv", (
        "customer_id,acquisition_source,email\n"
        'C1,"two\nlines",a@b.example\n'
        "C2,x,broken\n"
    ))

    result = run_import("customers", str(path))

    assert f"{path}:4: email:" in result.stderr


def test_consent_is_recorded_with_its_source_and_changes_only_when_the_answer_does(
    tmp_path: Path,
) -> None:
    first = write(tmp_path, "first.csv", "customer_id,accepts_email,accepts_sms\nC1,بله,خیر\n")
    second = write(tmp_path, "second.csv", "customer_id,accepts_email,accepts_sms\nC1,yes,1\n")

    run_import("customers", str(first))
    email_before = Consent.objects.get(channel="email")
    result = run_import("customers", str(second))

    email, sms = (Consent.objects.get(channel=c) for c in ("email", "sms"))
    assert (email.granted, sms.granted) == (True, True)
    assert email.changed_at == email_before.changed_at
    assert email.source == "import:first.csv"
    assert sms.source == "import:second.csv"
    assert "consents changed: 1" in result.stdout


def test_extra_customer_columns_are_kept_in_attributes(tmp_path: Path) -> None:
    path = write(tmp_path, "c.csv", "customer_id,loyalty_tier\nC1,gold\nC2,\n")

    result = run_import("customers", str(path))

    assert "extra columns kept in customer attributes: loyalty_tier" in result.output
    assert Customer.objects.get(external_id="C1").attributes == {"loyalty_tier": "gold"}
    assert Customer.objects.get(external_id="C2").attributes == {}


def test_products_lines_events_and_tickets_import_and_reimport_unchanged(
    tmp_path: Path,
) -> None:
    import_customers(tmp_path, some_customers(2))
    files = {
        "products": "product_id,name,category,price\nP1,كتاب,کتاب و لوازم,250000\nP2,قلم,,9000\n",
        "orders": "order_id,customer_id,placed_at,status,total\nO1,C1,2025-01-01,paid,259000\n",
        "order-lines": (
            "order_id,product_id,quantity,unit_price\nO1,P1,1,250000\nO1,P2,1,9000\n"
        ),
        "events": (
            "customer_id,type,occurred_at,properties\n"
            'C1,product_view,2025-01-01T10:00:00Z,"{""product_id"": ""P1""}"\n'
            "C1,page_view,2025-01-01T10:01:00Z,\n"
        ),
        "tickets": (
            "ticket_id,customer_id,opened_at,first_response_at,resolved_at,channel,subject,"
            "satisfaction\nT1,C2,2025-01-02T08:00:00Z,2025-01-02T08:05:00Z,,phone,گارانتی,5\n"
        ),
    }
    paths = {kind: write(tmp_path, f"{kind}.csv", text) for kind, text in files.items()}

    for kind, path in paths.items():
        result = run_import(kind, str(path))
        assert result.exit_code == 0, (kind, result.output)
    after_first = counts()
    for kind, path in paths.items():
        result = run_import(kind, str(path))
        assert result.exit_code == 0 and "0 created, 0 updated" in result.stdout, kind

    assert counts() == after_first
    assert after_first["Category"] == 1
    assert Product.objects.get(external_id="P1").name == "کتاب"
    assert list(OrderLine.objects.order_by("line_no").values_list("line_no", "product__external_id")
                ) == [(1, "P1"), (2, "P2")]
    assert Event.objects.get(type="product_view").properties == {"product_id": "P1"}
    assert Ticket.objects.get().satisfaction == 5


def test_order_lines_with_an_unknown_product_are_rejected(tmp_path: Path) -> None:
    import_customers(tmp_path, some_customers(1))
    run_import("orders", str(write(
        tmp_path, "o.csv", "order_id,customer_id,placed_at,status,total\nO1,C1,2025-01-01,paid,1\n"
    )))
    path = write(tmp_path, "lines.csv", "order_id,product_id,quantity,unit_price\nO1,P404,1,1\n")

    result = run_import("order-lines", str(path))

    assert result.exit_code == 2
    assert f"{path}:2: product_id: unknown product 'P404' (import products first)" in (
        result.stderr
    )


def test_a_refunded_order_defaults_its_refund_to_the_total_and_refunds_above_it_are_errors(
    tmp_path: Path,
) -> None:
    import_customers(tmp_path, some_customers(1))
    header = "order_id,customer_id,placed_at,status,total,refunded_amount\n"
    good = write(tmp_path, "good.csv", header + "O1,C1,2025-01-01,refunded,500,\n")
    bad = write(tmp_path, "bad.csv", header + "O2,C1,2025-01-01,partially_refunded,500,600\n")

    assert run_import("orders", str(good)).exit_code == 0
    result = run_import("orders", str(bad))

    assert Order.objects.get().refunded_amount == Decimal(500)
    assert f"{bad}:2: refunded_amount: more than the total" in result.stderr


def test_large_files_are_written_in_the_background_and_still_all_or_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many chunks: the background writer runs (forced on for SQLite too); an unknown
    customer in a late chunk still rejects the whole file, and a good file lands completely."""
    monkeypatch.setattr(writer.BulkWriter, "overlaps_parsing", True)
    monkeypatch.setattr(writer.SqliteWriter, "overlaps_parsing", True)
    threads: list[str] = []
    work = pipeline._Sink._work

    def spy(sink: pipeline._Sink) -> None:
        threads.append(threading.current_thread().name)
        work(sink)

    monkeypatch.setattr(pipeline._Sink, "_work", spy)
    import_customers(tmp_path, some_customers(5))
    header = "order_id,customer_id,placed_at,status,total\n"
    good_rows = "".join(f"O{i},C{i % 5 + 1},2025-01-01T10:00:00Z,paid,{i}\n" for i in range(95))
    good = write(tmp_path, "good.csv", header + good_rows)
    bad = write(tmp_path, "bad.csv", header + good_rows + "O999,C404,2025-01-01,paid,1\n")
    ctx = default_context(source="test")

    with pytest.raises(ImportRejected) as rejected:
        pipeline.run(entity="orders", source=CsvSource(bad, "orders"), ctx=ctx, chunk_size=10)
    assert Order.objects.count() == 0
    result = pipeline.run(entity="orders", source=CsvSource(good, "orders"), ctx=ctx,
                          chunk_size=10)

    assert threads == ["vafa-import-writer"] * 2
    assert [e.line for e in rejected.value.errors] == [97]
    assert (result.created, Order.objects.count()) == (95, 95)


def test_the_services_import_json_exports_too(tmp_path: Path) -> None:
    fixtures = Path(__file__).parent / "fixtures"

    result = services.customers_import(path=fixtures / "woocommerce_customers.json",
                                       format="woocommerce")

    assert (result.rows, result.created) == (2, 2)


def test_on_postgresql_a_row_that_appears_behind_our_back_is_upserted_not_duplicated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PostgreSQL writer COPYs rows it believes new straight into the table; if another
    transaction inserted one meanwhile, it falls back to the staging-table upsert."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the direct COPY path exists only on PostgreSQL")
    path = write(tmp_path, "customers.csv", CUSTOMERS_HEADER + some_customers(3))
    run_import("customers", str(path))
    monkeypatch.setattr(writer.PostgresWriter, "_existing", lambda self, table, records: set())

    result = run_import("customers", str(path))

    assert result.exit_code == 0, result.output
    assert "0 created, 0 updated, 3 unchanged" in result.stdout
    assert Customer.objects.count() == 3
