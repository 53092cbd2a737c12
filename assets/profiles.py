"""``<model>/profiles``: the day's inputs and outputs as statistics that add up across days."""

from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from assets.policy import model_asset_args
from closedloop.core.lake import Lake
from closedloop.core.specs import ModelSpec
from closedloop.drift.baseline import current_baseline
from closedloop.drift.domain_classifier import sample_day
from closedloop.drift.profiles import profile_day
from wiring.day_records import record_day
from wiring.partitions import run_days
from wiring.progress import log_day
from wiring.resources import LakeResource


def profile_figures(lake: Lake, model: ModelSpec, day: str, profile: pa.Table, sample: pa.Table) -> dict[str, Any]:
    """The day's profile in numbers: predictions profiled, missing values, values the baseline never saw."""
    scores = profile.filter(pc.equal(profile.column("column"), "score"))
    return {
        "predictions_profiled": pc.sum(scores.column("rows")).as_py() or 0,
        "profile_rows": profile.num_rows,
        "missing_values": pc.sum(profile.column("nulls")).as_py() or 0,
        "values_unseen_in_baseline": pc.sum(profile.column("unseen")).as_py() or 0,
        "sample_rows": sample.num_rows,
        "partition_file": dg.MetadataValue.path(str(lake.partition_path(model.name, "profiles", day))),
    }


def build_profiles_asset(model: ModelSpec) -> dg.AssetsDefinition:
    @dg.asset(
        **model_asset_args(model, "profiles"),
        kinds={"parquet", "duckdb"},
        deps=[dg.AssetKey([model.name, "predictions"])],
        description=(
            f"What {model.name}'s inputs and outputs looked like on the day, summarised per model version and "
            "watched column (features, segments, score, decision): counts, missing values, sums, min/max, counts "
            "on the frozen baseline's bins or top values, and a distinct-count sketch. It is what drift compares "
            "with the baseline; rows of any days add up, so a drift window never re-reads predictions. Also keeps "
            "a small deterministic sample of the day for the multivariate drift check."
        ),
    )
    def profiles(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        store = lake.get()
        baseline = current_baseline(store, model)
        days = run_days(context)
        for position, day in enumerate(days, 1):
            profile = profile_day(store, model, baseline, day)
            store.write_partition(model.name, "profiles", day, profile)
            sample = sample_day(store, model, day)
            store.write_partition(model.name, "samples", day, sample)
            record_day(context, day, profile_figures(store, model, day, profile, sample))
            log_day(
                context,
                position,
                len(days),
                f"{model.name}/profiles {day}: {profile.num_rows} rows on baseline {baseline.name}",
            )
        return dg.MaterializeResult(
            metadata={"baseline": baseline.name, "baseline_hash": baseline.hash, "baseline_rows": baseline.rows}
        )

    return profiles
