"""The code location: every model's assets, checks and jobs, built from the registry in one place."""

from __future__ import annotations

import dagster as dg

from assets.factory import build_model_assets
from assets.report import build_report_asset
from checks.contract import build_contract_checks
from checks.drift import build_drift_checks
from checks.ops_guards import build_ops_guard_checks
from checks.slos import build_slo_checks
from closedloop.core.specs import Registry
from closedloop.registry import registry_from_environment
from orchestration.comparison_job import build_compare_job
from orchestration.jobs import build_pipeline_job, build_report_job
from orchestration.runbook_jobs import build_decide_action_job, build_incident_job, build_renotify_job
from orchestration.schedules import build_hourly_refresh_job, build_schedules
from orchestration.sensors import build_incident_sensor, build_reminder_sensor, build_run_failure_sensor
from wiring.automation import build_automation_sensor
from wiring.resources import LakeResource, WebhookResource


def build_definitions(registry: Registry) -> dg.Definitions:
    assets, checks, jobs, schedules = [], [], [], []
    for model in registry.models.values():
        assets += [*build_model_assets(model), build_report_asset(model, registry)]
        checks += build_contract_checks(model) + build_ops_guard_checks(model) + build_drift_checks(model)
        checks += build_slo_checks(model)
        jobs += [build_pipeline_job(model), build_report_job(model), build_hourly_refresh_job(model)]
        schedules += build_schedules(model)
    incident, renotify = build_incident_job(registry), build_renotify_job(registry)
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[*jobs, incident, renotify, build_decide_action_job(registry), build_compare_job(registry)],
        schedules=schedules,
        sensors=[
            build_automation_sensor(),
            build_incident_sensor(registry, incident),
            build_reminder_sensor(registry, renotify),
            build_run_failure_sensor(registry),
        ],
        # Pipeline jobs choose the multiprocess executor themselves (orchestration/jobs.py).
        executor=dg.in_process_executor,
        resources={
            "lake": LakeResource(root=str(registry.lake), landing=str(registry.landing)),
            "webhook": WebhookResource(),
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    """Loaded by ``dagster dev``: the registry named by CLOSEDLOOP_CONFIG, or the project's own."""
    return build_definitions(registry_from_environment())
