"""Jobs: each model's whole graph, for daily runs and any date range as one backfill run."""

from __future__ import annotations

import dagster as dg

from closedloop.core.specs import ModelSpec
from wiring.tags import MODEL_TAG


def pipeline_job_name(model: ModelSpec) -> str:
    return f"{model.name}_pipeline"


def build_pipeline_job(model: ModelSpec) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        name=pipeline_job_name(model),
        selection=dg.AssetSelection.groups(model.name),
        description=f"Every asset and check of {model.name} for the selected day or range of days.",
        tags={MODEL_TAG: model.name},
    )
