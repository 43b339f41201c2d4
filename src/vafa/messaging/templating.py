"""Merchant-editable templates: Jinja2 in a sandbox that cannot reach Python internals.

Merchants edit message text in the admin, so a template must not read settings, the
environment or files, nor call anything that writes (listmonk's CVE-2025-49136 leaked the
server's environment through its templates). The environment here:

- is an `ImmutableSandboxedEnvironment`: no underscore attributes, no `str.format` escapes, no
  mutating lists or dicts;
- has no globals at all (Jinja's `range`, `lipsum`, `cycler`, `joiner`, `namespace`, `dict` are
  removed), no loader (so `include`, `import` and `extends` fail), and only the filters listed in
  `ALLOWED_FILTERS` plus our localising ones;
- receives plain data only (dicts, lists, strings, numbers, dates, `Money`): never a model
  instance, whose methods could write;
- uses `StrictUndefined`, so a typo or a refused attribute raises instead of sending a message
  with a hole in it; every failure becomes one `TemplateError` naming the field and line;
- caps `*` and `**` on sequences and numbers, and the size of the output.

Numbers, amounts and dates print localised for the message's language: Persian digits, the
Arabic thousands separator and Jalali dates in fa, Arabic-Indic digits in ar (`finalize`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from types import TracebackType
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2 import exceptions as jinja_errors
from jinja2.defaults import DEFAULT_FILTERS
from jinja2.sandbox import ImmutableSandboxedEnvironment

from vafa.analytics.report_i18n import LANGS, Localizer
from vafa.core.text import localize_digits
from vafa.core.timeutil import format_date
from vafa.messaging.errors import TemplateError

ALLOWED_FILTERS = (
    "abs", "batch", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first",
    "float", "groupby", "int", "items", "join", "last", "length", "list", "lower", "map", "max",
    "min", "reject", "rejectattr", "replace", "round", "select", "selectattr", "slice", "sort",
    "string", "striptags", "sum", "title", "trim", "truncate", "unique", "upper", "urlencode",
    "wordcount",
)
MAX_SEQUENCE = 100_000  # longest string or list `*` may build
MAX_EXPONENT = 100
MAX_OUTPUT = 1_000_000  # characters


@dataclass(frozen=True)
class Money:
    """An amount with its currency, printed as the message's language writes money."""

    amount: Decimal
    currency: str

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


class _MerchantSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with arithmetic that cannot allocate without bound."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        exponent = right if isinstance(right, int | float | Decimal) else 0
        if operator == "**" and not -MAX_EXPONENT <= exponent <= MAX_EXPONENT:
            raise jinja_errors.SecurityError("exponent too large")
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if (
                    isinstance(sequence, str | list | tuple)
                    and isinstance(times, int)
                    and len(sequence) * times > MAX_SEQUENCE
                ):
                    raise jinja_errors.SecurityError("repetition too long")
        return super().call_binop(context, operator, left, right)


def _language(language: str) -> str:
    return language if language in LANGS else "en"


def _decimals(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return min(3, max(0, -exponent)) if isinstance(exponent, int) else 0


def _localizers(language: str) -> tuple[Callable[[Any], Any], dict[str, Callable[..., Any]]]:
    """The `finalize` hook and the localising filters for one language."""
    lang = _language(language)
    local = Localizer(lang)

    def number(value: Any, decimals: int | None = None) -> str:
        if isinstance(value, bool):
            return str(value)
        if decimals is None:
            decimals = _decimals(value) if isinstance(value, Decimal) else 0 if isinstance(
                value, int
            ) else 2
        return local.number(value, decimals)

    def money(value: Any, currency: str | None = None) -> str:
        if isinstance(value, Money):
            return local.money(value.amount, value.currency)
        return local.money(value, currency)

    def date(value: Any) -> str:
        if isinstance(value, dt.date):
            return format_date(value, language)
        return str(value)

    def digits(value: Any) -> str:
        return localize_digits(str(value), lang)

    def finalize(value: Any) -> Any:
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int | Decimal | float):
            return number(value)
        if isinstance(value, Money):
            return money(value)
        if isinstance(value, dt.date):
            return date(value)
        return value

    return finalize, {"number": number, "money": money, "date": date, "digits": digits}


@lru_cache(maxsize=8)
def _environment(language: str, html: bool) -> _MerchantSandbox:
    finalize, own_filters = _localizers(language)
    env = _MerchantSandbox(
        autoescape=html,
        undefined=StrictUndefined,
        finalize=finalize,
        auto_reload=False,
        keep_trailing_newline=True,
    )
    env.globals.clear()
    env.filters = {name: DEFAULT_FILTERS[name] for name in ALLOWED_FILTERS}
    env.filters.update(own_filters)
    return env


@lru_cache(maxsize=1024)
def _compiled(language: str, html: bool, source: str) -> Template:
    return _environment(language, html).from_string(source)


def _template_line(tb: TracebackType | None) -> int | None:
    """The template line a runtime error happened on (Jinja rewrites tracebacks so that the
    template's frames carry its line numbers)."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render_string(
    source: str, context: Mapping[str, Any], *, language: str, html: bool = False,
    field: str = "body",
) -> str:
    """Render one merchant template string, or raise `TemplateError` saying what and where."""
    if not source:
        return ""
    try:
        template = _compiled(_language(language), html, source)
    except jinja_errors.TemplateSyntaxError as exc:
        raise TemplateError(exc.message or "syntax error", field=field, line=exc.lineno) from None
    try:
        result = template.render(context)
    except jinja_errors.UndefinedError as exc:
        raise TemplateError(
            f"{exc.message or 'unknown variable'} (or it is not available in templates)",
            field=field, line=_template_line(exc.__traceback__),
        ) from None
    except jinja_errors.SecurityError as exc:
        raise TemplateError(
            f"not allowed in templates: {exc}", field=field, line=_template_line(exc.__traceback__)
        ) from None
    except (jinja_errors.TemplateNotFound, TypeError) as exc:
        if isinstance(exc, TypeError) and "no loader" not in str(exc):
            raise TemplateError(
                f"TypeError: {exc}", field=field, line=_template_line(exc.__traceback__)
            ) from None
        raise TemplateError(
            "templates cannot include, import or extend other files", field=field
        ) from None
    except RecursionError:
        raise TemplateError("the template calls itself too deeply", field=field) from None
    except Exception as exc:  # any error in a merchant's template is the merchant's to fix
        raise TemplateError(
            f"{type(exc).__name__}: {exc}", field=field, line=_template_line(exc.__traceback__)
        ) from None
    if len(result) > MAX_OUTPUT:
        raise TemplateError(f"the result is longer than {MAX_OUTPUT:,} characters", field=field)
    return result


def plain(value: Any) -> Any:
    """A copy of `value` made only of data a template may see: dicts, lists, strings, numbers,
    dates, `Money`. Anything else (a model instance, a function) becomes its string form, so a
    caller cannot hand the sandbox an object with methods that write."""
    if value is None or isinstance(value, str | bool | int | float | Decimal | dt.date | Money):
        return value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return str(value)


def plain_list(values: Iterable[Any] | None) -> list[Any]:
    return [plain(v) for v in values or ()]
