"""Survey KPIs reach the analysis summary: the response rate is the share of invitations
answered within 14 days, this period against the last (checked by hand)."""

from __future__ import annotations

import pandas as pd

from vafa.analytics.io import read_transactions
from vafa.analytics.pipeline import AnalysisOptions, run_analysis

ORDERS = read_transactions(pd.DataFrame(
    [(f"c{i}", f"2024-{m:02d}-1{i % 9}", 100.0 + i) for i in range(12) for m in (1, 4, 7, 10)],
    columns=["customer_id", "placed_at", "total"],
))
# Q3 2024: 4 invitations, 3 answered in time; Q4 2024: 2 invitations, 1 answered.
INVITATIONS = pd.DataFrame(
    [("c0", "nps", "2024-07-02"), ("c1", "nps", "2024-07-03"), ("c2", "nps", "2024-08-01"),
     ("c3", "nps", "2024-09-01"), ("c4", "nps", "2024-10-02"), ("c5", "nps", "2024-11-01")],
    columns=["customer_id", "kind", "sent_at"],
).assign(sent_at=lambda f: pd.to_datetime(f["sent_at"], utc=True))
ANSWERS = pd.DataFrame(
    [("c0", "nps", 9, "2024-07-03"), ("c1", "nps", 6, "2024-07-05"),
     ("c2", "nps", 10, "2024-08-02"), ("c3", "nps", 8, "2024-10-01"),  # c3: 30 days late
     ("c4", "nps", 7, "2024-10-03")],
    columns=["customer_id", "kind", "score", "answered_at"],
).assign(answered_at=lambda f: pd.to_datetime(f["answered_at"], utc=True))


def test_the_summary_carries_the_survey_response_rate_of_both_periods() -> None:
    summary = run_analysis(
        ORDERS, options=AnalysisOptions(as_of=pd.Timestamp("2024-12-31").date()),
        surveys=ANSWERS, invitations=INVITATIONS,
    ).summary
    kpis = summary["kpis"]
    assert kpis["survey_response_rate"] == 50.0  # Q4: c4 answered, c5 did not
    assert kpis["previous"]["survey_response_rate"] == 75.0  # Q3: c0, c1, c2 of four
