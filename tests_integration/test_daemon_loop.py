"""The loop as production runs it: a backfill launched on a running deployment (dagster-webserver,
dagster-daemon, the instance in PostgreSQL) is executed by the daemon's run queue with the multiprocess
executor; the daemon's own incident sensor tick then opens the incidents of the injected faults, their
incident runs act and tell the owner on a webhook; the run records are in PostgreSQL and the days in the lake.
"""

import json

import dagster as dg
import psycopg2
import pytest

from closedloop.control.incidents import read_incidents, transition_incident_id, transitions
from closedloop.control.scorecard import score
from closedloop.core.lake import Lake
from closedloop.registry import load_registry
from closedloop.simulator.incidents import TRUTH_FILE
from orchestration.runbook_jobs import INCIDENT_JOB
from orchestration.sensors import INCIDENT_SENSOR
from tests_integration.helpers import DAYS, Deployment, launch_job_backfill, wait_for
from wiring.tags import PARTITION_WRITER_TAG

MODELS = ("fraud", "ticket_triage")
# Bounds, not timings: on two cores shared with other work the backfill runs took up to six minutes.
PIPELINE_SECONDS = 540
INCIDENT_SECONDS = 240
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def _describe(runs: list[dg.DagsterRun]) -> str:
    return ", ".join(f"{run.job_name} {run.run_id[:8]} {run.status.value}" for run in runs) or "no runs yet"


def _failures(instance: dg.DagsterInstance, runs: list[dg.DagsterRun]) -> str:
    failed = [run for run in runs if run.status != dg.DagsterRunStatus.SUCCESS]
    messages = []
    for run in failed:
        events = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        messages.append(f"{run.job_name} {run.run_id}: " + "; ".join(e.message or "" for e in events)[:1500])
    return "\n".join(messages)


@pytest.fixture(scope="module")
def backfilled(landed, deployment: Deployment, instance: dg.DagsterInstance) -> dict[str, list[dg.DagsterRun]]:
    """Both models' pipelines backfilled over the seven days, through the running webserver; their runs once
    every one has finished (each must have succeeded)."""
    backfills = {model: launch_job_backfill(deployment.base_url, f"{model}_pipeline", DAYS) for model in MODELS}

    def runs() -> dict[str, list[dg.DagsterRun]]:
        return {
            model: list(instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill})))
            for model, backfill in backfills.items()
        }

    wait_for(
        "the daemon's backfill of both pipelines",
        PIPELINE_SECONDS,
        lambda: all(found and all(r.status in FINISHED for r in found) for found in runs().values()),
        lambda: _describe([r for found in runs().values() for r in found]) + " (see the daemon's log)",
    )
    finished = runs()
    every = [r for found in finished.values() for r in found]
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in every), _failures(instance, every)
    return finished


def _expected_incident_runs(lake: Lake) -> set[str]:
    """The run key of the incident run that each SLO transition recorded in the lake asks for."""
    return {
        f"{transition_incident_id(row)}:{row['transition']}" for model in MODELS for row in transitions(lake, model)[0]
    }


@pytest.fixture(scope="module")
def incident_runs(backfilled, production, instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    """The incident runs the daemon's sensor launched for every transition, once all have finished."""
    lake = Lake(root=production.lake, landing=production.landing)
    expected = _expected_incident_runs(lake)
    assert expected, "the backfill recorded no SLO transition: nothing for the incident sensor to do"

    def runs() -> list[dg.DagsterRun]:
        return list(instance.get_runs(dg.RunsFilter(job_name=INCIDENT_JOB)))

    def settled() -> bool:
        found = runs()
        keys = {r.tags.get("dagster/run_key") for r in found}
        return expected <= keys and all(r.status in FINISHED for r in found)

    wait_for(
        f"incident runs for the {len(expected)} SLO transitions",
        INCIDENT_SECONDS,
        settled,
        lambda: f"expected run keys {sorted(expected)}; runs: {_describe(runs())}",
    )
    found = runs()
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in found), _failures(instance, found)
    assert sorted(r.tags["dagster/run_key"] for r in found) == sorted(expected), "an SLO transition ran twice"
    return found


def test_a_backfill_runs_under_the_daemon_as_one_multiprocess_run_per_model(backfilled, instance):
    for model, runs in backfilled.items():
        [run] = runs
        assert run.job_name == f"{model}_pipeline" and run.tags[PARTITION_WRITER_TAG] == model
        assert (run.tags["dagster/asset_partition_range_start"], run.tags["dagster/asset_partition_range_end"]) == (
            DAYS[0],
            DAYS[-1],
        )
        engine = [e.message for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)]
        assert any("multiprocess executor" in (message or "") for message in engine), engine[:5]
        starts = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)
        step_processes = {e.dagster_event.pid for e in starts if e.dagster_event}
        assert len(step_processes) > 1, "the steps ran in one process, not the multiprocess executor's"


def test_the_daemons_sensor_opens_the_injected_incidents_and_tells_the_owner(incident_runs, production, webhook):
    registry = load_registry(production.registry, landing=str(production.landing), lake=str(production.lake))
    lake = Lake(root=production.lake, landing=production.landing)
    truth = json.loads((production.landing / TRUTH_FILE).read_text())
    assert {i["id"] for i in truth["incidents"]} == {"fraud_new_payment_type", "triage_traffic_spike"}
    incidents = {model: read_incidents(lake, model) for model in MODELS}
    card = score(truth, incidents, {m: registry.model(m).labels.maturity_days for m in MODELS})
    assert card.recall == 1.0 and all(d.on_time for d in card.detections), card.as_dict()
    assert card.false_alerts == []
    for run in incident_runs:
        assert run.tags["dagster/sensor_name"] == INCIDENT_SENSOR, "an incident run the daemon's sensor did not launch"
    _, handler = webhook
    posted = [json.dumps(body) for _, body in handler.received]
    assert len(posted) == len(incident_runs), posted
    for incident in (i for opened in incidents.values() for i in opened):
        assert any(incident["incident_id"] in text for text in posted), f"{incident['incident_id']} was never posted"
        assert "failed" not in incident["notification"], incident["notification"]


def test_the_run_records_are_in_postgres_and_the_days_in_the_lake(incident_runs, backfilled, production, postgres):
    with psycopg2.connect(
        host="127.0.0.1", port=postgres.port, dbname=postgres.database, user=postgres.user, password=postgres.password
    ) as connection, connection.cursor() as cursor:  # fmt: skip
        cursor.execute("select run_id, status from runs")
        stored = dict(cursor.fetchall())
    ours = [*incident_runs, *(run for runs in backfilled.values() for run in runs)]
    assert {run.run_id: "SUCCESS" for run in ours}.items() <= stored.items()
    assert not list(production.dagster_home.glob("**/*.db")), "the instance wrote SQLite files beside Postgres"
    lake = Lake(root=production.lake, landing=production.landing)
    for model in MODELS:
        for table in ("predictions", "drift", "slo_evaluations"):
            files = lake.root.glob(f"{model}/{table}/*/*.parquet")
            written = sorted(p.parent.name.removeprefix("date=") for p in files)
            assert written == DAYS, f"{model}/{table}: {written}"
