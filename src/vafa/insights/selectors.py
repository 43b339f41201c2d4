"""Reads of stored analysis results."""

from __future__ import annotations

from vafa.insights.models import AnalysisRun


def latest_run() -> AnalysisRun | None:
    """The most recent successful analysis run, if any."""
    return AnalysisRun.objects.filter(status=AnalysisRun.Status.DONE).first()
