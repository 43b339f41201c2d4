"""`vafa analyze ORDERS.csv`: customer-base analysis of a file, no database needed."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

LANGS = ("fa", "ar", "en")
STEPS = ["read", "kpis", "clv", "rfm", "cohorts", "value", "loyalty", "write"]
HEADLINE = [
    ("retention_rate", "Retention rate", "%"),
    ("churn_rate", "Churn rate", "%"),
    ("repeat_purchase_rate", "Repeat-purchase rate", "%"),
    ("aov", "Average order value", ""),
    ("purchase_frequency", "Purchase frequency", ""),
    ("revenue_per_customer", "Revenue per customer", ""),
    ("pareto_share", "Revenue from top 20%", "%"),
    ("rebuy_rate_after_one", "Rebuy after 1 purchase", "%"),
    ("rebuy_rate_after_two_plus", "Rebuy after 2+ purchases", "%"),
    ("nps", "NPS", ""),
    ("csat", "CSAT", "%"),
    ("ces", "CES", ""),
]


def analyze(
    orders: Path = typer.Argument(..., help="Transactions file: canonical orders CSV, any CSV with "
                                  "--map, Parquet, or CDNOW's whitespace file with --format cdnow."),
    mapping: str = typer.Option(
        "", "--map", help="Column names of your file: canonical=theirs,… e.g. "
        "'customer_id=Customer,placed_at=Order Date,total=Sales'."),
    fmt: str = typer.Option("canonical", "--format", help="canonical or cdnow."),
    as_of: str = typer.Option("", "--as-of", help="Observation end YYYY-MM-DD (default: the "
                              "last purchase day)."),
    out: Path | None = typer.Option(None, "--out", help="Write the HTML report here."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the JSON summary here."),
    lang: str = typer.Option("fa", "--lang", help="Report language: fa, ar or en."),
    surveys: Path | None = typer.Option(
        None, "--surveys", help="Survey answers CSV: customer_id, kind (nps|csat|ces), score, "
        "answered_at."),
    currency: str = typer.Option("", "--currency", help="Currency of the amounts, e.g. IRT, USD."),
    period: str = typer.Option("Q", "--period", help="KPI period: M (month), Q or Y; JM, JQ or JY for Solar Hijri (Jalali) months, seasons or years."),
    time_unit: str = typer.Option("W", "--time-unit", help="CLV model time unit: W or D."),
    tz: str = typer.Option("UTC", "--tz", help="The shop's time zone (decides the calendar day "
                           "of a timestamp without offset)."),
    active_window: int = typer.Option(365, "--active-window", min=1, help="Days without a "
                                      "purchase after which a customer counts as lost."),
    delimiter: str = typer.Option(",", "--delimiter", help="CSV field separator."),
) -> None:
    """Analyse a transactions file: KPIs, RFM, cohorts and CLV, as a report and JSON."""
    from vafa.analytics.errors import AnalyticsError

    console = Console(stderr=True)
    try:
        options = _options(orders, lang, period, time_unit, as_of, currency, tz, active_window)
        summary = _run(orders, mapping, fmt, delimiter, surveys, options, out, json_out, lang,
                       console)
    except AnalyticsError as exc:
        # Plain text, never wrapped: `FILE:LINE: field: reason` must stay one line for editors.
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    _print_headline(summary, Console())
    for path in (out, json_out):
        if path is not None:
            console.print(f"wrote {path}")


def _options(
    orders: Path, lang: str, period: str, time_unit: str, as_of: str, currency: str, tz: str,
    active_window: int,
) -> Any:
    from vafa.analytics.errors import InputError
    from vafa.analytics.metrics import CALENDAR_PERIODS
    from vafa.analytics.pipeline import AnalysisOptions

    if lang not in LANGS:
        raise InputError(f"--lang: expected one of {', '.join(LANGS)}, got {lang!r}")
    if period not in CALENDAR_PERIODS:
        raise InputError(f"--period: expected one of {', '.join(CALENDAR_PERIODS)}, got {period!r}")
    if time_unit not in ("W", "D"):
        raise InputError(f"--time-unit: expected W or D, got {time_unit!r}")
    try:
        as_of_date = dt.date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise InputError(f"--as-of: not a date (YYYY-MM-DD): {as_of!r}") from None
    return AnalysisOptions(
        as_of=as_of_date, period=period, time_unit=time_unit,  # type: ignore[arg-type]
        currency=currency.upper() or None, tz=tz, source=orders.name,
        active_window_days=active_window,
    )


def _run(
    orders: Path, mapping: str, fmt: str, delimiter: str, surveys: Path | None, options: Any,
    out: Path | None, json_out: Path | None, lang: str, console: Console,
) -> dict[str, Any]:
    from vafa.analytics.errors import InputError
    from vafa.analytics.io import read_transactions
    from vafa.analytics.pipeline import analyze as run_analysis

    if fmt not in ("canonical", "cdnow"):
        raise InputError(f"--format: expected canonical or cdnow, got {fmt!r}")
    columns = _parse_mapping(mapping)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("reading " + orders.name, total=len(STEPS))
        transactions = read_transactions(
            orders, mapping=columns or None, format=fmt,  # type: ignore[arg-type]
            tz=options.tz, delimiter=delimiter,
        )
        answers = _read_surveys(surveys) if surveys else None

        def step(name: str) -> None:
            bar.update(task, advance=1, description=name)

        summary = run_analysis(transactions, options=options, surveys=answers, progress=step)
        bar.update(task, advance=1, description="writing")
        if json_out is not None:
            json_out.write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
        if out is not None:
            from vafa.analytics.report import write_report

            write_report(summary, out, lang=lang)
        bar.update(task, completed=len(STEPS))
    return summary


def _parse_mapping(text: str) -> dict[str, str]:
    from vafa.analytics.errors import InputError

    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        canonical, sep, theirs = item.partition("=")
        if not sep or not canonical.strip() or not theirs.strip():
            raise InputError(f"--map: expected canonical=theirs, got {item!r}")
        pairs[canonical.strip()] = theirs.strip()
    return pairs


def _read_surveys(path: Path) -> Any:
    import pandas as pd

    from vafa.analytics.errors import InputError
    from vafa.analytics.metrics import read_survey_answers

    try:
        frame = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: cannot read survey answers: {exc}") from None
    return read_survey_answers(frame)


def _print_headline(summary: dict[str, Any], console: Console) -> None:
    kpis = summary.get("kpis") or {}
    current = kpis.get("current_period") or {}
    table = Table(title=f"{summary.get('source', '')}: {summary['customers']:,} customers, "
                        f"{summary['transactions']:,} purchases, revenue {summary['revenue']}",
                  caption=f"{kpis.get('period', '')} {current.get('start', '')} … "
                          f"{current.get('end', '')} vs the one before")
    table.add_column("KPI")
    table.add_column("this period", justify="right")
    table.add_column("previous", justify="right")
    previous = kpis.get("previous") or {}
    for key, label, unit in HEADLINE:
        value = kpis.get(key)
        if value is None and key in ("nps", "csat", "ces"):
            continue
        table.add_row(label, _fmt(value, unit), _fmt(previous.get(key), unit))
    clv = summary.get("clv") or {}
    if clv.get("total_predicted_clv"):
        table.add_row(f"Predicted CLV, next {clv['horizon_months']} months (total)",
                      str(clv["total_predicted_clv"]), "")
    vip = summary.get("vip") or {}
    if vip:
        table.add_row(f"VIP customers (top {vip['top_share']}%)", f"{vip['count']:,}", "")
    console.print(table)


def _fmt(value: Any, unit: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.1f}{unit}"
    return f"{value}{unit}"
