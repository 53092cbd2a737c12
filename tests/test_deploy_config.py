"""The production instance settings (deploy/dagster.yaml): Dagster accepts them, their run queue limits are
the local instance's, every limit is on a tag closedloop's runs carry, and pipeline runs use processes."""

import datetime as dt
import re
from pathlib import Path

import dagster as dg
import yaml
from dagster._config import EvaluateValueResult, process_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.storage.config import pg_config

from closedloop.core.environment import DAGSTER_YAML
from orchestration.definitions import build_definitions
from orchestration.jobs import PIPELINE_EXECUTOR, pipeline_job_name
from orchestration.runbook_jobs import INCIDENT_JOB
from orchestration.sensors import incident_run_requests
from tests.helpers import HOUR, record_triage_evaluations, triage_evaluation
from wiring.resources import LakeResource
from wiring.tags import PARTITION_WRITER_TAG, SLO_TAG

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
POSTGRES_ENVIRONMENT = {
    "DAGSTER_POSTGRES_HOST": "db.internal",
    "DAGSTER_POSTGRES_PORT": "6543",
    "DAGSTER_POSTGRES_DB": "dagster",
    "DAGSTER_POSTGRES_USER": "closedloop",
    "DAGSTER_POSTGRES_PASSWORD": "s3cret",
}


def _run_limits(settings: dict) -> dict[str, int]:
    return {limit["key"]: limit["limit"] for limit in settings["concurrency"]["runs"]["tag_concurrency_limits"]}


def _postgres_settings() -> EvaluateValueResult:
    """The Postgres storage settings as dagster-postgres reads them when the instance starts."""
    config, _ = dagster_instance_config(str(DEPLOY))
    assert config["run_retries"]["enabled"] and not config["run_retries"]["retry_on_asset_or_op_failure"]
    return process_config(pg_config(), config["storage"]["postgres"])


def test_dagster_accepts_the_production_settings_with_postgres_from_the_environment(monkeypatch):
    for name, value in POSTGRES_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    postgres = _postgres_settings().value["postgres_db"]
    assert (postgres["hostname"], postgres["port"], postgres["password"]) == ("db.internal", 6543, "s3cret")


def test_the_production_settings_name_a_missing_variable(monkeypatch):
    for name, value in POSTGRES_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DAGSTER_POSTGRES_HOST")
    result = _postgres_settings()
    assert not result.success and 'variable "DAGSTER_POSTGRES_HOST" which is not set' in result.errors[0].message


def test_production_and_the_local_instance_limit_the_same_tags():
    production = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    assert _run_limits(production) == _run_limits(yaml.safe_load(DAGSTER_YAML)) == {PARTITION_WRITER_TAG: 1, SLO_TAG: 1}


def test_every_run_that_writes_a_models_partitions_carries_the_limited_tag(registry):
    defs = build_definitions(registry)
    for model in registry.models:
        for kind in ("pipeline", "hourly_refresh", "report"):
            assert defs.resolve_job_def(f"{model}_{kind}").run_tags[PARTITION_WRITER_TAG] == model
    assert PARTITION_WRITER_TAG not in defs.resolve_job_def(INCIDENT_JOB).run_tags


def test_incident_runs_carry_the_slo_tag(registry, lake):
    record_triage_evaluations(
        lake, triage_evaluation("p95_latency_ceiling", HOUR, "breached", 12_600.0, "breached", HOUR)
    )
    lake_resource = LakeResource(root=str(lake.root), landing=str(lake.landing))
    [request], _ = incident_run_requests(registry, lake_resource, None, dt.datetime.now(dt.UTC))
    assert request.tags[SLO_TAG] == "ticket_triage.p95_latency_ceiling"


def test_pipeline_runs_use_the_multiprocess_executor_and_the_rest_run_in_process(registry):
    defs = build_definitions(registry)
    assert defs.resolve_job_def(pipeline_job_name(registry.model("fraud"))).executor_def is PIPELINE_EXECUTOR
    assert defs.resolve_job_def(INCIDENT_JOB).executor_def is dg.in_process_executor


def test_the_makefile_runs_modules_that_exist():
    modules = re.findall(r"python -m ([\w.]+)", (ROOT / "Makefile").read_text())
    assert modules
    for module in modules:
        assert (ROOT / Path(*module.split("."))).with_suffix(".py").exists() or (
            ROOT / Path(*module.split(".")) / "__main__.py"
        ).exists(), f"the Makefile runs `python -m {module}`, which does not exist"
