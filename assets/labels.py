"""``<model>/labels``: label arrivals of the day, joined to the predictions they refer to."""

import dagster as dg

from assets.policy import ingest_run_days, model_asset_args
from closedloop.core.specs import ModelSpec
from closedloop.inputs.ingest import ingest_labels
from wiring.resources import LakeResource


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
            f"What turned out to be true for {model.name}'s predictions ({model.labels.source}): the labels that "
            f"arrived on the day, partitioned by arrival date and joined to the prediction they label "
            f"(model_version, prediction_ts). Quality is only known once labels arrive, and counts as final "
            f"{model.labels.maturity_days} days after the prediction. Written every day, even when nothing "
            "arrived, so downstream days are never blocked by a missing partition."
        ),
    )
    def labels(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        return ingest_run_days(context, lake.get(), model, ingest_labels)

    return labels
