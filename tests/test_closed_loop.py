"""End to end on the simulator: 60 days through the whole pipeline and the incident sensor, then
every injected incident must be caught on its day and nothing may fire on a clean day."""

import json

import dagster as dg
import pytest

from closedloop.incidents import read_incidents
from closedloop.lake import Lake
from closedloop.registry import DEFAULT_CONFIG, load_registry
from closedloop.scorecard import score
from closedloop.simulator import DEFAULT_START, simulate
from orchestration import cli
from orchestration.runner import handle_incidents, materialize_range

DAYS = 60


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    root = tmp_path_factory.mktemp("closed_loop")
    result = simulate(root / "landing", days=DAYS, seed=7, fraud_rows_per_day=1500, triage_rows_per_day=3000)
    registry = load_registry(DEFAULT_CONFIG, landing=str(root / "landing"), lake=str(root / "lake"))
    instance = dg.DagsterInstance.ephemeral()
    runs = materialize_range(registry, list(registry.models), DEFAULT_START, result.end, instance)
    incident_runs = handle_incidents(registry, instance)
    lake = Lake(registry.lake, registry.landing)
    incidents = {name: read_incidents(lake, name) for name in registry.models}
    maturity = {name: model.labels.maturity_days for name, model in registry.models.items()}
    card = score(json.loads(result.truth_path.read_text()), incidents, maturity)
    return registry, runs, incident_runs, incidents, card


@pytest.mark.slow
def test_every_injected_incident_is_caught_on_its_day_and_clean_days_stay_quiet(production):
    _, runs, incident_runs, _, card = production
    assert all(run.success for run in runs + incident_runs)
    assert card.recall == 1.0, [d for d in card.detections if d.caught_by is None]
    late = [d for d in card.detections if d.on_time is False]
    assert late == []
    assert card.false_alerts == []
    by_id = {d.truth_id: d for d in card.detections}
    assert by_id["fraud_v12_calibration_shift"].slo == "review_rate_in_band"  # the canary, on its first day
    assert by_id["triage_label_outage"].slo == "reviews_arriving"
    drift = by_id["triage_concept_drift"]
    assert drift.gradual and drift.slo == "auc_7d_floor" and drift.delay_days <= 20


@pytest.mark.slow
def test_incidents_act_and_recover_as_their_slos_say(production):
    registry, _, _, incidents, _ = production
    fraud = {i["slo"]: i for i in incidents["fraud"]}
    assert fraud["review_rate_in_band"]["version"] == "v12" and fraud["review_rate_in_band"]["state"] == "open"
    assert fraud["review_rate_in_band"]["action_result"].startswith("pending approval: closedloop approve act_")
    inputs = [i for i in incidents["fraud"] if i["slo"] == "inputs_within_drift_limits"]
    assert [(i["opened"], i["state"]) for i in inputs] == [("2026-09-13", "closed"), ("2026-09-21", "closed")]
    triage = {i["slo"]: i for i in incidents["ticket_triage"]}
    assert triage["p95_latency_ceiling"]["action_result"] == "applied" and triage["p95_latency_ceiling"]["state"] == "closed"
    assert (triage["reviews_arriving"]["opened"], triage["reviews_arriving"]["closed"]) == ("2026-09-27", "2026-10-02")


@pytest.mark.slow
def test_status_and_approve_from_the_command_line(production, capsys, monkeypatch):
    registry, _, _, incidents, _ = production
    monkeypatch.setenv("CLOSEDLOOP_LANDING", str(registry.landing))
    monkeypatch.setenv("CLOSEDLOOP_LAKE", str(registry.lake))
    assert cli.main(["status", "--model", "fraud", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert {s["slo"]: s["state"] for s in status["slos"]}["review_rate_in_band"] == "breached"
    assert set(status["incidents"][0]) >= {"model", "slo", "metric", "opened", "closed", "severity", "action", "state"}
    assert cli.main(["actions", "--state", "pending", "--json"]) == 0
    pending = json.loads(capsys.readouterr().out)["actions"]
    rollback = next(a for a in pending if a["type"] == "rollback")
    assert cli.main(["approve", rollback["action_id"], "--who", "alice@example.com", "--json"]) == 0
    applied = json.loads(capsys.readouterr().out)
    assert applied["state"] == "applied" and json.loads(applied["after"])["active_version"] == "v11"
    assert cli.main(["approve", rollback["action_id"]]) == 2
    assert "is applied, not pending" in capsys.readouterr().err
