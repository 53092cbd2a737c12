"""The code location: what it defines is deliberate (a snapshot), and Dagster's own validator accepts it."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from closedloop.inputs.expectations import checks_for
from orchestration.definitions import build_definitions
from tests.helpers import TEST_REGISTRY

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (["dg", "check", "defs"], "All definitions loaded successfully"),
        (["dagster", "definitions", "validate", "-w", "workspace.yaml"], "All code locations passed validation"),
    ],
)
@pytest.mark.slow
def test_dagster_tools_load_the_code_location(tmp_path, command, says):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CLOSEDLOOP_CONFIG": str(TEST_REGISTRY),
        "CLOSEDLOOP_LAKE": str(tmp_path / "lake"),
        "VIRTUAL_ENV": str(bin_dir.parent),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
    }
    done = subprocess.run([str(bin_dir / command[0]), *command[1:]], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert says in done.stdout + done.stderr


ASSETS = ["labels", "ops_stats", "predictions", "profiles", "drift", "outcomes", "eval_stats", "rolling_eval", "report"]
# Only a model with a pairing_key has shadow scores to pair.
SHADOW_MODELS = ("fraud",)
# Each SLO is a check on the asset its metric comes from.
SLO_CHECKS = {
    "fraud": {
        "predictions": ["review_rate_in_band"],
        "rolling_eval": ["auc_30d_floor"],
        "drift": ["inputs_within_drift_limits", "score_distribution_stable"],
    },
    "ticket_triage": {
        "ops_stats": ["cost_ceiling", "p95_latency_ceiling"],
        "rolling_eval": ["auc_7d_floor"],
        "outcomes": ["reviews_arriving"],
    },
}
DRIFT_CHECKS = [
    "decision_rate_within_drift_limits",
    "features_within_drift_limits",
    "inputs_indistinguishable_from_baseline",
    "score_within_drift_limits",
]
CONTRACT_CHECKS = {
    "labels": [
        "labels_arrive_after_their_predictions",
        "labels_have_unique_ids",
        "labels_match_contract",
        "labels_quarantine_share_within_limit",
        "labels_reference_known_predictions",
    ],
    "predictions": [
        "predictions_categories_mostly_known",
        "predictions_columns_match_registry",
        "predictions_have_unique_ids",
        "predictions_landed",
        "predictions_match_contract",
        "predictions_null_rates_within_ceilings",
        "predictions_quarantine_share_within_limit",
        "predictions_values_within_baseline_ranges",
    ],
}
SHADOW_CHECKS = ["shadow_have_unique_ids", "shadow_match_contract", "shadow_quarantine_share_within_limit"]
OPS_CHECKS = {
    "fraud": ["latency_p95_within_ceiling"],
    "ticket_triage": [
        "cost_per_1k_within_ceiling",
        "error_rate_within_ceiling",
        "fallback_rate_within_ceiling",
        "latency_p95_within_ceiling",
        "projected_daily_spend_within_budget",
    ],
}
MODELS = ("fraud", "ticket_triage")


def test_definitions_snapshot(registry):
    defs = build_definitions(registry)
    graph = defs.resolve_asset_graph()
    keys = sorted(key.to_user_string() for key in graph.get_all_asset_keys())
    shadow = [f"{model}/shadow" for model in SHADOW_MODELS]
    assert keys == sorted([f"{model}/{name}" for model in MODELS for name in ASSETS] + shadow)
    checks = sorted(key.to_user_string() for key in graph.asset_check_keys)
    expected = _contract_checks()
    expected += [f"{m}/ops_stats:{name}" for m in MODELS for name in OPS_CHECKS[m]]
    expected += [f"{m}/drift:{name}" for m in MODELS for name in DRIFT_CHECKS]
    expected += [f"{m}/{table}:{name}" for m in MODELS for table, names in SLO_CHECKS[m].items() for name in names]
    assert checks == sorted(expected)
    model_jobs = [f"{m}_{kind}" for m in MODELS for kind in ("pipeline", "report", "hourly_refresh")]
    other_jobs = ["incident", "renotify", "decide_action", "compare_versions"]
    assert sorted(job.name for job in defs.jobs) == sorted([*model_jobs, *other_jobs])
    assert sorted(s.name for s in defs.schedules) == sorted(
        f"{m}_{kind}" for m in MODELS for kind in ("daily", "hourly", "daily_report")
    )
    pipeline = defs.resolve_job_def("fraud_pipeline").asset_layer.selected_asset_keys
    assert dg.AssetKey(["fraud", "report"]) not in pipeline and dg.AssetKey(["fraud", "drift"]) in pipeline
    sensors = {s.name: s for s in defs.sensors}
    assert sorted(sensors) == [
        "closedloop_automation",
        "closedloop_incidents",
        "closedloop_reminders",
        "closedloop_run_failures",
    ]
    assert {s.default_status for s in sensors.values()} == {dg.DefaultSensorStatus.RUNNING}


def _contract_checks() -> list[str]:
    checks = [f"{m}/{table}:{name}" for m in MODELS for table, names in CONTRACT_CHECKS.items() for name in names]
    return checks + [f"{m}/shadow:{name}" for m in SHADOW_MODELS for name in SHADOW_CHECKS]


def test_assets_carry_the_registrys_owners_group_and_partitions(registry):
    graph = build_definitions(registry).resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        model = registry.model(key.path[0])
        node = graph.get(key)
        assert node.owners == [model.owner]
        assert node.group_name == model.name
        assert node.tags["model"] == model.name and node.tags["domain"] == model.tags["domain"]
        partitions = node.partitions_def
        assert isinstance(partitions, dg.DailyPartitionsDefinition)
        assert partitions.start.date() == model.start_date
        assert node.backfill_policy == dg.BackfillPolicy.single_run()
        assert node.description


def test_labels_depend_on_the_predictions_they_can_refer_to(registry):
    graph = build_definitions(registry).resolve_asset_graph()
    labels = graph.get(dg.AssetKey(["ticket_triage", "labels"]))
    predictions = dg.AssetKey(["ticket_triage", "predictions"])
    assert labels.parent_keys == {predictions}
    mapping = labels.assets_def.get_partition_mapping(predictions)
    assert mapping == dg.TimeWindowPartitionMapping(start_offset=-3, end_offset=0)


def test_contract_errors_gate_downstream_work_and_warnings_ops_and_slo_checks_do_not(registry):
    graph = build_definitions(registry).resolve_asset_graph()
    contract = set(_contract_checks())
    for key in graph.asset_check_keys:
        spec = graph.get_check_spec(key)
        name = key.to_user_string()
        error = False
        if name in contract:
            model, table = key.asset_key.path
            check = next(c for c in checks_for(table) if c.name == key.name)
            error = check.severity(registry.model(model)) == "error"
            assert spec.description.endswith("stops the day's downstream assets." if error else "still run."), name
        assert spec.blocking == error, name
    warning = graph.get_check_spec(
        dg.AssetCheckKey(dg.AssetKey(["fraud", "predictions"]), "predictions_null_rates_within_ceilings")
    )
    assert not warning.blocking and "Warning only" in warning.description
