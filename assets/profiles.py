"""``<model>/profiles``: the day's inputs and outputs as statistics that add up across days."""

import dagster as dg

from assets.policy import model_asset_args
from closedloop.core.specs import ModelSpec
from closedloop.drift.baseline import current_baseline
from closedloop.drift.domain_classifier import sample_day
from closedloop.drift.profiles import profile_day
from wiring.partitions import run_days
from wiring.resources import LakeResource


def build_profiles_asset(model: ModelSpec) -> dg.AssetsDefinition:
    @dg.asset(
        **model_asset_args(model, "profiles"),
        kinds={"parquet", "duckdb"},
        deps=[dg.AssetKey([model.name, "predictions"])],
        description=(
            f"One row per day, model version and watched column of {model.name} (features, segments, score, "
            "decision): counts, nulls, sums, min/max, counts on the frozen baseline's bins or top values, and a "
            "distinct-count sketch. Rows of any days add up, so a drift window never re-reads predictions. "
            "Also keeps a small deterministic sample of the day for the multivariate drift check."
        ),
    )
    def profiles(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        store = lake.get()
        baseline = current_baseline(store, model)
        for day in run_days(context):
            profile = profile_day(store, model, baseline, day)
            store.write_partition(model.name, "profiles", day, profile)
            store.write_partition(model.name, "samples", day, sample_day(store, model, day))
            context.log.info(f"{model.name}/profiles {day}: {profile.num_rows} rows on baseline {baseline.name}")
        return dg.MaterializeResult(
            metadata={"baseline": baseline.name, "baseline_hash": baseline.hash, "baseline_rows": baseline.rows}
        )

    return profiles
