"""One model's day, gathered for its report: health first, then the numbers and figures behind it.

Everything is read from the lake (no Dagster instance), so ``closedloop report`` can rebuild any
day's page, the ``report`` asset writes the same page in a run, and the index links them all.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from closedloop.control.metric_catalog import metric_definition, parse_source
from closedloop.core.lake import Lake
from closedloop.core.names import ALL
from closedloop.core.specs import ModelSpec
from closedloop.drift.baseline import baseline_name, load_baseline
from closedloop.drift.figures import distribution_figure, psi_heatmap, score_distribution_figure
from closedloop.evaluation.daily import approved_rate_thresholds
from closedloop.evaluation.figures import eval_figures
from closedloop.ops.figures import fallback_figure, latency_cost_figure
from closedloop.ops.stats import ops_metrics, read_ops_stats
from closedloop.reports.figures import (
    daily_spend_figure,
    label_coverage_figure,
    quality_over_time_figure,
    slo_sparkline,
    slo_trends_figure,
)
from closedloop.reports.health import Health, health_on_day
from closedloop.reports.history import first_day, label_coverage, quality_history, slo_history

TREND_DAYS = 90  # the SLO trends and the drift heatmap: a quarter, so last month's incidents stay in view
OPS_DAYS = 7  # hourly operations: a week of hours is as much as a figure can show
SPEND_DAYS = 30
QUALITY_METRIC = "roc_auc"


@dataclass
class DailyReport:
    """What a day's page shows: the health block, tables as rows, figures as PNG bytes."""

    model: ModelSpec
    day: dt.date
    health: Health
    figures: dict[str, bytes] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # section -> why its figures could not be drawn
    labels: dict = field(default_factory=dict)
    thresholds: dict[str, float | None] = field(default_factory=dict)
    sparklines: dict[str, bytes] = field(default_factory=dict)  # SLO -> its last month, for the status table
    drift_alerts: list[dict] = field(default_factory=list)
    routes: list[dict] = field(default_factory=list)


def quality_window(model: ModelSpec) -> tuple[int, float | None]:
    """The window (and floor) of the SLO that watches ROC AUC, else the longest window."""
    for slo in model.slos:
        metric = next(m for m in model.metrics if m.name == slo.metric)
        source = parse_source(model, metric)
        if source.kind == "rolling_eval" and source.metric == QUALITY_METRIC and source.window:
            return int(source.window), slo.threshold
    return max(model.evaluation.windows_days), None


def _labels_summary(coverage: pd.DataFrame, model: ModelSpec, day: dt.date, window_days: int) -> dict:
    recent = coverage[pd.to_datetime(coverage["prediction_date"]) >= pd.Timestamp(first_day(day, window_days))]
    mature_before = day - dt.timedelta(days=model.labels.maturity_days - 1)
    matured = recent[pd.to_datetime(recent["prediction_date"]) < pd.Timestamp(mature_before)]
    n, labeled = int(recent["n"].sum()), int(recent["labeled"].sum())
    return {
        "window_days": window_days,
        "predictions": n,
        "labeled": labeled,
        "coverage": labeled / n if n else None,
        "matured_days": len(matured),
        "matured_labeled": int(matured["labeled"].sum()),
        "delay_p50_hours": float(recent["delay_p50_hours"].median()) if recent["labeled"].sum() else None,
        "delay_p90_hours": float(recent["delay_p90_hours"].median()) if recent["labeled"].sum() else None,
        "maturity_days": model.labels.maturity_days,
    }


def _daily_spend(stats) -> pd.DataFrame:
    hourly = ops_metrics(stats, by=("hour",)) if stats.num_rows else pd.DataFrame(columns=["hour", "cost_usd"])
    hourly["day"] = pd.to_datetime(hourly["hour"]).dt.date
    return hourly.groupby("day")["cost_usd"].sum(min_count=1).reset_index()


def _routes(stats) -> list[dict]:
    if not stats.num_rows:
        return []
    frame = ops_metrics(stats, by=("route",))
    columns = ["route", "requests", "error_rate", "fallback_rate", "latency_p95_ms", "cost_per_1k", "cost_usd"]
    return frame[columns].to_dict("records")


def build_daily_report(lake: Lake, model: ModelSpec, day: dt.date) -> DailyReport:
    """Gather ``model``'s report for ``day`` from the lake."""
    report = DailyReport(model, day, health_on_day(lake, model, day))
    units = {s.slo: s.unit for s in report.health.slos}
    history = slo_history(lake, model, day, TREND_DAYS)
    report.figures["slo_trends"] = slo_trends_figure(model, history, units, day, TREND_DAYS)
    report.sparklines = {slo.name: slo_sparkline(slo, history, day) for slo in model.slos}

    window_days, floor = quality_window(model)
    quality = quality_history(lake, model, day, TREND_DAYS, QUALITY_METRIC, window_days)
    report.figures["quality_over_time"] = quality_over_time_figure(
        model, quality, QUALITY_METRIC, window_days, day, TREND_DAYS, floor
    )
    longest = max(model.evaluation.windows_days)
    approved = model.evaluation.approved_decision_rate
    if lake.partition_files(model.name, "eval_stats", first_day(day, longest), day):
        report.figures.update(eval_figures(lake, model, day, longest, approved))
        report.thresholds = approved_rate_thresholds(lake, model, day, longest)
    else:
        report.missing["evaluation"] = f"no eval_stats in the {longest} days to {day}"

    coverage = label_coverage(lake, model, day, TREND_DAYS)
    report.figures["label_coverage"] = label_coverage_figure(model, coverage, day, TREND_DAYS)
    report.labels = _labels_summary(coverage, model, day, longest) if len(coverage) else {}

    drift = lake.read_range(model.name, "drift", first_day(day, TREND_DAYS), day)
    baseline_path = lake.document_path(model.name, "baselines", baseline_name(model))
    if drift is not None:
        report.figures["psi_heatmap"] = psi_heatmap(drift, days=TREND_DAYS, end=day, model=model.name)
        today = drift.to_pandas()
        today = today[(today["day"] == day) & today["status"].isin(["warn", "error"]) & (today["version"] == ALL)]
        report.drift_alerts = today.sort_values("severity", ascending=False).head(15).to_dict("records")
    profiles = lake.read_partition(model.name, "profiles", day)
    if drift is not None and profiles is not None and baseline_path.exists():
        baseline = load_baseline(lake, model.name, baseline_name(model))
        report.figures["drift_distributions"] = distribution_figure(baseline, profiles, drift, day=day)
        report.figures["score_by_version"] = score_distribution_figure(model, baseline, profiles)
    else:
        report.missing["drift"] = f"no drift, profiles or frozen baseline for {day}"

    month = read_ops_stats(lake, model.name, first_day(day, SPEND_DAYS), day)
    week = _since(month, first_day(day, OPS_DAYS))
    title = f"{model.name}, {OPS_DAYS} days to {day}"
    report.figures["latency_cost"] = latency_cost_figure(week, model.ops, title)
    report.figures["fallbacks"] = fallback_figure(week, model.ops, title)
    report.figures["daily_spend"] = daily_spend_figure(model, _daily_spend(month), day, SPEND_DAYS)
    report.routes = _routes(_since(month, day))
    return report


def _since(stats: pa.Table, day: dt.date) -> pa.Table:
    """The hourly ops_stats rows from the start of ``day`` on (the spend month holds the week and the day)."""
    start = pa.scalar(dt.datetime.combine(day, dt.time(), dt.UTC), stats.schema.field("hour").type)
    return stats.filter(pc.greater_equal(stats.column("hour"), start))


def metric_rows(model: ModelSpec) -> list[dict]:
    """The registry's production metrics, with what each means and who owns it."""
    return [
        {
            "name": m.name,
            "kind": m.kind,
            "source": m.source,
            "cadence": m.cadence,
            "unit": metric_definition(model, m).unit,
            "owner": m.owner,
            "description": m.description or "",
            "slos": [s.name for s in model.slos if s.metric == m.name],
        }
        for m in model.metrics
    ]
