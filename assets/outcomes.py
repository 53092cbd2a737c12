"""``<model>/outcomes``: each prediction day joined to the labels known so far, re-built as labels arrive."""

import dagster as dg

from assets.policy import model_asset_args
from closedloop.core.specs import ModelSpec
from closedloop.evaluation.daily import labels_known_through
from closedloop.evaluation.outcomes import outcomes_for_day
from wiring.automation import outcomes_condition
from wiring.day_records import record_day
from wiring.partitions import run_days
from wiring.progress import log_day
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
            f"Which of {model.name}'s decisions on the day turned out right, as far as is known yet: every "
            f"prediction with its label if one has arrived ({model.labels.source}; the latest label wins), how long "
            f"the label took, and whether it was known at the day's maturity horizon ({maturity} days). Seen as of "
            f"the latest label day in the lake, and re-materialized automatically when labels for the day arrive, "
            f"so each day's coverage grows until the day is mature."
        ),
    )
    def outcomes(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        store = lake.get()
        lines = [
            "| day | predictions | labeled | coverage | label delay p50 h | p90 h | as of | mature |",
            "|---|---:|---:|---:|---:|---:|---|---|",
        ]
        summaries = []
        days = run_days(context)
        for position, day in enumerate(days, 1):
            result = outcomes_for_day(store, model, day, labels_known_through(store, model, day))
            store.write_partition(model.name, "outcomes", day, result.table)
            s = result.summary
            summaries.append(s)
            coverage = "" if s.coverage is None else f"{s.coverage:.1%}"
            lines.append(
                f"| {s.day} | {s.n:,} | {s.n_labeled:,} | {coverage} | {_hours(s.label_delay_p50_hours)} | "
                f"{_hours(s.label_delay_p90_hours)} | {s.as_of} | {'yes' if s.mature else f'on {s.maturity_date}'} |"
            )
            log_day(
                context,
                position,
                len(days),
                f"{model.name}/outcomes {s.day} as of {s.as_of}: {s.n_labeled:,} of {s.n:,} labeled",
            )
            record_day(
                context,
                day,
                {
                    "predictions": s.n,
                    "labeled": s.n_labeled,
                    "positives": s.n_positive,
                    "matured_labels": s.n_matured,
                    "coverage": s.coverage,
                    "label_delay_p50_hours": s.label_delay_p50_hours,
                    "label_delay_p90_hours": s.label_delay_p90_hours,
                    "as_of": str(s.as_of),
                    "mature": s.mature,
                    "maturity_date": str(s.maturity_date),
                    "partition_file": dg.MetadataValue.path(str(store.partition_path(model.name, "outcomes", day))),
                },
            )
        return dg.MaterializeResult(
            metadata={
                # Each day's own figures are on its own partition; the run's range and per-day table on every one.
                "run_range": f"{summaries[0].day}..{summaries[-1].day}",
                "labels_known_through": str(max(s.as_of for s in summaries)),
                "mature_days": sum(s.mature for s in summaries),
                "per_day": dg.MetadataValue.md("\n".join(lines)),
            }
        )

    return outcomes
