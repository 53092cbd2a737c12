"""Write a day's report and refresh the pages that link to it, atomically, under ``<lake>/reports/``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from closedloop.core.lake import Lake
from closedloop.core.specs import ModelSpec, Registry
from closedloop.reports.daily import DailyReport, build_daily_report
from closedloop.reports.index import index_html, summary_html
from closedloop.reports.page import daily_report_html


def write_daily_report(lake: Lake, model: ModelSpec, day: dt.date, now: dt.datetime) -> tuple[DailyReport, Path]:
    """Build ``model``'s report of ``day`` and write it to its page (replacing an earlier one)."""
    report = build_daily_report(lake, model, day)
    path = lake.write_file(lake.report_path(model.name, day), daily_report_html(report, now).encode())
    return report, path


def write_index(lake: Lake, registry: Registry) -> Path:
    """Rewrite the calendar and the cross-model summary; returns the calendar's path."""
    lake.write_file(lake.reports_dir / "summary.html", summary_html(lake, registry).encode())
    return lake.write_file(lake.reports_dir / "index.html", index_html(lake, registry).encode())
