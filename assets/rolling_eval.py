"""``<model>/rolling_eval``: quality, calibration and decision rates per version over the registry's windows."""

import dagster as dg

from assets.policy import figure_metadata, model_asset_args
from closedloop.core.specs import ModelSpec
from closedloop.evaluation.daily import approved_rate_thresholds, evaluate_day, labels_known_through
from closedloop.evaluation.figures import eval_figures
from closedloop.evaluation.rolling_eval import ESTIMATED, RollingEval
from closedloop.reports.daily import QUALITY_METRIC, TREND_DAYS, quality_window
from closedloop.reports.figures import quality_over_time_figure
from closedloop.reports.history import quality_history
from wiring.automation import downstream_condition
from wiring.day_records import record_day
from wiring.partitions import run_days
from wiring.progress import log_day
from wiring.resources import LakeResource

HEADLINE = (
    "| window | version | n | labeled | coverage | ROC AUC (95%) | ECE | decision rate | immature labels | "
    "ROC AUC immature | ECE immature | ROC AUC estimated (95%) |"
)


HEADLINE_METRICS = ("n", "n_labeled", "coverage", "roc_auc", "ece", "decision_rate")


def _number(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _with_interval(block: dict, metric: str) -> str:
    value = block.get(metric)
    if value is None:
        return ""
    low, high = block.get("intervals", {}).get(metric, (None, None))
    return f"{value:.3f}" + ("" if low is None else f" [{low:.3f}, {high:.3f}]")


def headline_table(result: RollingEval) -> str:
    """Per window and version: what a model owner reads first (Markdown)."""
    lines = [HEADLINE, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for window_days in result.windows:
        document = result.document(window_days)
        blocks = {**document["versions"], "all versions": document["all_versions"]}
        for version, block in blocks.items():
            immature = block.get("immature", {})
            lines.append(
                f"| {window_days}d | {version} | {block.get('n', 0):,} | {block.get('n_labeled', 0):,} | "
                f"{_number(block.get('coverage'))} | {_with_interval(block, 'roc_auc')} | {_number(block.get('ece'))} "
                "| "
                f"{_number(block.get('decision_rate'), 4)} | {immature.get('n_labeled', 0):,} | "
                f"{_number(immature.get('roc_auc'))} | {_number(immature.get('ece'))} | "
                f"{_with_interval(block.get(ESTIMATED, {}), 'roc_auc')} |"
            )
    return "\n".join(lines)


def headline_figures(result: RollingEval) -> dict[str, float | int | None]:
    """The day's headline numbers, all versions together, per window (``roc_auc_7d``, ...), for plots over days."""
    if not result.table.num_rows:
        return {}
    figures: dict[str, float | int | None] = {}
    for window_days in result.windows:
        block = result.document(window_days)["all_versions"]
        for metric in HEADLINE_METRICS:
            figures[f"{metric}_{window_days}d"] = block.get(metric)
        figures[f"roc_auc_estimated_{window_days}d"] = block.get(ESTIMATED, {}).get("roc_auc")
    return figures


def build_rolling_eval_asset(model: ModelSpec) -> dg.AssetsDefinition:
    longest = max(model.evaluation.windows_days)
    windows = " and ".join(f"{w}-day" for w in model.evaluation.windows_days)

    @dg.asset(
        **model_asset_args(model, "rolling_eval"),
        kinds={"parquet", "duckdb"},
        deps=[
            dg.AssetDep(
                dg.AssetKey([model.name, "eval_stats"]),
                partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-(longest - 1), end_offset=0),
            )
        ],
        automation_condition=downstream_condition(model),
        description=(
            f"How well {model.name} did over the {windows} windows ending on the day, per model version and "
            "segment: ROC AUC, PR AUC, precision/recall/F1 at the version's threshold, precision@K, Brier, log "
            "loss, ECE/MCE, positive and decision rates, with 95% intervals. Quality counts matured labels only "
            f"(known {model.labels.maturity_days} days after the prediction); labels not mature yet are "
            "reported apart, and windows whose labels are not mature get a performance estimate from "
            "calibrated scores, kept beside the realised value once the labels mature. Each day's page has its "
            "headline numbers (roc_auc_7d, ece_7d, ...; plotted over days by the UI); the headline table and the "
            "figures (ROC AUC over the last 90 days per version, calibration, decision rates) are the run's last "
            "day's."
        ),
    )
    def rolling_eval(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        store = lake.get()
        result = None
        days = run_days(context)
        for position, day in enumerate(days, 1):
            result = evaluate_day(store, model, day, labels_known_through(store, model, day))
            store.write_partition(model.name, "rolling_eval", day, result.table)
            log_day(
                context, position, len(days), f"{model.name}/rolling_eval {day}: {result.table.num_rows:,} metric rows"
            )
            path = store.partition_path(model.name, "rolling_eval", day)
            record_day(context, day, {**headline_figures(result), "partition_file": dg.MetadataValue.path(str(path))})
        last = result.day
        metadata = {
            # Figures for the run's last day only: a 60-day backfill renders them once, not sixty times.
            "figures_for_day": str(last),
            "headline": dg.MetadataValue.md(headline_table(result)) if result.table.num_rows else "no statistics yet",
            "approved_decision_rate": model.evaluation.approved_decision_rate,
            "threshold_for_approved_rate": dg.MetadataValue.json(approved_rate_thresholds(store, model, last, longest)),
        }
        for name, png in eval_figures(store, model, last, longest, model.evaluation.approved_decision_rate).items():
            metadata[name] = figure_metadata(store, model, f"eval_{name}", last, png)
        window_days, floor = quality_window(model)
        history = quality_history(store, model, last, TREND_DAYS, QUALITY_METRIC, window_days)
        trend = quality_over_time_figure(model, history, QUALITY_METRIC, window_days, last, TREND_DAYS, floor)
        metadata["quality_over_time"] = figure_metadata(store, model, "eval_quality_over_time", last, trend)
        return dg.MaterializeResult(metadata=metadata)

    return rolling_eval
