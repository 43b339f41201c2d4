"""`vafa analyze` as a merchant runs it: a real file in, a JSON summary and an HTML report out."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from vafa.analytics.clv import BetaGeoFitter
from vafa.analytics.io import read_transactions
from vafa.analytics.report import write_report
from vafa.analytics.summary import summary_data_from_transactions
from vafa.cli import app

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
runner = CliRunner()


@pytest.fixture(scope="module")
def cdnow_run(cdnow_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("analyze")
    surveys = folder / "surveys.csv"
    # Ten NPS answers from real CDNOW customers: promoters 9,10,10; passives 7,8; detractors
    # 0,3,6,6 and one 6 → 3 promoters, 5 detractors of 10 → NPS = 30 − 50 = −20.
    scores = [9, 10, 10, 7, 8, 0, 3, 6, 6, 6]
    rows = [f"{i + 1:05d},nps,{s},1998-05-{i + 1:02d}" for i, s in enumerate(scores)]
    surveys.write_text("customer_id,kind,score,answered_at\n" + "\n".join(rows) + "\n")
    result = runner.invoke(app, [
        "analyze", str(cdnow_dir / "CDNOW_master.txt"), "--format", "cdnow", "--currency", "USD",
        "--json", str(folder / "summary.json"), "--out", str(folder / "report-fa.html"),
        "--lang", "fa", "--surveys", str(surveys),
    ])
    assert result.exit_code == 0, result.output
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    return {"folder": folder, "summary": summary, "output": result.output}


def test_it_writes_every_documented_key(cdnow_run: dict[str, Any]) -> None:
    summary = cdnow_run["summary"]
    # docs/analyze-json.md and issue 4 name these keys; scripts rely on them.
    assert summary["customers"] == 23_570  # CDNOW README: all 23,570 customers
    assert summary["transactions"] < 69_659  # same-day purchases merged into one transaction
    assert summary["revenue"].replace(".", "").isdigit()
    assert {"retention_rate", "churn_rate", "aov", "series", "previous"} <= set(summary["kpis"])
    assert len(summary["rfm"]["segments"]) == 11
    assert sum(s["count"] for s in summary["rfm"]["segments"]) == 23_570
    assert summary["cohorts"]["cohorts"] == ["1997-01", "1997-02", "1997-03"]
    assert set(summary["clv"]["bgnbd"]["params"]) == {"r", "alpha", "a", "b"}
    assert set(summary["clv"]["pareto_nbd"]["params"]) == {"r", "alpha", "s", "beta"}
    assert set(summary["clv"]["gamma_gamma"]["params"]) == {"p", "q", "v"}
    assert summary["clv"]["time_unit"] == "weeks"
    assert summary["warnings"] == []


def test_retention_and_churn_add_up_as_the_formulas_say(cdnow_run: dict[str, Any]) -> None:
    kpis = cdnow_run["summary"]["kpis"]
    # With the documented activity rule E − N = S − lost, so retention = 100 − churn.
    assert kpis["retention_rate"] + kpis["churn_rate"] == pytest.approx(100, abs=1e-3)
    for retention, churn in zip(kpis["series"]["retention_rate"], kpis["series"]["churn_rate"],
                                strict=True):
        if retention["value"] is not None:
            assert retention["value"] + churn["value"] == pytest.approx(100, abs=1e-3)


def test_the_clv_parameters_are_the_libraries_own_fit(cdnow_dir: Path,
                                                      cdnow_run: dict[str, Any]) -> None:
    transactions = read_transactions(cdnow_dir / "CDNOW_master.txt", format="cdnow")
    summary = summary_data_from_transactions(transactions, freq="W")
    model = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
    reported = cdnow_run["summary"]["clv"]["bgnbd"]
    for name, value in model.params_.items():
        assert reported["params"][name] == pytest.approx(value, rel=1e-5)
    assert reported["log_likelihood"] == pytest.approx(model.log_likelihood_, rel=1e-8)


def test_surveys_add_nps_computed_from_the_answers(cdnow_run: dict[str, Any]) -> None:
    kpis = cdnow_run["summary"]["kpis"]
    assert kpis["nps"] == pytest.approx(-20.0)  # 3 promoters, 5 detractors of 10 answers
    assert kpis["csat"] is None and kpis["ces"] is None
    assert any(point["value"] == pytest.approx(-20.0) for point in kpis["series"]["nps"])


def test_it_prints_the_headline_kpis(cdnow_run: dict[str, Any]) -> None:
    assert "Retention rate" in cdnow_run["output"]
    assert "23,570 customers" in cdnow_run["output"]


def test_any_export_reads_through_a_column_map(tmp_path: Path, cdnow_dir: Path) -> None:
    raw = pd.read_csv(cdnow_dir / "CDNOW_master.txt", sep=r"\s+", dtype=str, nrows=3000)
    export = pd.DataFrame({
        "Customer": raw["customer_id"],
        "Order Date": pd.to_datetime(raw["date"], format="%Y%m%d").dt.strftime("%Y-%m-%d"),
        "Sales": raw["dollar_value"],
    })
    path = tmp_path / "export.csv"
    export.to_csv(path, index=False)
    out = tmp_path / "s.json"
    result = runner.invoke(app, [
        "analyze", str(path), "--map", "customer_id=Customer,placed_at=Order Date,total=Sales",
        "--json", str(out),
    ])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["customers"] == raw["customer_id"].nunique()


def test_a_bad_row_names_the_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    rows = ["order_id,customer_id,placed_at,status,total,currency"]
    rows += [f"{i},C{i % 3},2024-01-0{i},paid,100,IRT" for i in range(1, 6)]
    rows.append("6,C1,2024-13-01,paid,100,IRT")  # line 7: there is no 13th month
    path.write_text("\n".join(rows) + "\n")
    result = runner.invoke(app, ["analyze", str(path)])
    assert result.exit_code == 2
    assert "orders.csv:7: placed_at:" in result.output


@pytest.mark.parametrize("option", [["--lang", "de"], ["--period", "W"], ["--as-of", "yesterday"],
                                    ["--map", "customer_id"]])
def test_it_refuses_bad_options_clearly(option: list[str], cdnow_dir: Path) -> None:
    result = runner.invoke(app, ["analyze", str(cdnow_dir / "CDNOW_master.txt"), "--format",
                                 "cdnow", *option])
    assert result.exit_code == 2
    assert option[0] in result.output



@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("lang", ["fa", "en"])
def test_the_cdnow_report_opens_in_chromium(browser: Any, cdnow_run: dict[str, Any], lang: str,
                                            tmp_path: Path) -> None:
    report = cdnow_run["folder"] / f"report-{lang}.html"
    if not report.exists():
        write_report(cdnow_run["summary"], report, lang=lang)
    page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    try:
        page.goto(report.as_uri())
        page.wait_for_selector("html[data-charts=ready]", timeout=60_000)
        assert page.locator(".plot-container").count() >= 10
        assert page.evaluate("document.documentElement.dir") == ("rtl" if lang == "fa" else "ltr")
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        name = f"analyze-cdnow-{lang}.png"
        shot = (DOCS_SCREENSHOTS / name if os.environ.get("VAFA_UPDATE_SCREENSHOTS") == "1"
                else tmp_path / name)
        page.screenshot(path=str(shot), full_page=True)
        assert problems == []
    finally:
        page.close()
