"""``<model>/predictions`` and ``<model>/shadow``: the day's scored requests, contract-checked, typed, deduplicated."""

import dagster as dg

from assets.policy import ingest_run_days, model_asset_args
from closedloop.core.specs import ModelSpec
from closedloop.inputs.ingest import ingest_predictions, ingest_shadow
from wiring.resources import LakeResource


def build_predictions_asset(model: ModelSpec) -> dg.AssetsDefinition:
    @dg.asset(
        **model_asset_args(model, "predictions"),
        kinds={"parquet", "duckdb"},
        description=(
            f"What {model.name} decided on the day (UTC): every prediction it served, one row per prediction_id, "
            "in closedloop's columns and types. Drift, quality, serving costs and SLOs of the day are all computed "
            "from it, so a day that fails its contract holds them back. Rows that break the input contract are in "
            "the quarantine table with the reason; exact duplicates (client retries) are dropped and counted. "
            "Each day's page has its rows landed, accepted and quarantined; today's partition is refreshed as the "
            "day's files land."
        ),
    )
    def predictions(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        return ingest_run_days(context, lake.get(), model, ingest_predictions)

    return predictions


def build_shadow_asset(model: ModelSpec) -> dg.AssetsDefinition:
    @dg.asset(
        **model_asset_args(model, "shadow"),
        kinds={"parquet", "duckdb"},
        description=(
            f"Scores of a {model.name} version running in shadow: it scored the day's requests but its decisions "
            f"were not applied. Same contract as predictions, decision from the shadow version's threshold; "
            f"rows pair with the served ones on {model.pairing_key}. Rejected rows are quarantined apart from the "
            "served ones. Days without shadow traffic have an empty partition. Nothing else in the loop reads "
            "it: profiles, drift, outcomes and SLOs are about what was served."
        ),
    )
    def shadow(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        return ingest_run_days(context, lake.get(), model, ingest_shadow)

    return shadow
