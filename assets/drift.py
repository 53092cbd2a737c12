"""``<model>/drift``: how far the day, and the trailing week, moved from the baseline."""

import datetime as dt

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from assets.policy import figure_metadata, model_asset_args
from closedloop.core.names import checked_day
from closedloop.core.specs import ModelSpec
from closedloop.drift.baseline import current_baseline
from closedloop.drift.daily import WINDOW_DAYS, baseline_sample, drift_of_day
from closedloop.drift.figures import decision_rate_figure, distribution_figure, psi_heatmap, score_distribution_figure
from wiring.partitions import run_days
from wiring.resources import LakeResource

HEATMAP_DAYS = 30


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
            f"Drift of {model.name}'s inputs and outputs against the frozen baseline, for the day and the trailing "
            f"{WINDOW_DAYS} days, per model version and for all versions: PSI, Jensen-Shannon, normalised "
            "Wasserstein, KS, mean/std shift, missing-rate change, never-seen values, cardinality, score and "
            "decision-rate shift, and a domain classifier's AUC. Each figure is judged against the registry's "
            "drift: limits; days with too few rows are 'not enough data', never an alert."
        ),
    )
    def drift(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        store = lake.get()
        baseline = current_baseline(store, model)
        reference_sample = baseline_sample(store, model)
        days = [checked_day(key) for key in run_days(context)]
        for day in days:
            report = drift_of_day(store, model, baseline, reference_sample, day)
            store.write_partition(model.name, "drift", day, report)
            alerts = pc.sum(pc.is_in(report.column("status"), pa.array(["warn", "error"]))).as_py()
            context.log.info(f"{model.name}/drift {day}: {alerts} drift alerts")
        last = max(days)
        history = store.read_range(model.name, "drift", last - dt.timedelta(days=HEATMAP_DAYS - 1), last)
        today = store.read_partition(model.name, "profiles", last)
        top = history.filter(pc.equal(history.column("day"), pa.scalar(last, pa.date32())))
        top = top.filter(pc.is_in(top.column("status"), pa.array(["warn", "error"]))).sort_by(
            [("severity", "descending")]
        )
        lines = ["| column | version | window | metric | value | limit | status |", "|---|---|---|---|---:|---:|---|"]
        lines += [
            f"| {r['column']} | {r['version']} | {r['window']} | {r['metric']} | {r['value']:.4g} | "
            f"{r['threshold']:.4g} | {r['status']} |"
            for r in top.slice(0, 15).to_pylist()
        ]
        return dg.MaterializeResult(
            metadata={
                "alerts_on_last_day": dg.MetadataValue.md("\n".join(lines)),
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
