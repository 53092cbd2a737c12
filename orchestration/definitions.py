"""The code location: every model's assets, checks and jobs, built from the registry in one place."""

from __future__ import annotations

import dagster as dg

from assets.factory import build_model_assets
from checks.contract import build_contract_checks
from closedloop.registry import Registry, registry_from_environment
from orchestration.jobs import build_pipeline_job
from orchestration.resources import LakeResource


def build_definitions(registry: Registry) -> dg.Definitions:
    assets, checks, jobs = [], [], []
    for model in registry.models.values():
        assets += build_model_assets(model)
        checks += build_contract_checks(model)
        jobs.append(build_pipeline_job(model))
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=jobs,
        resources={"lake": LakeResource(root=str(registry.lake), landing=str(registry.landing))},
    )


@dg.definitions
def defs() -> dg.Definitions:
    """Loaded by ``dagster dev``: the registry named by CLOSEDLOOP_CONFIG, or the project's own."""
    return build_definitions(registry_from_environment())
