"""The standalone HTML report: content, localisation (fa, ar, en), safety and missing sections.

The example summary (`fixtures/summary_example.json`) follows `docs/analyze-json.md`; its totals,
Pareto curve and cohort matrices are CDNOW's, the rest is invented but plausible.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jdatetime
import pytest

from vafa.analytics.errors import InputError
from vafa.analytics.report import render_report, write_report
from vafa.analytics.report_i18n import CATALOGUE, LANGS, Localizer

FIXTURE = Path(__file__).parent / "fixtures" / "summary_example.json"
PERSIAN_DIGITS = "۰۱۲۳۴۵۶۷۸۹"
ARABIC_DIGITS = "٠١٢٣٤٥٦٧٨٩"
# Industry acronyms kept in Latin letters inside Persian and Arabic labels ("مشتریان VIP").
ACRONYMS = ("CSAT", "RFM", "NPS", "CES", "CLV", "VIP")
VOID_TAGS = {"meta", "br", "img", "input", "link", "hr", "col", "area", "base", "wbr", "source"}


def example() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


@functools.cache
def rendered(lang: str) -> str:
    return render_report(example(), lang=lang)


class _TextCollector(HTMLParser):
    """Text nodes a reader sees: nothing inside <script>/<style>; optionally nothing inside the
    elements that show data verbatim (`class="verbatim"`: ids, file and model names; `<var>`:
    the papers' parameter symbols)."""

    def __init__(self, skip_verbatim: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.skip_verbatim = skip_verbatim
        self.stack: list[bool] = []  # per open element: does it hide its text?
        self.chunks: list[str] = []
        self.verbatim: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID_TAGS:
            return
        classes = (dict(attrs).get("class") or "").split()
        verbatim = "verbatim" in classes or tag == "var"
        hidden = tag in ("script", "style") or (self.skip_verbatim and verbatim)
        self.stack.append(hidden or (bool(self.stack) and self.stack[-1]))

    def handle_endtag(self, tag: str) -> None:
        if tag not in VOID_TAGS and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if not (self.stack and self.stack[-1]):
            self.chunks.append(data)


def visible_text(html: str, *, skip_verbatim: bool = True) -> str:
    collector = _TextCollector(skip_verbatim)
    collector.feed(html)
    return re.sub(r"\s+", " ", "".join(collector.chunks))


def figures(html: str) -> list[dict[str, Any]]:
    specs = re.findall(r'<script type="application/json" data-figure="[^"]+">(.*?)</script>',
                       html, flags=re.S)
    return [json.loads(spec) for spec in specs]


def figure_strings(value: Any, key: str | None = None) -> list[tuple[str | None, str]]:
    """(key, string) for every string in a figure spec."""
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in figure_strings(v, k)]
    if isinstance(value, list):
        return [pair for v in value for pair in figure_strings(v, key)]
    return [(key, value)] if isinstance(value, str) else []


# -- page ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("lang", "direction", "heading"), [
    ("fa", "rtl", "گزارش تحلیل مشتریان"),
    ("ar", "rtl", "تقرير تحليل العملاء"),
    ("en", "ltr", "Customer analysis report"),
])
def test_it_renders_the_example_with_the_language_and_direction(lang: str, direction: str,
                                                              heading: str) -> None:
    html = rendered(lang)
    assert html.startswith("<!DOCTYPE html>")
    assert f'<html lang="{lang}" dir="{direction}">' in html
    assert f"<h1>{heading}</h1>" in html
    for section in ("kpis", "trends", "pareto", "rfm", "cohorts", "clv", "vip", "loyalty", "next"):
        assert f'<section id="{section}">' in html
    assert 'data-missing="' not in html  # the example has every section


def test_it_keeps_the_sections_in_the_documented_order() -> None:
    html = rendered("en")
    order = ["kpis", "trends", "pareto", "rfm", "cohorts", "clv", "vip", "loyalty", "next"]
    positions = [html.index(f'<section id="{name}">') for name in order]
    assert positions == sorted(positions)


def test_it_uses_a_custom_title_when_given() -> None:
    html = render_report(example(), lang="en", title="Shop X, spring review")
    assert "<title>Shop X, spring review</title>" in html


def test_write_report_writes_one_utf8_file(tmp_path: Path) -> None:
    path = write_report(example(), tmp_path / "report.html", lang="fa")
    assert path == tmp_path / "report.html"
    assert path.read_text(encoding="utf-8") == rendered("fa")


def test_it_refuses_an_unknown_language_and_a_newer_schema() -> None:
    with pytest.raises(InputError, match="language"):
        render_report(example(), lang="de")
    newer = example() | {"schema_version": 2}
    with pytest.raises(InputError, match="schema_version"):
        render_report(newer, lang="en")
    with pytest.raises(InputError):
        render_report([], lang="en")  # type: ignore[arg-type]


# -- offline -------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_it_references_no_network_resource(lang: str) -> None:
    html = rendered(lang)
    tags = re.findall(r"<(?:script|link|img|iframe|source|video|audio|embed|object)\b[^>]*>", html)
    for tag in tags:
        assert not re.search(r"\b(?:src|href|data)\s*=", tag), tag
    assert "<link" not in html
    styles = "".join(re.findall(r"<style>(.*?)</style>", html, flags=re.S))
    assert "@import" not in styles
    for url in re.findall(r"url\(([^)]*)\)", styles):
        assert url.strip("\"'").startswith("data:font/woff2;base64,"), url[:60]
    # Only the bundled Plotly script and the page's own script, both inline.
    assert html.count("<script>") == 2
    assert "plotly.js v" in html


def test_it_embeds_the_vendored_font_and_its_licence_is_beside_it() -> None:
    fonts = Path(__file__).resolve().parents[2] / "src" / "vafa" / "static" / "fonts"
    woff2 = (fonts / "Vazirmatn-Variable.woff2").read_bytes()
    assert woff2[:4] == b"wOF2"
    assert "SIL OPEN FONT LICENSE Version 1.1" in (fonts / "OFL.txt").read_text(encoding="utf-8")
    assert sum(p.stat().st_size for p in fonts.iterdir()) < 200_000
    assert 'font-family: "Vazirmatn"' in rendered("en")


# -- localisation --------------------------------------------------------------------------------


def test_every_catalogue_key_has_all_three_languages_with_the_same_fields() -> None:
    fields = re.compile(r"{(\w+)}")
    for key, texts in CATALOGUE.items():
        assert set(texts) == set(LANGS), key
        for lang in LANGS:
            assert texts[lang].strip(), f"{key} has no {lang} text"
        assert {frozenset(fields.findall(texts[lang])) for lang in LANGS} == {
            frozenset(fields.findall(texts["en"]))}, key


def test_persian_texts_use_persian_letters_and_arabic_texts_arabic_ones() -> None:
    # Persian writes ی and ک; Arabic writes ي and ك. Mixing them breaks search and looks wrong.
    for key, texts in CATALOGUE.items():
        assert not re.search("[يك]", texts["fa"]), key
        assert not re.search("[یک]", texts["ar"]), key
        assert not re.search(f"[0-9{ARABIC_DIGITS}]", texts["fa"]), key
        assert not re.search(f"[0-9{PERSIAN_DIGITS}]", texts["ar"]), key


def test_it_shows_dates_in_the_jalali_calendar_in_persian() -> None:
    # 1998-06-30 (CDNOW's last day) is 9 Tir 1377 (jdatetime, checked by hand in a calendar).
    assert jdatetime.date.fromgregorian(date=dt.date(1998, 6, 30)).strftime("%Y/%m/%d") == \
        "1377/04/09"
    html = rendered("fa")
    assert "۱۳۷۷/۰۴/۰۹" in visible_text(html)
    assert "1998" not in visible_text(html)
    assert "۱۹۹۸" not in visible_text(html)


def test_it_shows_gregorian_dates_in_arabic_and_english() -> None:
    assert "٣٠ يونيو ١٩٩٨" in visible_text(rendered("ar"))
    assert "30 Jun 1998" in visible_text(rendered("en"))


@pytest.mark.parametrize(("lang", "own", "foreign"), [
    ("fa", PERSIAN_DIGITS, "0-9" + ARABIC_DIGITS),
    ("ar", ARABIC_DIGITS, "0-9" + PERSIAN_DIGITS),
])
def test_right_to_left_reports_show_only_their_own_digits(lang: str, own: str,
                                                           foreign: str) -> None:
    text = visible_text(rendered(lang))
    assert re.search(f"[{own}]", text)
    found = re.findall(f".{{0,20}}[{foreign}].{{0,20}}", text)
    assert not found, found[:5]


def test_verbatim_data_keeps_the_file_s_spelling() -> None:
    # Customer ids and the source name are shown exactly as in the file, so they can be searched;
    # they are the only place Latin digits may appear in the Persian report.
    html = rendered("fa")
    assert '<bdi class="verbatim" dir="ltr">07592</bdi>' in html
    assert '<bdi class="verbatim" dir="ltr">CDNOW_master.txt</bdi>' in html


@pytest.mark.parametrize("lang", ["fa", "ar"])
def test_right_to_left_reports_leave_no_english_label(lang: str) -> None:
    text = visible_text(rendered(lang))
    for acronym in ACRONYMS:
        text = text.replace(acronym, "")
    leftovers = re.findall(r".{0,20}[A-Za-z].{0,20}", text)
    assert not leftovers, leftovers[:5]
    for key, texts in CATALOGUE.items():
        english = texts["en"]
        if english != texts[lang] and len(english) > 3 and "{" not in english:
            assert english not in text, key


@pytest.mark.parametrize("lang", LANGS)
def test_charts_get_every_number_pre_formatted(lang: str) -> None:
    specs = figures(rendered(lang))
    assert len(specs) == 14
    for spec in specs:
        for trace in spec["data"]:
            template = trace.get("hovertemplate")
            if trace.get("hoverinfo") != "skip":
                assert template == "%{customdata}<extra></extra>", template
        for name, axis in spec["layout"].items():
            if name.startswith(("xaxis", "yaxis")) and axis.get("type") != "category":
                assert axis["tickmode"] == "array", name
                assert len(axis["ticktext"]) == len(axis["tickvals"])
        if lang != "en":
            for key, text in figure_strings(spec):
                if key in ("ticktext", "customdata", "text", "x", "y", "categoryarray"):
                    assert not re.search("[0-9]", text), (key, text)


def test_persian_chart_labels_carry_a_right_to_left_isolate() -> None:
    spec = figures(rendered("fa"))[0]
    assert all(t.startswith("\u2067") and t.endswith("\u2069")
               for t in spec["layout"]["yaxis"]["ticktext"])
    assert spec["layout"]["yaxis"]["side"] == "right"
    assert "side" not in figures(rendered("en"))[0]["layout"]["yaxis"]


@pytest.mark.parametrize(("lang", "value", "decimals", "expected"), [
    ("fa", "2500315.63", 2, "۲٬۵۰۰٬۳۱۵٫۶۳"),
    ("ar", "2500315.63", 2, "٢٬٥٠٠٬٣١٥٫٦٣"),
    ("en", "2500315.63", 2, "2,500,315.63"),
    ("en", 0.125, 2, "0.13"),  # half-up, not banker's rounding
    ("en", -0.04, 1, "0.0"),  # no negative zero
])
def test_numbers_are_grouped_in_the_language_s_digits(lang: str, value: object, decimals: int,
                                                      expected: str) -> None:
    assert Localizer(lang).number(value, decimals) == expected


def test_money_uses_the_currency_s_word_or_symbol() -> None:
    assert Localizer("en").money("37.66", "USD") == "$37.66"
    assert Localizer("fa").money("37.66", "USD") == "۳۷٫۶۶ دلار"
    assert Localizer("fa").money("1250000", "IRT") == "۱٬۲۵۰٬۰۰۰ تومان"
    assert Localizer("ar").money("1250000", "IRR") == "١٬٢٥٠٬٠٠٠ ريال إيراني"
    assert Localizer("en").money("12.5", None) == "12.50"
    assert Localizer("en").money("-5", "USD") == "-$5.00"


def test_signed_numbers_keep_their_sign_beside_the_digits_in_right_to_left_text() -> None:
    assert Localizer("en").percent(1.8, signed=True) == "+1.8%"
    assert Localizer("fa").percent(-1.8, signed=True) == "\u2066−۱٫۸٪\u2069"
    assert Localizer("ar").percent(4.5, signed=True) == "\u2066+٤٫٥\u2069٪"
    assert Localizer("fa").number(-9582.43, 2) == "\u2066−۹٬۵۸۲٫۴۳\u2069"


# -- content -------------------------------------------------------------------------------------


def _card(html: str, label: str) -> str:
    match = re.search(rf'<div class="label">{re.escape(label)}</div>.*?</div>\s*</div>', html,
                      flags=re.S)
    assert match, label
    return match.group(0)


def test_kpi_cards_show_the_trend_with_down_as_good_news_for_churn() -> None:
    html = rendered("en")
    retention = _card(html, "Retention rate")
    assert "42.1%" in retention and "+1.8 pp" in retention
    assert 'class="delta good"' in retention and "▲" in retention
    churn = _card(html, "Churn rate")
    assert "57.9%" in churn and "-1.8 pp" in churn
    assert 'class="delta good"' in churn and "▼" in churn
    aov = _card(html, "Average order value")
    assert "$37.66" in aov and "-5.3%" in aov and 'class="delta bad"' in aov
    pareto = _card(html, "Revenue share of the top 20%")
    assert 'class="delta flat"' in pareto  # concentration is neither good nor bad in itself


def test_it_lists_all_rfm_segments_model_parameters_and_loyalty_labels() -> None:
    html = rendered("en")
    text = visible_text(html, skip_verbatim=False)
    assert html.count("<tr data-segment=") == 11
    for label in ("Champions", "Can't lose them", "Hibernating", "Lost"):
        assert label in text
    for model in ("BG/NBD", "MBG/NBD", "Pareto/NBD", "Gamma-Gamma"):
        assert f'<bdi class="verbatim" dir="ltr">{model}</bdi>' in html
    assert "0.2426" in text and "-9,582.43" in text  # BG/NBD r and log-likelihood (fixture)
    assert "Selected model: BG/NBD (lowest holdout error: 0.031)." in text
    for label in ("Habitual", "Incentive-driven", "Price-driven", "Lapsing", "One-time buyer",
                  "Regular"):
        assert label in text
    assert "at most $31.00 for the least valuable VIP" in text  # 10% of the VIP floor of $310


def test_next_steps_follow_the_numbers() -> None:
    text = visible_text(rendered("en"))
    assert "2,871 customers at risk and 412 you can't lose" in text
    assert "589 VIPs (the top 2.5%) bring 18.0% of revenue" in text
    assert "Only 28.0% of one-time buyers buy again, against 61.0%" in text
    assert "50.6% of customers are hibernating or lost" in text  # 19.7% + 30.9%
    assert "holdout check" not in text.split("What to do next")[1]  # the example has a holdout


# -- missing parts and hostile data --------------------------------------------------------------


def test_it_leaves_out_survey_indicators_without_surveys() -> None:
    summary = example()
    for key in ("nps", "csat", "ces", "survey_response_rate"):
        summary["kpis"][key] = None
        summary["kpis"]["previous"][key] = None
        summary["kpis"]["series"][key] = []
    html = render_report(summary, lang="en")
    assert "Net promoter score (NPS)</div>" not in html
    assert len(figures(html)) == 11
    assert 'data-missing="surveys"' in html
    assert "a short NPS survey tells you what customers value" in visible_text(html)


def test_it_says_not_available_for_sections_it_cannot_compute() -> None:
    summary = example()
    summary["clv"]["comparison"] = None
    html = render_report(summary, lang="fa")
    assert 'data-missing="comparison"' in html
    assert "مقایسه با دوره‌ی آزمون در دسترس نیست" in html

    for key in ("rfm", "cohorts", "clv", "vip", "loyalty"):
        summary[key] = None
    del summary["pareto_curve"]
    del summary["kpis"]["series"]
    html = render_report(summary, lang="fa")
    for key in ("rfm", "cohorts", "clv", "vip", "loyalty"):
        assert f'data-missing="{key}"' in html
    assert '<section id="pareto">' not in html and '<section id="trends">' not in html
    assert figures(html) == []


def test_it_renders_a_summary_with_only_the_totals() -> None:
    summary = {"schema_version": 1, "source": "orders.csv", "as_of": "2024-03-20",
               "currency": "IRT", "customers": 3, "transactions": 5, "revenue": "1250000"}
    html = render_report(summary, lang="fa")
    assert "۱٬۲۵۰٬۰۰۰ تومان" in html
    assert "۱۴۰۳/۰۱/۰۱" in html  # 2024-03-20 is Nowruz 1403
    assert 'data-missing="kpis"' in html


def _nulled(value: Any) -> Any:
    """Every leaf of the summary replaced by null, keeping its dicts (and emptying its lists)."""
    if isinstance(value, dict):
        return {key: _nulled(item) for key, item in value.items()}
    return [] if isinstance(value, list) else None


@pytest.mark.parametrize("summary", [_nulled(example()), {}], ids=["every-value-null", "empty"])
def test_it_survives_a_summary_with_nothing_computable(summary: dict[str, Any]) -> None:
    html = render_report(summary, lang="fa")
    for key in ("kpis", "rfm", "cohorts", "clv", "vip", "loyalty"):
        assert f'data-missing="{key}"' in html
    assert figures(html) == []
    assert not re.search("[0-9]", visible_text(html))


def test_it_escapes_hostile_strings_from_the_summary() -> None:
    attack = "<script>alert(1)</script>"
    summary = copy.deepcopy(example())
    summary["source"] = attack
    summary["clv"]["top_customers"][0]["customer_id"] = '"><img src=x onerror=alert(2)>'
    summary["rfm"]["segments"][0]["segment"] = "<b onmouseover=alert(3)>x</b>"
    summary["loyalty"]["labels"][0]["label"] = attack
    summary["clv"]["comparison"]["predicted"]["</script><script>alert(4)</script>"] = [1.0, 2.0]
    html = render_report(summary, lang="en", title=attack)
    assert attack not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "<b onmouseover" not in html
    assert "alert(4)</script>" not in html  # chart data is JSON with < and > escaped
    assert html.count("<script>") == 2
