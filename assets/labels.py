"""``<model>/labels``: label arrivals of the day, joined to the predictions they refer to."""


import dagster as dg

from assets.policy import ingest_metadata, model_asset_args
from closedloop.ingest import ingest_labels
from closedloop.registry import ModelSpec
from orchestration.partitions import run_days
from orchestration.resources import LakeResource


def build_labels_asset(model: ModelSpec) -> dg.AssetsDefinition:
    predictions = dg.AssetKey([model.name, "predictions"])

    @dg.asset(
        **model_asset_args(model, "labels"),
        kinds={"parquet", "duckdb"},
        deps=[
            dg.AssetDep(
                predictions,
                partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-model.labels.maturity_days, end_offset=0),
            )
        ],
        description=(
            f"Labels for {model.name} ({model.labels.source}) that arrived on the day, partitioned by arrival "
            f"date and joined to the prediction they label (model_version, prediction_ts). Labels count as "
            f"complete {model.labels.maturity_days} days after the prediction. Written every day, even when "
            "nothing arrived, so downstream days are never blocked by a missing partition."
        ),
    )
    def labels(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        store = lake.get()
        results = []
        for day in run_days(context):
            result = ingest_labels(store, model, day)
            context.log.info(
                f"{model.name}/labels {day}: {result.landing_rows} arrived, {result.accepted} accepted "
                f"({result.unknown_predictions} for predictions not in the lake yet), {result.quarantined} quarantined"
            )
            results.append(result)
        metadata = ingest_metadata(results)
        metadata["labels_for_unknown_predictions"] = sum(r.unknown_predictions for r in results)
        return dg.MaterializeResult(metadata=metadata)

    return labels
