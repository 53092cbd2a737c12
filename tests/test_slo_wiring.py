"""SLOs in Dagster: one check per SLO on the asset of its metric, every period recorded in
slo_evaluations, `closedloop status`, and the incidents the sensor opens and closes from them."""

import datetime as dt
import json
import shutil

import dagster as dg
import pytest

from closedloop.control.incidents import read_incidents
from closedloop.control.serving import read_serving
from closedloop.control.slo import read_evaluations
from closedloop.core.lake import Lake
from closedloop.registry import load_registry
from closedloop.simulator import DEFAULT_START, simulate
from closedloop.simulator.incidents import INCIDENTS
from orchestration import cli
from orchestration.definitions import build_definitions
from orchestration.runner import _failed_checks, handle_incidents
from tests.helpers import TEST_REGISTRY

pytestmark = pytest.mark.slow  # one simulated spike run, shared by the module

SPIKE = next(i for i in INCIDENTS if i.id == "triage_traffic_spike")
SPIKE_DAY = DEFAULT_START + dt.timedelta(days=SPIKE.start_day)


@pytest.fixture(scope="module")
def spike_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("slo")
    simulate(root / "landing", days=SPIKE.start_day + 2, seed=7, fraud_rows_per_day=100, triage_rows_per_day=1500)
    registry = load_registry(TEST_REGISTRY, landing=str(root / "landing"), lake=str(root / "lake"))
    selection = [dg.AssetKey(["ticket_triage", name]) for name in ("predictions", "ops_stats")]
    result = (
        build_definitions(registry)
        .resolve_job_def("ticket_triage_pipeline")
        .execute_in_process(
            instance=dg.DagsterInstance.ephemeral(),
            asset_selection=selection,
            tags={
                "dagster/asset_partition_range_start": DEFAULT_START.isoformat(),
                "dagster/asset_partition_range_end": (SPIKE_DAY + dt.timedelta(days=1)).isoformat(),
            },
            raise_on_error=False,
        )
    )
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    return registry, result, checks


def test_hourly_slos_breach_in_the_spikes_first_hour_and_nowhere_else(spike_run):
    _, result, checks = spike_run
    assert result.success  # SLO checks report; they do not block
    for name in ("p95_latency_ceiling", "cost_ceiling"):
        check = checks[name]
        assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR, name
        # In the same words as failing_periods and the ops guards' first failure.
        assert check.metadata["first_failure"].value.startswith(f"{SPIKE_DAY} {SPIKE.hours[0]:02d}:00: "), name
        spike_hours = [f"{SPIKE_DAY} {h:02d}:00" for h in range(*SPIKE.hours)]
        assert check.metadata["failing_periods"].value == spike_hours, name  # breached until the first quiet hour
    # The run summary of the CLI folds an hourly SLO's hours into their day.
    failed = {f.check: f for f in _failed_checks(result)}
    assert failed["p95_latency_ceiling"].days == failed["cost_ceiling"].days == (str(SPIKE_DAY),)


def test_slos_are_checked_on_the_asset_of_their_metric(spike_run):
    _, _, checks = spike_run
    assert {
        name: c.asset_key.path[-1] for name, c in checks.items() if name in ("p95_latency_ceiling", "cost_ceiling")
    } == {
        "p95_latency_ceiling": "ops_stats",
        "cost_ceiling": "ops_stats",
    }
    assert "auc_7d_floor" not in checks  # rolling_eval was not materialized in this run, so its SLOs were not judged


def test_every_period_is_recorded_once_and_recovers(spike_run):
    registry, _, _ = spike_run
    rows = read_evaluations(Lake(registry.lake, registry.landing), "ticket_triage").to_pylist()
    p95 = [r for r in rows if r["slo"] == "p95_latency_ceiling"]
    assert len(p95) == len({r["period"] for r in p95}) == 24 * (SPIKE.start_day + 2)
    after = [r for r in p95 if r["period"] >= f"{SPIKE_DAY}T{SPIKE.hours[1]:02d}"]
    assert after and after[-1]["state"] == "ok"


def test_status_prints_each_slos_latest_state(spike_run, capsys, monkeypatch):
    registry, _, _ = spike_run
    monkeypatch.setenv("CLOSEDLOOP_LANDING", str(registry.landing))
    monkeypatch.setenv("CLOSEDLOOP_LAKE", str(registry.lake))
    assert cli.main(["status", "--model", "ticket_triage", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    states = {s["slo"]: s["state"] for s in payload["slos"]}
    assert states == {
        "p95_latency_ceiling": "ok",
        "cost_ceiling": "ok",
        "auc_7d_floor": "no data",
        "reviews_arriving": "no data",
    }
    assert payload["incidents"] == []


def test_the_spike_opens_an_incident_per_slo_that_acts_and_closes_when_the_hours_recover(spike_run, tmp_path):
    shared, _, _ = spike_run
    # Incidents, actions and the serving file are written to a copy: the module's lake stays without incidents.
    shutil.copytree(shared.lake, tmp_path / "lake")
    registry = load_registry(TEST_REGISTRY, landing=str(shared.landing), lake=str(tmp_path / "lake"))
    instance = dg.DagsterInstance.ephemeral()
    runs = handle_incidents(registry, instance)
    assert [r.success for r in runs] == [True] * 4  # two SLOs, each opened and closed
    lake = Lake(registry.lake, registry.landing)
    incidents = {i["slo"]: i for i in read_incidents(lake, "ticket_triage")}
    assert sorted(incidents) == ["cost_ceiling", "p95_latency_ceiling"]
    for incident in incidents.values():
        assert incident["opened"] == f"{SPIKE_DAY}T{SPIKE.hours[0]:02d}:00:00+00:00"
        assert incident["closed"] == f"{SPIKE_DAY}T{SPIKE.hours[1]:02d}:00:00+00:00" and incident["state"] == "closed"
        assert incident["action_result"] == "applied"
    assert (
        read_serving(lake, registry.model("ticket_triage"))["fallback"] is True
    )  # the kill switch stays on for a person
    assert handle_incidents(registry, instance) == []  # handled: the next evaluation of the sensor asks for nothing
    assert read_incidents(Lake(shared.lake, shared.landing), "ticket_triage") == []  # the module's lake is untouched
