"""``<model>/drift``: how far the day, and the trailing week, moved from the baseline."""

import datetime as dt
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from assets.policy import figure_metadata, model_asset_args
from closedloop.core.names import checked_day
from closedloop.core.specs import ModelSpec
from closedloop.drift.baseline import current_baseline
from closedloop.drift.daily import WINDOW_DAYS, baseline_sample, drift_of_day
from closedloop.drift.figures import decision_rate_figure, distribution_figure, psi_heatmap, score_distribution_figure
from closedloop.drift.report import DAY_WINDOW, unjudged_counts
from wiring.day_records import record_day
from wiring.partitions import run_days
from wiring.progress import log_day
from wiring.resources import LakeResource

HEATMAP_DAYS = 30
ALERTS_SHOWN = 15


def drift_figures(report: pa.Table) -> dict[str, Any]:
    """One day's drift report in numbers, with its worst alerts as a table."""
    status = report.column("status")
    alerts = report.filter(pc.is_in(status, pa.array(["warn", "error"]))).sort_by([("severity", "descending")])
    lines = ["| column | version | window | metric | value | limit | status |", "|---|---|---|---|---:|---:|---|"]
    lines += [
        f"| {r['column']} | {r['version']} | {r['window']} | {r['metric']} | {r['value']:.4g} | "
        f"{r['threshold']:.4g} | {r['status']} |"
        for r in alerts.slice(0, ALERTS_SHOWN).to_pylist()
    ]
    domain = report.filter(
        pc.and_(
            pc.equal(report.column("metric"), "domain_classifier_auc"), pc.equal(report.column("window"), DAY_WINDOW)
        )
    )
    return {
        "alerts": alerts.num_rows,
        "error_alerts": pc.sum(pc.equal(status, "error")).as_py() or 0,
        "warn_alerts": pc.sum(pc.equal(status, "warn")).as_py() or 0,
        "figures_judged": report.num_rows,
        **unjudged_counts(report),
        "domain_classifier_auc": domain.column("value")[0].as_py() if domain.num_rows else None,
        "worst_alerts": dg.MetadataValue.md("\n".join(lines)) if alerts.num_rows else "none",
    }


def build_drift_asset(model: ModelSpec) -> dg.AssetsDefinition:
    @dg.asset(
        **model_asset_args(model, "drift"),
        kinds={"parquet"},
        deps=[
            dg.AssetDep(
                dg.AssetKey([model.name, "profiles"]),
                partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-(WINDOW_DAYS - 1), end_offset=0),
            )
        ],
        description=(
            f"Whether {model.name} still sees the world it was validated on: its inputs and outputs against the "
            f"frozen baseline, for the day and the trailing {WINDOW_DAYS} days, per model version and for all "
            "versions (PSI, Jensen-Shannon, normalised Wasserstein, KS, mean/std shift, missing-rate change, "
            "never-seen values, cardinality, score and decision-rate shift, a domain classifier's AUC). Drift "
            "warns before labels can show a drop in quality. Each figure is judged against the registry's drift: "
            "limits; days with too few rows are 'not enough data', never an alert. Each day's page has its own "
            "alerts; the figures are the run's last day's."
        ),
    )
    def drift(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        store = lake.get()
        baseline = current_baseline(store, model)
        reference_sample = baseline_sample(store, model)
        days = [checked_day(key) for key in run_days(context)]
        for position, day in enumerate(days, 1):
            report = drift_of_day(store, model, baseline, reference_sample, day)
            store.write_partition(model.name, "drift", day, report)
            figures = drift_figures(report)
            log_day(context, position, len(days), f"{model.name}/drift {day}: {figures['alerts']} drift alerts")
            path = store.partition_path(model.name, "drift", day)
            record_day(context, day, {**figures, "report_file": dg.MetadataValue.path(str(path))})
        last = max(days)
        history = store.read_range(model.name, "drift", last - dt.timedelta(days=HEATMAP_DAYS - 1), last)
        today = store.read_partition(model.name, "profiles", last)
        return dg.MaterializeResult(
            metadata={
                "figures_for_day": str(last),
                "psi_heatmap": figure_metadata(
                    store, model, "drift_psi_heatmap", last, psi_heatmap(history, days=HEATMAP_DAYS, model=model.name)
                ),
                "top_drifting_distributions": figure_metadata(
                    store, model, "drift_distributions", last, distribution_figure(baseline, today, history)
                ),
                "score_by_version": figure_metadata(
                    store, model, "drift_score_by_version", last, score_distribution_figure(model, baseline, today)
                ),
                "decision_rate": figure_metadata(
                    store, model, "drift_decision_rate", last, decision_rate_figure(model, baseline, history)
                ),
            }
        )

    return drift
