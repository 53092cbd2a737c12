"""``<model>/drift``: how far the day, and the trailing week, moved from the baseline."""

import datetime as dt

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from assets.policy import figure_metadata, model_asset_args
from closedloop.drift.baseline import current_baseline
from closedloop.drift.domain_classifier import domain_classifier_auc
from closedloop.drift.report import drift_report
from closedloop.drift.figures import decision_rate_figure, distribution_figure, psi_heatmap, score_distribution_figure
from closedloop.core.lake import Lake
from closedloop.core.names import checked_day
from closedloop.drift.profiles import merge_profiles
from closedloop.core.registry import ModelSpec
from wiring.partitions import run_days
from wiring.resources import LakeResource

WINDOW_DAYS = 7
HEATMAP_DAYS = 30


def _baseline_sample(lake: Lake, model: ModelSpec) -> pa.Table | None:
    return lake.read_range(model.name, "samples", model.baseline.start, model.baseline.end)


def drift_of_day(lake: Lake, model: ModelSpec, baseline, reference_sample, day: dt.date) -> pa.Table:
    """The drift report of one day and its trailing week (profiles only, never raw predictions).

    With ``baseline.trailing_days`` the reference is the N days before ``day`` (their profiles
    merged, their samples for the domain classifier) rather than the frozen window, when they exist.
    """
    window = lake.read_range(model.name, "profiles", day - dt.timedelta(days=WINDOW_DAYS - 1), day)
    today = lake.read_partition(model.name, "profiles", day)
    sample = lake.read_partition(model.name, "samples", day)
    reference_profile = None
    if model.baseline.trailing_days:
        first, last = day - dt.timedelta(days=model.baseline.trailing_days), day - dt.timedelta(days=1)
        trailing = lake.read_range(model.name, "profiles", first, last)
        if trailing is not None:
            reference_profile = merge_profiles([trailing], across_versions=True)
            reference_sample = lake.read_range(model.name, "samples", first, last)
    domain_auc = None
    if reference_sample is not None and sample is not None and sample.num_rows:
        domain_auc = {"day": domain_classifier_auc(model, baseline, reference_sample, sample).auc}
    return drift_report(
        model, baseline, today, window, window=f"{WINDOW_DAYS}d", day=day, domain_auc=domain_auc, reference_profile=reference_profile
    )


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
        reference_sample = _baseline_sample(store, model)
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
        top = top.filter(pc.is_in(top.column("status"), pa.array(["warn", "error"]))).sort_by([("severity", "descending")])
        lines = ["| column | version | window | metric | value | limit | status |", "|---|---|---|---|---:|---:|---|"]
        lines += [
            f"| {r['column']} | {r['version']} | {r['window']} | {r['metric']} | {r['value']:.4g} | {r['threshold']:.4g} | {r['status']} |"
            for r in top.slice(0, 15).to_pylist()
        ]
        return dg.MaterializeResult(
            metadata={
                "alerts_on_last_day": dg.MetadataValue.md("\n".join(lines)),
                "psi_heatmap": figure_metadata(store, model, "drift_psi_heatmap", last, psi_heatmap(history, days=HEATMAP_DAYS)),
                "top_drifting_distributions": figure_metadata(
                    store, model, "drift_distributions", last, distribution_figure(baseline, today, history)
                ),
                "score_by_version": figure_metadata(
                    store, model, "drift_score_by_version", last, score_distribution_figure(model, baseline, today)
                ),
                "decision_rate": figure_metadata(store, model, "drift_decision_rate", last, decision_rate_figure(model, baseline, history)),
            }
        )

    return drift
