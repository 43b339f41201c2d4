"""The standalone HTML report of `vafa analyze`: one offline file built from the JSON summary.

The report is read by merchants who work in Persian, Arabic or English, often on a laptop with a
poor connection, and is mailed around as one attachment. So the file is self-contained: Plotly's
JavaScript, the Vazirmatn font (as a base64 `@font-face`) and every chart's data are inlined, and
nothing is fetched from the network. It is built from the summary dict alone
(`docs/analyze-json.md`): whatever the pipeline could not compute (`null` or a missing key) is
either left out (a survey indicator, one CLV model) or shown as "not available" (a whole section,
the holdout check), never invented.

Localisation lives in `report_i18n`: every visible number, including the tick labels and hover
texts of the charts, is formatted in Python with the language's digits, so Plotly never formats a
number itself (its axes get `tickvals`/`ticktext` and its hovers `customdata` strings). Time runs
left to right on every chart in every language, as in Persian and Arabic financial charts; in
right-to-left reports the value axis moves to the right side, next to where the reader starts, and
legends align to the right.
"""

from __future__ import annotations

import base64
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from vafa.analytics.errors import InputError
from vafa.analytics.report_i18n import LANGS, Localizer, to_decimal

__all__ = ["render_report", "write_report"]

SUPPORTED_SCHEMA_VERSION = 1
FONT_FILE = Path(__file__).resolve().parents[1] / "static" / "fonts" / "Vazirmatn-Variable.woff2"
FONT_STACK = "Vazirmatn, Tahoma, 'Segoe UI', sans-serif"

SEGMENTS: tuple[str, ...] = (
    "champions", "loyal", "potential_loyalist", "new", "promising", "need_attention",
    "about_to_sleep", "at_risk", "cant_lose", "hibernating", "lost",
)
LOYALTY_LABELS: tuple[str, ...] = (
    "habitual", "incentive_driven", "price_driven", "lapsing", "one_time", "regular",
)
# Summary key -> name as printed in the papers (kept in Latin script in every language).
MODELS: dict[str, str] = {
    "bgnbd": "BG/NBD", "mbgnbd": "MBG/NBD", "pareto_nbd": "Pareto/NBD", "gamma_gamma": "Gamma-Gamma",
}
PARAM_SYMBOLS: dict[str, str] = {
    "r": "r", "alpha": "α", "a": "a", "b": "b", "s": "s", "beta": "β", "p": "p", "q": "q",
    "v": "γ", "gamma": "γ",
}
PERIODS = frozenset({"day", "week", "month", "quarter", "year",
                     "jalali_month", "jalali_season", "jalali_year"})
TIME_UNITS = {"day": "unit_days", "days": "unit_days", "week": "unit_weeks",
              "weeks": "unit_weeks", "month": "unit_months", "months": "unit_months"}

PALETTE = ("#0f766e", "#c2410c", "#4f46e5", "#a16207", "#be185d", "#0369a1", "#4d7c0f", "#7c3aed")
INK, MUTED, GRID = "#1f2937", "#6b7280", "#e5e7eb"
# Light enough at the top that dark cell text stays readable on every cell.
HEAT_SCALE = [[0.0, "#f0fdfa"], [0.5, "#99f6e4"], [1.0, "#2bb3a3"]]


@dataclass(frozen=True)
class KpiSpec:
    """How one headline indicator is shown: its format and which direction is good news."""

    key: str
    kind: str  # "rate" | "money" | "number" | "days" | "score"
    better: str | None  # "up" | "down" | None (neither direction is good in itself)
    decimals: int = 1


# CES is read as CES 2.0 (1-7, "the shop made it easy"), so higher is better.
KPI_CARDS: tuple[KpiSpec, ...] = (
    KpiSpec("retention_rate", "rate", "up"),
    KpiSpec("churn_rate", "rate", "down"),
    KpiSpec("repeat_purchase_rate", "rate", "up"),
    KpiSpec("aov", "money", "up"),
    KpiSpec("purchase_frequency", "number", "up", 2),
    KpiSpec("revenue_per_customer", "money", "up"),
    KpiSpec("median_days_between_purchases", "days", "down"),
    KpiSpec("mean_days_between_purchases", "days", "down"),
    KpiSpec("pareto_share", "rate", None),
    KpiSpec("rebuy_rate_after_one", "rate", "up"),
    KpiSpec("rebuy_rate_after_two_plus", "rate", "up"),
    KpiSpec("nps", "score", "up"),
    KpiSpec("csat", "rate", "up"),
    KpiSpec("ces", "score", "up", 2),
    KpiSpec("survey_response_rate", "rate", "up"),
)


def render_report(summary: Mapping[str, Any], *, lang: str = "fa", title: str | None = None) -> str:
    """The report of `summary` (the `vafa analyze --json` dict) as one self-contained HTML page.

    `lang` is `fa` (right to left, Jalali dates, Persian digits), `ar` (right to left, Gregorian
    dates, Arabic-Indic digits) or `en`. `title` replaces the default heading. Raises `InputError`
    for an unknown language, a summary that is not a dict or a newer `schema_version`.
    """
    if lang not in LANGS:
        raise InputError(f"unsupported report language {lang!r}; use one of {LANGS}")
    if not isinstance(summary, Mapping):
        raise InputError("the summary must be a dict (the `vafa analyze --json` output)")
    version = summary.get("schema_version")
    if version is None:
        version = SUPPORTED_SCHEMA_VERSION
    if not isinstance(version, int) or version > SUPPORTED_SCHEMA_VERSION:
        raise InputError(f"summary schema_version {version!r} is newer than this report "
                         f"understands ({SUPPORTED_SCHEMA_VERSION})")
    builder = ReportBuilder(summary, Localizer(lang))
    context = builder.context(title)
    return _environment().get_template("report.html.j2").render(**context)


def write_report(summary: Mapping[str, Any], path: str | Path, *, lang: str = "fa",
                 title: str | None = None) -> Path:
    """Render `summary` with `render_report` and write it to `path` (UTF-8); returns the path."""
    target = Path(path)
    target.write_text(render_report(summary, lang=lang, title=title), encoding="utf-8")
    return target


@functools.lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(loader=PackageLoader("vafa.analytics", "templates"), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


@functools.lru_cache(maxsize=1)
def _font_data_url() -> str:
    payload = base64.b64encode(FONT_FILE.read_bytes()).decode("ascii")
    return f"data:font/woff2;base64,{payload}"


@functools.lru_cache(maxsize=1)
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


# ---------------------------------------------------------------------------------------------
# Small helpers


def _get(mapping: Any, *keys: str) -> Any:
    """`mapping[k1][k2]…`, or None as soon as a level is missing or not a dict."""
    current = mapping
    for key in keys:
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current


def _mapping(value: Any) -> Mapping[str, Any]:
    """`value` if it is a dict, else an empty one: a missing or null part reads as empty."""
    return value if isinstance(value, Mapping) else {}


def _as_float(value: Any) -> float | None:
    if value is None:
        return None
    return float(to_decimal(value))


def _nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Round tick values covering [low, high] with about `target` steps of 1, 2, 2.5 or 5 × 10ⁿ."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise InputError("chart values must be finite")
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / target
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-12))
    first = math.floor(low / step + 1e-9) * step
    last = math.ceil(high / step - 1e-9) * step
    count = round((last - first) / step)
    return [round(first + i * step, 10) for i in range(count + 1)]


def _tick_decimals(ticks: Sequence[float]) -> int:
    for decimals in range(5):
        if all(abs(t - round(t, decimals)) < 1e-9 for t in ticks):
            return decimals
    return 4


def _safe_json(text: str) -> Markup:
    """JSON text made safe inside `<script type="application/json">`: `<`, `>`, `&` escaped."""
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


# Keys of a Plotly figure whose string values are text a reader sees.
_VISIBLE_TEXT_KEYS = frozenset({"text", "ticktext", "name", "customdata", "categoryarray", "x", "y"})
_RLI, _PDI = "\u2067", "\u2069"


def _isolate_rtl(value: Any, key: str | None = None) -> Any:
    """Wrap every visible string of a figure in a right-to-left isolate (RLI … PDI).

    The charts are laid out left to right (the container has `direction: ltr`, because Plotly
    anchors SVG text assuming it), so a Persian or Arabic label mixing words and digits would be
    reordered; the isolate gives each label its own right-to-left base direction. Lines of a hover
    text (`<br>`) are isolated one by one, since Plotly draws each as its own SVG text chunk.
    """
    if isinstance(value, Mapping):
        return {k: _isolate_rtl(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_isolate_rtl(v, key) for v in value]
    if isinstance(value, str) and key in _VISIBLE_TEXT_KEYS and value:
        return "<br>".join(f"{_RLI}{line}{_PDI}" for line in value.split("<br>"))
    return value


@dataclass
class Chart:
    """One Plotly figure, serialised for the page."""

    id: str
    title: str
    spec: Markup
    height: int
    note: Markup | str = ""
    wide: bool = False


@dataclass
class Charts:
    """Builds the report's Plotly figures with every number pre-formatted for the language."""

    loc: Localizer
    currency: str | None
    count: int = field(default=0)

    def _id(self, name: str) -> str:
        self.count += 1
        return f"chart-{self.count}-{name}"

    # -- layout ---------------------------------------------------------------------------------
    def layout(self, height: int, *, legend: bool = True) -> dict[str, Any]:
        rtl = self.loc.rtl
        return {
            "template": "none",
            "height": height,
            "font": {"family": FONT_STACK, "size": 13, "color": INK},
            "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "rgba(0,0,0,0)",
            "margin": {"l": 16, "r": 16, "t": 36 if legend else 12, "b": 16},
            "showlegend": legend,
            "legend": {"orientation": "h", "x": 1.0 if rtl else 0.0,
                       "xanchor": "right" if rtl else "left", "y": 1.02, "yanchor": "bottom",
                       "font": {"size": 12},
                       # Plotly lays legend items out left to right; in rtl the first goes right.
                       "traceorder": "reversed" if rtl else "normal"},
            "hovermode": "closest",
            "hoverlabel": {"font": {"family": FONT_STACK, "size": 13},
                           "align": "right" if rtl else "left"},
        }

    def category_axis(self, title: str, labels: Sequence[str], **extra: Any) -> dict[str, Any]:
        axis = {"type": "category", "categoryorder": "array", "categoryarray": list(labels),
                "title": {"text": title, "font": {"size": 12, "color": MUTED}},
                "fixedrange": True, "automargin": True, "showgrid": False,
                "linecolor": GRID, "ticks": "", "tickfont": {"size": 12}}
        axis.update(extra)
        return axis

    def value_axis(self, values: Sequence[float | None], title: str, *,
                   formatter: Callable[[float, int], str] | None = None,
                   include_zero: bool = True, low: float | None = None,
                   high: float | None = None, value_side: bool = True) -> dict[str, Any]:
        """A numeric axis whose tick labels are localised strings (`tickvals` + `ticktext`)."""
        finite = [v for v in values if v is not None and math.isfinite(v)]
        lo = min(finite) if finite else 0.0
        hi = max(finite) if finite else 1.0
        if include_zero:
            lo, hi = min(lo, 0.0), max(hi, 0.0)
        if low is not None:
            lo = low
        if high is not None:
            hi = high
        # A fixed scale of at most ten units (CES 1-7) gets one tick per unit.
        span_units = hi - lo
        fixed = low is not None and high is not None and span_units <= 10
        ticks = _nice_ticks(lo, hi, target=round(span_units) if fixed else 5)
        decimals = _tick_decimals(ticks)
        fmt = formatter or (lambda v, d: self.loc.number(v, d))
        span = ticks[-1] - ticks[0]
        axis: dict[str, Any] = {
            "tickmode": "array", "tickvals": ticks, "ticktext": [fmt(t, decimals) for t in ticks],
            "range": [ticks[0] - 0.03 * span, ticks[-1] + 0.03 * span],
            "title": {"text": title, "font": {"size": 12, "color": MUTED}},
            "fixedrange": True, "automargin": True, "gridcolor": GRID, "zeroline": False,
            "tickfont": {"size": 12},
        }
        if value_side and self.loc.rtl:
            axis["side"] = "right"
        return axis

    def money_tick(self, value: float, decimals: int) -> str:
        return self.loc.number(value, decimals)

    def percent_tick(self, value: float, decimals: int) -> str:
        return self.loc.percent(value, decimals)

    def money_title(self, key: str) -> str:
        name = self.loc.currency_name(self.currency)
        return f"{self.loc.t(key)} ({name})" if name else self.loc.t(key)

    def figure(self, data: list[dict[str, Any]], layout: dict[str, Any]) -> Markup:
        # Building a go.Figure validates every attribute name and value against Plotly's schema.
        if self.loc.rtl:
            data, layout = _isolate_rtl(data), _isolate_rtl(layout)
        fig = go.Figure(data=data, layout=layout)
        return _safe_json(pio.to_json(fig, validate=False, engine="json"))

    # -- KPI trends ------------------------------------------------------------------------------
    def series_chart(self, name: str, title: str, series: Mapping[str, Sequence[Mapping[str, Any]]],
                     keys: Sequence[str], *, kind: str, bars: Sequence[str] = (),
                     scale: tuple[float, float] | None = None) -> Chart | None:
        """Lines (or bars for `bars`) of KPI series sharing one x axis of period starts."""
        present = [k for k in keys if any(p.get("value") is not None for p in series.get(k) or [])]
        if not present:
            return None
        starts: list[str] = []
        for key in present:
            for point in series[key]:
                if point.get("start") and point["start"] not in starts:
                    starts.append(point["start"])
        starts.sort()
        labels = [self.loc.month(s) for s in starts]
        traces: list[dict[str, Any]] = []
        all_values: list[float | None] = []
        for index, key in enumerate(present):
            by_start = {p.get("start"): p for p in series[key]}
            xs: list[str] = []
            ys: list[float] = []
            hover: list[str] = []
            for start, label in zip(starts, labels, strict=True):
                entry = by_start.get(start)
                value = None if entry is None else entry.get("value")
                if entry is None or value is None:
                    continue
                number = float(to_decimal(value))
                xs.append(label)
                ys.append(number)
                hover.append(f"{self.loc.t('kpi_' + key)}<br>"
                              f"{self.loc.period(entry['start'], entry.get('end') or entry['start'])}"
                              f"<br>{self._kind_value(kind, value)}")
            all_values.extend(ys)
            color = PALETTE[index % len(PALETTE)]
            trace: dict[str, Any] = {"x": xs, "y": ys, "name": self.loc.t("kpi_" + key),
                                     "customdata": hover, "hovertemplate": "%{customdata}<extra></extra>"}
            if key in bars:
                trace.update(type="bar", marker={"color": color, "opacity": 0.55})
            else:
                trace.update(type="scatter", mode="lines+markers",
                             line={"color": color, "width": 2.5}, marker={"size": 7})
            traces.append(trace)
        layout = self.layout(300, legend=len(present) > 1)
        layout["xaxis"] = self.category_axis(self.loc.t("axis_period_start"), labels)
        formatter = {"rate": self.percent_tick, "money": self.money_tick}.get(kind)
        axis_title = {"rate": self.loc.t("axis_percent"), "count": self.loc.t("axis_customers"),
                      "score": self.loc.t("axis_score")}.get(kind, "")
        if kind == "money":
            axis_title = self.loc.currency_name(self.currency)
        low, high = scale if scale else (None, None)
        layout["yaxis"] = self.value_axis(all_values, axis_title, formatter=formatter,
                                          low=low, high=high, include_zero=scale is None)
        layout["barmode"] = "overlay"
        return Chart(self._id(name), title, self.figure(traces, layout), 300)

    def _kind_value(self, kind: str, value: Any) -> str:
        if kind == "rate":
            return self.loc.percent(value)
        if kind == "money":
            return self.loc.money(value, self.currency)
        if kind == "count":
            return self.loc.number(value)
        return self.loc.number(value, 1)

    # -- Pareto ----------------------------------------------------------------------------------
    def pareto(self, curve: Sequence[Sequence[float]], share: float | None) -> Chart:
        xs = [float(p[0]) for p in curve]
        ys = [float(p[1]) for p in curve]
        hover = [self.loc.t("hover_pareto", x=self.loc.percent(x, 0), y=self.loc.percent(y))
                 for x, y in zip(xs, ys, strict=True)]
        traces: list[dict[str, Any]] = [
            {"type": "scatter", "mode": "lines", "x": [0, 100], "y": [0, 100],
             "name": self.loc.t("pareto_equal"), "hoverinfo": "skip",
             "line": {"color": MUTED, "dash": "dot", "width": 1.5}},
            {"type": "scatter", "mode": "lines", "x": xs, "y": ys,
             "name": self.loc.t("pareto_actual"), "customdata": hover,
             "hovertemplate": "%{customdata}<extra></extra>",
             "line": {"color": PALETTE[0], "width": 3}, "fill": "tozeroy",
             "fillcolor": "rgba(15,118,110,0.08)"},
        ]
        if share is not None:
            traces.append({"type": "scatter", "mode": "markers", "x": [20], "y": [share],
                           "showlegend": False, "marker": {"size": 11, "color": PALETTE[1]},
                           "customdata": [self.loc.t("hover_pareto", x=self.loc.percent(20, 0),
                                                     y=self.loc.percent(share))],
                           "hovertemplate": "%{customdata}<extra></extra>"})
        layout = self.layout(340)
        layout["xaxis"] = self.value_axis(xs, self.loc.t("pareto_x"), formatter=self.percent_tick,
                                          low=0, high=100, value_side=False)
        layout["xaxis"]["gridcolor"] = "rgba(0,0,0,0)"
        layout["yaxis"] = self.value_axis(ys, self.loc.t("pareto_y"), formatter=self.percent_tick,
                                          low=0, high=100)
        return Chart(self._id("pareto"), "", self.figure(traces, layout), 340)

    # -- heatmaps --------------------------------------------------------------------------------
    def heatmap(self, name: str, title: str, *, x_labels: list[str], y_labels: list[str],
                z: list[list[float | None]], text: list[list[str]], hover: list[list[str]],
                x_title: str, y_title: str, zmax: float | None = None, height: int = 320,
                y_reversed: bool = False) -> Chart:
        trace: dict[str, Any] = {
            "type": "heatmap", "x": x_labels, "y": y_labels, "z": z, "text": text,
            "texttemplate": "%{text}", "customdata": hover,
            "hovertemplate": "%{customdata}<extra></extra>", "colorscale": HEAT_SCALE,
            "showscale": False, "xgap": 2, "ygap": 2, "zmin": 0,
            "textfont": {"size": 12, "color": INK},
        }
        if zmax is not None:
            trace["zmax"] = zmax
        layout = self.layout(height, legend=False)
        layout["xaxis"] = self.category_axis(x_title, x_labels, side="bottom")
        y_axis = self.category_axis(y_title, y_labels)
        if self.loc.rtl:
            y_axis["side"] = "right"
        if y_reversed:
            y_axis["autorange"] = "reversed"
        layout["yaxis"] = y_axis
        return Chart(self._id(name), title, self.figure([trace], layout), height, wide=True)

    # -- CLV -------------------------------------------------------------------------------------
    def model_comparison(self, comparison: Mapping[str, Any]) -> Chart | None:
        buckets = [self.loc.digits(str(b)) for b in comparison.get("buckets") or []]
        if not buckets:
            return None
        selected = comparison.get("selected")
        series: list[tuple[str, Sequence[Any], dict[str, Any]]] = []
        actual = comparison.get("actual") or []
        if actual:
            series.append((self.loc.t("actual"), actual,
                           {"color": INK, "width": 3}))
        predicted = comparison.get("predicted") or {}
        for index, (key, values) in enumerate(predicted.items()):
            if not values:
                continue
            chosen = key == selected
            series.append((MODELS.get(key, str(key)), values,
                           {"color": PALETTE[index % len(PALETTE)], "width": 3 if chosen else 1.8,
                            "dash": "solid" if chosen else "dash"}))
        traces, all_values = [], []
        for name, values, line in series:
            ys = [None if v is None else float(v) for v in values][: len(buckets)]
            all_values.extend(ys)
            hover = [self.loc.t("hover_cmp", series=name, bucket=b,
                                value="" if y is None else self.loc.number(y, 2))
                     for b, y in zip(buckets, ys, strict=False)]
            traces.append({"type": "scatter", "mode": "lines+markers", "x": buckets[: len(ys)],
                           "y": ys, "name": name, "line": line, "marker": {"size": 7},
                           "customdata": hover, "hovertemplate": "%{customdata}<extra></extra>"})
        layout = self.layout(340)
        layout["xaxis"] = self.category_axis(self.loc.t("cmp_x"), buckets)
        layout["yaxis"] = self.value_axis(all_values, self.loc.t("cmp_y"))
        return Chart(self._id("clv-comparison"), "", self.figure(traces, layout), 340)

    def clv_histogram(self, distribution: Mapping[str, Any]) -> Chart | None:
        edges = [to_decimal(e) for e in distribution.get("edges") or []]
        counts = [int(c) for c in distribution.get("counts") or []]
        if not counts or not edges:
            return None
        decimals = 0 if all(e == e.to_integral_value() for e in edges) else 2
        labels = []
        for i in range(len(counts)):
            low = self.loc.number(edges[i], decimals) if i < len(edges) else ""
            high = self.loc.number(edges[i + 1], decimals) if i + 1 < len(edges) else ""
            labels.append(f"{low}–{high}" if high else f"≥ {low}")
        hover = [self.loc.t("hover_hist", range=label, count=self.loc.number(count))
                 for label, count in zip(labels, counts, strict=True)]
        trace = {"type": "bar", "x": labels, "y": counts, "marker": {"color": PALETTE[0]},
                 "customdata": hover, "hovertemplate": "%{customdata}<extra></extra>"}
        layout = self.layout(320, legend=False)
        title = self.loc.t("clv_range")
        name = self.loc.currency_name(self.currency)
        layout["xaxis"] = self.category_axis(f"{title} ({name})" if name else title, labels)
        layout["yaxis"] = self.value_axis([float(c) for c in counts], self.loc.t("axis_customers"))
        layout["bargap"] = 0.08
        return Chart(self._id("clv-distribution"), self.loc.t("clv_distribution"),
                      self.figure([trace], layout), 320)


# ---------------------------------------------------------------------------------------------
# The page


@dataclass
class Card:
    """One headline number, formatted, with its change against the previous period."""

    label: str
    value: str
    delta: str = ""
    arrow: str = ""
    tone: str = "flat"  # good | bad | flat


class ReportBuilder:
    """Turns the summary into the template's context: formatted strings, tables and charts."""

    def __init__(self, summary: Mapping[str, Any], loc: Localizer) -> None:
        self.summary = summary
        self.loc = loc
        self.currency: str | None = summary.get("currency")
        self.charts = Charts(loc, self.currency)

    def t(self, key: str, **fields: Any) -> Markup:
        """A catalogue sentence as markup; `fields` are escaped unless they are `Markup`."""
        return Markup(escape(self.loc.t(key))).format(**fields) if fields \
            else Markup(escape(self.loc.t(key)))

    def money(self, value: Any, *, signed: bool = False) -> str:
        return self.loc.money(value, self.currency, signed=signed)

    @staticmethod
    def verbatim(text: Any) -> Markup:
        """Data shown exactly as in the file (ids, file names, model names), left to right."""
        return Markup('<bdi class="verbatim" dir="ltr">{}</bdi>').format(str(text))

    def context(self, title: str | None) -> dict[str, Any]:
        loc = self.loc
        sections = [
            ("kpis", self.kpis()), ("trends", self.trends()), ("pareto", self.pareto()),
            ("rfm", self.rfm()), ("cohorts", self.cohorts()), ("clv", self.clv()),
            ("vip", self.vip()), ("loyalty", self.loyalty()), ("next", self.next_steps()),
        ]
        return {
            "lang": loc.lang,
            "dir": "rtl" if loc.rtl else "ltr",
            "title": title or loc.t("report_title"),
            "t": self.t,
            "header": self.header(),
            "sections": dict(sections),
            "toc": [(name, self.t("sec_" + name)) for name, value in sections if value is not None],
            "font_url": _font_data_url(),
            "plotly_js": Markup(_plotly_js()),
            "font_stack": FONT_STACK,
        }

    # -- header ----------------------------------------------------------------------------------
    def header(self) -> list[tuple[Markup, Markup | str]]:
        loc, s = self.loc, self.summary
        rows: list[tuple[Markup, Markup | str]] = []
        if s.get("source"):
            rows.append((self.t("source"), self.verbatim(s["source"])))
        if s.get("as_of"):
            rows.append((self.t("as_of"), loc.date(s["as_of"])))
        if s.get("first_purchase"):
            rows.append((self.t("first_purchase"), loc.date(s["first_purchase"])))
        if s.get("customers") is not None:
            rows.append((self.t("customers"), loc.number(s["customers"])))
        if s.get("transactions") is not None:
            rows.append((self.t("transactions"), loc.number(s["transactions"])))
        if s.get("revenue") is not None:
            rows.append((self.t("revenue"), self.money(s["revenue"])))
        rows.append((self.t("currency"), loc.currency_name(self.currency) or loc.t("no_currency")))
        if s.get("generated_at"):
            rows.append((self.t("generated_at"), loc.timestamp(s["generated_at"])))
        return rows

    # -- KPIs ------------------------------------------------------------------------------------
    def kpis(self) -> dict[str, Any] | None:
        kpis = self.summary.get("kpis")
        if not isinstance(kpis, Mapping):
            return None
        loc = self.loc
        previous = _mapping(kpis.get("previous"))
        cards = []
        for spec in KPI_CARDS:
            value = kpis.get(spec.key)
            if value is None:
                continue
            cards.append(self.card(spec, value, previous.get(spec.key)))
        if not cards:
            return None
        period = kpis.get("period")
        period_word = loc.t(f"period_{period}") if isinstance(period, str) and period in PERIODS \
            else ""
        current, prev = _mapping(kpis.get("current_period")), _mapping(kpis.get("previous_period"))
        caption = ""
        if all(part.get(end) for part in (current, prev) for end in ("start", "end")):
            caption = self.t("current_vs_previous",
                             current=loc.period(current["start"], current["end"]),
                             previous=loc.period(prev["start"], prev["end"]))
        rule = ""
        if period_word and kpis.get("active_window_days") is not None:
            rule = self.t("headline_period", period=period_word,
                          days=loc.number(kpis["active_window_days"]))
        surveys_missing = all(kpis.get(k) is None for k in ("nps", "csat", "ces"))
        return {"cards": cards, "caption": caption, "rule": rule,
                "no_surveys": self.t("no_surveys") if surveys_missing else ""}

    def _format_kpi(self, spec: KpiSpec, value: Any) -> str:
        loc = self.loc
        if spec.kind == "rate":
            return loc.percent(value, spec.decimals)
        if spec.kind == "money":
            return self.money(value)
        if spec.kind == "days":
            return f"{loc.number(value, spec.decimals)} {loc.t('days')}"
        return loc.number(value, spec.decimals)

    def card(self, spec: KpiSpec, value: Any, previous: Any) -> Card:
        """The headline card of one indicator: its value, its change and whether that is good."""
        loc = self.loc
        card = Card(label=self.t("kpi_" + spec.key), value=self._format_kpi(spec, value))
        if previous is None:
            card.delta = loc.t("no_previous")
            return card
        now, before = to_decimal(value), to_decimal(previous)
        change = now - before
        if spec.kind == "rate":
            card.delta = f"{loc.number(change, 1, signed=True)} {loc.t('pp')}"
        elif spec.kind == "score":
            card.delta = f"{loc.number(change, spec.decimals, signed=True)} {loc.t('points')}"
        elif spec.kind == "days":
            card.delta = f"{loc.number(change, 1, signed=True)} {loc.t('days')}"
        elif before != 0:
            card.delta = loc.percent(change / abs(before) * 100, 1, signed=True)
        elif spec.kind == "money":
            card.delta = self.money(change, signed=True)
        else:
            card.delta = loc.number(change, spec.decimals, signed=True)
        shown = change.quantize(Decimal(1).scaleb(-max(spec.decimals, 1)))
        if shown == 0:
            card.arrow, card.delta = "●", loc.t("unchanged")
            return card
        card.arrow = "▲" if shown > 0 else "▼"
        if spec.better is not None:
            good = (shown > 0) == (spec.better == "up")
            card.tone = "good" if good else "bad"
        return card

    def trends(self) -> dict[str, Any] | None:
        series = _get(self.summary, "kpis", "series")
        if not isinstance(series, Mapping):
            return None
        c, t = self.charts, self.loc.t
        charts = [
            c.series_chart("retention", t("chart_retention_churn"), series,
                           ("retention_rate", "churn_rate"), kind="rate"),
            c.series_chart("customers", t("chart_customers"), series,
                           ("active_customers", "new_customers"), kind="count",
                           bars=("new_customers",)),
            c.series_chart("aov", t("chart_aov"), series, ("aov",), kind="money"),
            c.series_chart("revenue", t("chart_revenue"), series, ("revenue",), kind="money",
                           bars=("revenue",)),
            c.series_chart("nps", t("kpi_nps"), series, ("nps",), kind="score"),
            c.series_chart("csat", t("kpi_csat"), series, ("csat",), kind="rate",
                           scale=(0, 100)),
            c.series_chart("ces", t("kpi_ces"), series, ("ces",), kind="score",
                           scale=(1, 7)),
        ]
        present = [chart for chart in charts if chart is not None]
        return {"charts": present} if present else None

    # -- Pareto ----------------------------------------------------------------------------------
    def pareto(self) -> dict[str, Any] | None:
        curve = self.summary.get("pareto_curve")
        if not curve:
            return None
        share = _as_float(_get(self.summary, "kpis", "pareto_share"))
        chart = self.charts.pareto(curve, share)
        note = self.t("pareto_note", share=self.loc.percent(share)) if share is not None else ""
        chart.note = note
        return {"chart": chart}

    # -- RFM -------------------------------------------------------------------------------------
    def rfm(self) -> dict[str, Any] | None:
        rfm = self.summary.get("rfm")
        if not isinstance(rfm, Mapping):
            return {"missing": True}
        loc = self.loc
        rows = []
        for item in rfm.get("segments") or []:
            key = item.get("segment")
            name = self.t("seg_" + key) if key in SEGMENTS else self.verbatim(key)
            rows.append({
                "name": name, "key": key if key in SEGMENTS else "other",
                "count": loc.number(item.get("count") or 0),
                "share": loc.percent(item.get("share") or 0),
                "revenue_share": loc.percent(item.get("revenue_share") or 0),
                "mean_clv": self.money(item["mean_clv"]) if item.get("mean_clv") is not None
                else "—",
            })
        grid_chart = None
        grid = rfm.get("grid") or []
        if grid:
            scores = [1, 2, 3, 4, 5]
            cells = {(int(g["r"]), int(g["f"])): g for g in grid}
            score_labels = [loc.number(s) for s in scores]
            z: list[list[float | None]] = []
            text: list[list[str]] = []
            hover: list[list[str]] = []
            for r in scores:
                z_row: list[float | None] = []
                t_row: list[str] = []
                h_row: list[str] = []
                for f in scores:
                    cell = cells.get((r, f))
                    count = int(cell["count"]) if cell else 0
                    revenue = self.money(cell["revenue"]) if cell and cell.get("revenue") \
                        is not None else "—"
                    z_row.append(count)
                    t_row.append(loc.number(count))
                    h_row.append(loc.t("hover_rfm", r=loc.number(r), f=loc.number(f),
                                       count=loc.number(count), revenue=revenue))
                z.append(z_row)
                text.append(t_row)
                hover.append(h_row)
            grid_chart = self.charts.heatmap(
                "rfm-grid", loc.t("rfm_grid"), x_labels=score_labels, y_labels=score_labels,
                z=z, text=text, hover=hover, x_title=loc.t("rfm_f"), y_title=loc.t("rfm_r"),
                height=340)
            grid_chart.wide = False
            grid_chart.note = self.t("rfm_grid_note")
        if not rows and grid_chart is None:
            return {"missing": True}
        return {"rows": rows, "grid": grid_chart}

    # -- cohorts ---------------------------------------------------------------------------------
    def cohorts(self) -> dict[str, Any] | None:
        data = self.summary.get("cohorts")
        if not isinstance(data, Mapping) or not data.get("cohorts"):
            return {"missing": True}
        loc = self.loc
        names = list(data["cohorts"])
        sizes = list(data.get("sizes") or [])
        months = list(data.get("months_since_first") or [])
        starts = [loc.month(n) for n in names]
        row_labels = [loc.t("cohort_label", start=start, size=loc.number(sizes[i]))
                      if i < len(sizes) else start for i, start in enumerate(starts)]
        month_labels = [loc.number(m) for m in months]
        height = max(260, 60 + 34 * len(names))
        charts: list[Chart] = []

        def matrix(key: str, title_key: str, name: str) -> None:
            rows = data.get(key)
            if not rows:
                return
            z: list[list[float | None]] = []
            text: list[list[str]] = []
            hover: list[list[str]] = []
            later: list[float] = []
            for i, row in enumerate(rows):
                z_row, t_row, h_row = [], [], []
                for k, value in enumerate(row[: len(months)]):
                    number = None if value is None else float(value)
                    z_row.append(number)
                    t_row.append("" if number is None else loc.number(number, 1))
                    h_row.append("" if number is None else loc.t(
                        "hover_cohort", cohort=starts[i], k=month_labels[k],
                        value=loc.percent(number)))
                    if number is not None and k > 0:
                        later.append(number)
                z.append(z_row)
                text.append(t_row)
                hover.append(h_row)
            # Month 0 is 100% by definition; scale colours on the later months so they show.
            zmax = max(later) * 1.1 if later else None
            charts.append(self.charts.heatmap(
                name, loc.t(title_key), x_labels=month_labels[: max(len(r) for r in rows)],
                y_labels=row_labels, z=z, text=text, hover=hover,
                x_title=loc.t("months_since_first"), y_title="", zmax=zmax, height=height,
                y_reversed=True))

        matrix("retention", "cohort_retention", "cohort-retention")
        matrix("revenue_retention", "cohort_revenue_retention", "cohort-revenue")
        cumulative = data.get("cumulative_revenue_per_customer")
        if cumulative:
            traces, values = [], []
            for i, row in enumerate(cumulative):
                xs, ys, hover = [], [], []
                for k, value in enumerate(row[: len(months)]):
                    if value is None:
                        continue
                    xs.append(month_labels[k])
                    ys.append(float(to_decimal(value)))
                    hover.append(loc.t("hover_cohort", cohort=starts[i], k=month_labels[k],
                                       value=self.money(value)))
                values.extend(ys)
                traces.append({"type": "scatter", "mode": "lines+markers", "x": xs, "y": ys,
                               "name": starts[i], "customdata": hover,
                               "hovertemplate": "%{customdata}<extra></extra>",
                               "line": {"color": PALETTE[i % len(PALETTE)], "width": 2},
                               "marker": {"size": 5}})
            layout = self.charts.layout(340)
            layout["xaxis"] = self.charts.category_axis(loc.t("months_since_first"), month_labels)
            layout["yaxis"] = self.charts.value_axis(
                values, self.charts.money_title("cohort_cumulative"),
                formatter=self.charts.money_tick)
            charts.append(Chart(self.charts._id("cohort-cumulative"), loc.t("cohort_cumulative"),
                                 self.charts.figure(traces, layout), 340, wide=True))
        return {"charts": charts} if charts else {"missing": True}

    # -- CLV -------------------------------------------------------------------------------------
    def clv(self) -> dict[str, Any] | None:
        clv = self.summary.get("clv")
        if not isinstance(clv, Mapping):
            return {"missing": True}
        loc = self.loc
        found = _mapping(clv.get("comparison"))
        # A holdout check is there when it has buckets or errors, not just an empty shell.
        has_errors = any(v is not None for v in _mapping(found.get("error")).values())
        comparison = found if found.get("buckets") or has_errors else None
        selected = comparison.get("selected") if comparison else None
        models = []
        for key, name in MODELS.items():
            model = _mapping(clv.get(key))
            errors = _mapping(model.get("standard_errors"))
            params = [{"symbol": PARAM_SYMBOLS.get(p, p), "value": loc.number(v, 4),
                       "se": loc.number(errors[p], 4) if errors.get(p) is not None else "—"}
                      for p, v in _mapping(model.get("params")).items() if v is not None]
            if not params:
                continue  # not fitted (e.g. no repeat buyers for the spend model)
            ll = model.get("log_likelihood")
            models.append({
                "name": self.verbatim(name), "params": params,
                "kind": self.t("model_spend" if key == "gamma_gamma" else "model_purchase"),
                "log_likelihood": loc.number(ll, 2) if ll is not None else "—",
                "has_se": any(p["se"] != "—" for p in params),
                "selected": key == selected,
            })
        unit_key = TIME_UNITS.get(str(clv.get("time_unit")))
        facts = []
        if unit_key:
            facts.append(self.t("clv_time_unit", unit=loc.t(unit_key)))
        if clv.get("calibration_end"):
            facts.append(self.t("clv_calibration", date=loc.date(clv["calibration_end"])))
        else:
            facts.append(self.t("clv_calibration_all"))
        if clv.get("horizon_months") is not None and clv.get("total_predicted_clv") is not None:
            facts.append(self.t(
                "clv_horizon", months=loc.number(clv["horizon_months"]),
                rate=loc.fraction(clv.get("monthly_discount_rate") or 0, 1),
                total=self.money(clv["total_predicted_clv"])))
        cmp_chart = None
        errors_table = []
        selected_text: Markup | str = ""
        if comparison:
            cmp_chart = self.charts.model_comparison(comparison)
            model_errors = comparison.get("error") or {}
            for key, error in model_errors.items():
                if error is None:
                    continue
                errors_table.append({"name": self.verbatim(MODELS.get(key, key)),
                                     "error": loc.number(error, 3), "selected": key == selected})
            if selected:
                error = model_errors.get(selected)
                selected_text = self.t(
                    "clv_selected", model=self.verbatim(MODELS.get(selected, selected)),
                    error=loc.number(error, 3) if error is not None else "—")
        histogram = None
        if isinstance(clv.get("distribution"), Mapping):
            histogram = self.charts.clv_histogram(clv["distribution"])
        top = []
        for rank, row in enumerate((clv.get("top_customers") or [])[:20], start=1):
            top.append({
                "rank": loc.number(rank), "id": self.verbatim(row.get("customer_id", "")),
                "clv": self.money(row["clv"]) if row.get("clv") is not None else "—",
                "p_alive": loc.fraction(row["p_alive"], 1) if row.get("p_alive") is not None
                else "—",
                "expected": loc.number(row["expected_purchases"], 1)
                if row.get("expected_purchases") is not None else "—",
            })
        if not (models or comparison or histogram or top):
            return {"missing": True}
        return {"models": models, "facts": facts, "comparison": cmp_chart,
                "errors": errors_table, "selected_text": selected_text,
                "no_comparison": self.t("clv_no_comparison") if not comparison else "",
                "histogram": histogram, "top": top}

    # -- VIP -------------------------------------------------------------------------------------
    def vip(self) -> dict[str, Any] | None:
        vip = self.summary.get("vip")
        if not isinstance(vip, Mapping) or vip.get("count") is None:
            return {"missing": True}
        loc = self.loc
        cards = []
        if vip.get("top_share") is not None:
            cards.append((self.t("vip_top_share"), loc.percent(vip["top_share"])))
        cards.append((self.t("vip_count"), loc.number(vip["count"])))
        if vip.get("min_clv") is not None:
            cards.append((self.t("vip_min_clv"), self.money(vip["min_clv"])))
        if vip.get("revenue_share") is not None:
            cards.append((self.t("vip_revenue_share"), loc.percent(vip["revenue_share"])))
        note: Markup | str = ""
        fraction = vip.get("retention_spend_fraction")
        if fraction is not None:
            cards.append((self.t("vip_ceiling"), loc.fraction(fraction)))
            if vip.get("min_clv") is not None:
                amount = to_decimal(vip["min_clv"]) * to_decimal(fraction)
                note = self.t("vip_ceiling_note", fraction=loc.fraction(fraction),
                              amount=self.money(amount))
        return {"cards": cards, "note": note}

    # -- loyalty ---------------------------------------------------------------------------------
    def loyalty(self) -> dict[str, Any] | None:
        labels = _get(self.summary, "loyalty", "labels")
        if not labels:
            return {"missing": True}
        loc = self.loc
        rows = []
        for item in labels:
            key = item.get("label")
            known = key in LOYALTY_LABELS
            rows.append({
                "name": self.t("loy_" + key) if known else self.verbatim(key),
                "explanation": self.t("loyexp_" + key) if known else "—",
                "count": loc.number(item.get("count") or 0),
                "share": loc.percent(item.get("share") or 0),
                "revenue_share": loc.percent(item["revenue_share"])
                if item.get("revenue_share") is not None else "—",
            })
        return {"rows": rows}

    # -- what to do next -------------------------------------------------------------------------
    def next_steps(self) -> dict[str, Any]:
        """Rule-based suggestions; each one quotes the numbers it rests on."""
        loc, s = self.loc, self.summary
        steps: list[Markup] = []
        segments = {item.get("segment"): item for item in _get(s, "rfm", "segments") or []}

        def seg(key: str, field_name: str = "count") -> float:
            return float(segments.get(key, {}).get(field_name) or 0)

        at_risk, cant_lose = seg("at_risk"), seg("cant_lose")
        if at_risk + cant_lose > 0:
            steps.append(self.t("next_winback", at_risk=loc.number(at_risk),
                                cant_lose=loc.number(cant_lose)))
        kpis = _mapping(s.get("kpis"))
        one, two = kpis.get("rebuy_rate_after_one"), kpis.get("rebuy_rate_after_two_plus")
        if one is not None and two is not None and float(two) - float(one) >= 10:
            steps.append(self.t("next_second_purchase", one=loc.percent(one),
                                two=loc.percent(two)))
        vip = _mapping(s.get("vip"))
        if vip.get("count"):
            steps.append(self.t(
                "next_vip", count=loc.number(vip["count"]),
                share=loc.percent(vip.get("top_share") or 0),
                revenue=loc.percent(vip.get("revenue_share") or 0),
                fraction=loc.fraction(vip.get("retention_spend_fraction") or 0)))
        churn, churn_before = kpis.get("churn_rate"), _get(kpis, "previous", "churn_rate")
        if churn is not None and churn_before is not None and float(churn) - float(churn_before) >= 1:
            steps.append(self.t("next_churn_up", delta=(
                f"{loc.number(float(churn) - float(churn_before), 1)} {loc.t('pp')}")))
        newcomers = seg("new") + seg("promising")
        if newcomers > 0:
            steps.append(self.t("next_newcomers", count=loc.number(newcomers)))
        dormant = seg("hibernating", "share") + seg("lost", "share")
        if dormant >= 30:
            steps.append(self.t("next_dormant", share=loc.percent(dormant)))
        loyalty = {item.get("label"): item for item in _get(s, "loyalty", "labels") or []}
        priced = sum(float(loyalty.get(k, {}).get("share") or 0)
                     for k in ("price_driven", "incentive_driven"))
        if priced >= 10:
            steps.append(self.t("next_price", share=loc.percent(priced)))
        if kpis and all(kpis.get(k) is None for k in ("nps", "csat", "ces")):
            steps.append(self.t("next_surveys"))
        if isinstance(s.get("clv"), Mapping) and not _mapping(s["clv"].get("comparison")).get(
                "buckets"):
            steps.append(self.t("next_holdout"))
        if not steps:
            steps.append(self.t("next_none"))
        return {"steps": steps}
