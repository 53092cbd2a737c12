"""Jobs: each model's whole graph, for daily runs and any date range as one backfill run.

A pipeline run executes its steps in their own processes (the multiprocess executor), so a model's
independent branches (drift, evaluation, operations) run side by side. The step processes are forked
from a server process that has imported the code location once (``forkserver`` with
``preload_modules``): each would otherwise import Dagster, pandas, scikit-learn and the rest again
(and the contract checks Great Expectations, which they import when they run), which costs more
than most steps. Every other job is a short chain of steps and runs in the run's
own process (the code location's default executor). Runs launched by the CLI execute in-process
whatever the executor.
"""

from __future__ import annotations

import dagster as dg

from assets.report import report_key
from closedloop.core.specs import ModelSpec
from wiring.tags import MODEL_TAG, PARTITION_WRITER_TAG


def pipeline_job_name(model: ModelSpec) -> str:
    return f"{model.name}_pipeline"


def report_job_name(model: ModelSpec) -> str:
    return f"{model.name}_report"


PIPELINE_EXECUTOR = dg.multiprocess_executor.configured(
    {"start_method": {"forkserver": {"preload_modules": ["orchestration.definitions", "great_expectations"]}}},
    name="multiprocess",
)


def partition_writer_tags(model: ModelSpec) -> dict[str, str]:
    """The tags of a job that materializes ``model``'s partitions: the run queue starts one such run per model."""
    return {MODEL_TAG: model.name, PARTITION_WRITER_TAG: model.name}


def build_pipeline_job(model: ModelSpec) -> dg.UnresolvedAssetJobDefinition:
    # The report is left out: it reads the SLO verdicts and incidents, which come after the run's checks.
    return dg.define_asset_job(
        name=pipeline_job_name(model),
        selection=dg.AssetSelection.groups(model.name) - dg.AssetSelection.assets(report_key(model)),
        description=f"Every asset and check of {model.name} for the selected day or range of days.",
        tags=partition_writer_tags(model),
        executor_def=PIPELINE_EXECUTOR,
    )


def build_report_job(model: ModelSpec) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        name=report_job_name(model),
        selection=dg.AssetSelection.assets(report_key(model)),
        description=f"{model.name}'s daily report of the selected days, once their SLOs and incidents are settled.",
        tags=partition_writer_tags(model),
    )
