"""Merchant templates: the sandbox refuses every road to Python internals, settings, the
environment and files; a broken template is an error, never a broken message; numbers and
dates print as each language writes them."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal

import pytest

from tests.messaging.conftest import T0, make_template
from vafa.customers.models import Channel, Customer, Order, OrderLine, Product
from vafa.messaging.errors import TemplateError
from vafa.messaging.models import MessageKind
from vafa.messaging.services import template_preview
from vafa.messaging.templating import Money, plain, render_string

CONTEXT = {"customer": {"first_name": "Sara"}, "points": 1240, "items": [1, 2]}

ESCAPES = [
    "{{ self.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.environ }}",
    "{{ joiner.__init__.__globals__.os.environ }}",
    "{{ namespace.__init__.__globals__.os.environ }}",
    "{{ lipsum.__globals__['os'].environ }}",
    "{{ lipsum() }}",
    "{{ range(10) | list }}",
    "{{ dict(a=1) }}",
    "{{ config }}",
    "{{ request }}",
    "{{ settings.SECRET_KEY }}",
    "{{ customer.__class__ }}",
    "{{ items.append(3) }}",
    "{{ customer.update({'x': 1}) }}",
    "{{ '{0.__class__}'.format(customer) }}",
    "{{ customer | attr('__class__') }}",
    "{{ 'a' | format }}",
    "{% include '/etc/passwd' %}",
    "{% import 'os' as os %}",
    "{% extends 'base.html' %}",
    "{{ 'x' * 1000000 }}",
    "{{ 2 ** 100000 }}",
    "{{ 9 ** 9 ** 9 }}",
    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
]


@pytest.mark.parametrize("source", ESCAPES)
@pytest.mark.parametrize("html", [False, True])
def test_the_sandbox_refuses_every_escape(source: str, html: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAFA_CANARY", "canary-secret-value")
    try:
        result = render_string(source, CONTEXT, language="en", html=html)
    except TemplateError:
        return
    # If something renders, it must leak nothing.
    assert "canary-secret-value" not in result
    assert "class" not in result and "environ" not in result and "passwd" not in result
    pytest.fail(f"{source!r} rendered {result[:80]!r} instead of failing")


def test_the_environment_is_never_reachable_even_through_context_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VAFA_CANARY", "canary-secret-value")
    # A careless caller passing a module or a function gets only its string form.
    context = plain({"os": os, "fn": os.getenv, "nested": [{"environ": os.environ}]})
    assert isinstance(context["os"], str) and isinstance(context["fn"], str)
    with pytest.raises(TemplateError):
        render_string("{{ os.environ }}", context, language="en")
    with pytest.raises(TemplateError):
        render_string("{{ fn('VAFA_CANARY') }}", context, language="en")


def test_customer_text_is_escaped_in_html_but_not_in_text() -> None:
    context = {"customer": {"first_name": "<b>Sam</b> & co"}}
    assert render_string("{{ customer.first_name }}", context, language="en", html=True) == (
        "&lt;b&gt;Sam&lt;/b&gt; &amp; co"
    )
    assert render_string("{{ customer.first_name }}", context, language="en") == "<b>Sam</b> & co"


def test_an_unknown_variable_is_an_error_that_names_the_field_and_line() -> None:
    with pytest.raises(TemplateError) as caught:
        render_string("Hello\n{{ custmer.name }}", CONTEXT, language="en", field="body_text")
    assert caught.value.field == "body_text" and caught.value.line == 2
    assert "custmer" in caught.value.message


def test_a_syntax_error_names_its_line() -> None:
    with pytest.raises(TemplateError) as caught:
        render_string("one\ntwo\n{% if %}", CONTEXT, language="en", field="subject")
    assert caught.value.line == 3 and caught.value.message.startswith("subject, line 3")


def test_numbers_money_and_dates_are_localised_per_language() -> None:
    context = {
        "points": 1240,
        "total": Money(Decimal(1_250_000), "IRT"),
        "day": dt.date(2025, 3, 21),
    }
    source = "{{ points }} | {{ total }} | {{ day }}"
    assert render_string(source, context, language="fa") == "۱٬۲۴۰ | ۱٬۲۵۰٬۰۰۰ تومان | ۱۴۰۴/۰۱/۰۱"
    assert render_string(source, context, language="ar") == "١٬٢٤٠ | ١٬٢٥٠٬٠٠٠ تومان | ٢٠٢٥-٠٣-٢١"
    assert render_string(source, context, language="en") == "1,240 | 1,250,000 toman | 2025-03-21"
    assert render_string("{{ '12' | digits }}", {}, language="fa") == "۱۲"


@pytest.mark.django_db
def test_the_context_has_the_last_order_points_tier_and_pass_through_extras(
    zahra: Customer,
) -> None:
    tea = Product.objects.create(external_id="P1", name="چای")
    order = Order.objects.create(
        external_id="1001", customer=zahra, placed_at=T0 - dt.timedelta(days=2), status="paid",
        total=Decimal(1_250_000), currency="IRT",
    )
    OrderLine.objects.create(order=order, line_no=1, product=tea, quantity=2, unit_price=625_000)
    template = make_template(
        channel=Channel.SMS, language="fa", subject="",
        body_text=(
            "{{ customer.first_name }}: {% for line in last_order.lines %}{{ line.product }}"
            " ×{{ line.quantity }}{% endfor %} {{ last_order.total }} {{ last_order.placed_at }}"
            " {{ points }} {{ tier or '-' }} {{ recommended_products[0].name }} {{ social_proof }}"
        ),
    )
    rendered = template_preview(
        template=template, customer=zahra, now=T0, kind=MessageKind.TRANSACTIONAL,
        extra_context={
            "recommended_products": [{"name": "زعفران"}],
            "social_proof": "۱٬۲۴۰ نفر این ماه خریدند",
        },
    )
    assert rendered.text == (
        "زهرا: چای ×۲ ۱٬۲۵۰٬۰۰۰ تومان ۱۴۰۳/۱۲/۱۳ ۰ - زعفران ۱٬۲۴۰ نفر این ماه خریدند"
    )


@pytest.mark.django_db
def test_a_preview_of_a_broken_template_raises_instead_of_rendering(zahra: Customer) -> None:
    template = make_template(body_text="{{ customer.first_name }} {{ oops }}")
    with pytest.raises(TemplateError, match="oops"):
        template_preview(template=template, customer=zahra, now=T0)


@pytest.mark.django_db
def test_an_email_preview_is_the_whole_rtl_document_with_the_unsubscribe_footer(
    zahra: Customer,
) -> None:
    template = make_template(language="fa", body_html="<p>سلام {{ customer.first_name }}</p>")
    rendered = template_preview(template=template, customer=zahra, now=T0)
    assert '<html lang="fa" dir="rtl">' in rendered.html
    assert "Vazirmatn" in rendered.html
    assert 'style="' in rendered.html  # CSS inlined for mail clients that drop <style>
    assert "/m/unsubscribe/" in rendered.html and "/m/unsubscribe/" in rendered.text
    assert "سلام زهرا" in rendered.html
