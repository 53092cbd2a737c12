"""``<model>/outcomes``: each prediction day joined to the labels known so far, re-built as labels arrive."""

import dagster as dg

from assets.policy import model_asset_args
from closedloop.core.specs import ModelSpec
from closedloop.evaluation.daily import labels_known_through
from closedloop.evaluation.outcomes import outcomes_for_day
from wiring.automation import outcomes_condition
from wiring.partitions import run_days
from wiring.resources import LakeResource


def _hours(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def build_outcomes_asset(model: ModelSpec) -> dg.AssetsDefinition:
    maturity = model.labels.maturity_days

    @dg.asset(
        **model_asset_args(model, "outcomes"),
        kinds={"parquet", "duckdb"},
        deps=[
            dg.AssetKey([model.name, "predictions"]),
            dg.AssetDep(
                dg.AssetKey([model.name, "labels"]),
                partition_mapping=dg.TimeWindowPartitionMapping(start_offset=0, end_offset=maturity),
            ),
        ],
        automation_condition=outcomes_condition(model),
        description=(
            f"Every prediction {model.name} served on the day, with its label if one is known yet "
            f"({model.labels.source}; the latest label wins), how long the label took, and whether it was "
            f"known at the day's maturity horizon ({maturity} days). Seen as of the latest label day in the "
            f"lake, and re-materialized automatically when labels for the day arrive, so coverage grows "
            f"until the day is mature."
        ),
    )
    def outcomes(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        store = lake.get()
        lines = [
            "| day | predictions | labeled | coverage | label delay p50 h | p90 h | as of | mature |",
            "|---|---:|---:|---:|---:|---:|---|---|",
        ]
        summaries = []
        for day in run_days(context):
            result = outcomes_for_day(store, model, day, labels_known_through(store, model, day))
            store.write_partition(model.name, "outcomes", day, result.table)
            s = result.summary
            summaries.append(s)
            coverage = "" if s.coverage is None else f"{s.coverage:.1%}"
            lines.append(
                f"| {s.day} | {s.n:,} | {s.n_labeled:,} | {coverage} | {_hours(s.label_delay_p50_hours)} | "
                f"{_hours(s.label_delay_p90_hours)} | {s.as_of} | {'yes' if s.mature else f'on {s.maturity_date}'} |"
            )
            context.log.info(f"{model.name}/outcomes {s.day} as of {s.as_of}: {s.n_labeled:,} of {s.n:,} labeled")
        n = sum(s.n for s in summaries)
        labeled = sum(s.n_labeled for s in summaries)
        return dg.MaterializeResult(
            metadata={
                # In a range run every partition of the range gets this metadata: the per-day table has each day.
                "run_range": f"{summaries[0].day}..{summaries[-1].day}",
                "labels_known_through": str(max(s.as_of for s in summaries)),
                "predictions": n,
                "labeled": labeled,
                "coverage": dg.MetadataValue.float(labeled / n if n else 0.0),
                "mature_days": sum(s.mature for s in summaries),
                "per_day": dg.MetadataValue.md("\n".join(lines)),
            }
        )

    return outcomes
