"""The Dagster wiring end to end, in-process, on simulated production data."""

import datetime as dt
import os

import dagster as dg
import pyarrow as pa
import pytest

from closedloop.core.lake import Lake
from closedloop.registry import load_registry
from closedloop.simulator import DEFAULT_START, simulate
from orchestration.definitions import build_definitions
from orchestration.runner import count_steps, materialize_range
from tests.helpers import TEST_REGISTRY, day, fraud_rows, land

DAYS = 3


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    root = tmp_path_factory.mktemp("simulated") / "landing"
    simulate(root, days=DAYS, seed=11, fraud_rows_per_day=300, triage_rows_per_day=200)
    return root


@pytest.fixture
def registry(landing, tmp_path):
    return load_registry(TEST_REGISTRY, landing=str(landing), lake=str(tmp_path / "lake"))


def run_range(registry, model, start, end, instance=None):
    """Ingest only (predictions, labels and their checks): the rest of the graph has its own tests."""
    job = build_definitions(registry).resolve_job_def(f"{model}_pipeline")
    return job.execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(),
        asset_selection=[dg.AssetKey([model, "predictions"]), dg.AssetKey([model, "labels"])],
        raise_on_error=False,
        tags={"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end},
    )


def test_rematerializing_replaces_partitions_without_duplicates(registry):
    assert run_range(registry, "fraud", day(0), day(2)).success
    lake = Lake(registry.lake, registry.landing)
    paths = [lake.partition_path("fraud", t, day(i)) for t in ("predictions", "labels") for i in range(3)]
    before = [p.read_bytes() for p in paths]
    assert run_range(registry, "fraud", day(0), day(2)).success
    assert [p.read_bytes() for p in paths] == before


def test_a_flood_of_bad_rows_stops_downstream_assets(registry, landing, tmp_path):
    own = load_registry(TEST_REGISTRY, landing=str(tmp_path / "landing"), lake=str(tmp_path / "lake"))
    lake = Lake(own.lake, own.landing)
    ids = [f"p{i}" for i in range(50)]
    land(lake, "fraud", "predictions", day(0), fraud_rows(day(0), ids, score=pa.array([float("nan")] * 5 + [0.3] * 45)))

    result = run_range(own, "fraud", day(0), day(0))

    assert not result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    check = evaluations["predictions_quarantine_share_within_limit"]
    assert not check.passed and check.metadata["failing_periods"].value == [day(0)]
    assert (
        '"share": 0.1' in check.metadata["failures"].value and '"max_share": 0.01' in check.metadata["failures"].value
    )
    assert evaluations["predictions_match_contract"].passed  # the accepted rows themselves are fine
    started = {e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START}
    assert "fraud__predictions" in started and "fraud__labels" not in started
    assert not lake.partition_path("fraud", "labels", day(0)).exists()


@pytest.mark.slow
def test_runner_reports_progress_and_a_one_line_failure(registry, tmp_path):
    steps = []
    instance = dg.DagsterInstance.ephemeral()
    outcomes = materialize_range(
        registry,
        ["ticket_triage"],
        DEFAULT_START,
        DEFAULT_START + dt.timedelta(days=1),
        instance,
        lambda m, s: steps.append((m, s)),
    )
    assert [o.success for o in outcomes] == [True]
    assert len(steps) == count_steps(registry, ["ticket_triage"]) >= 4
    assert {m for m, _ in steps} == {"ticket_triage"} and ("ticket_triage", "ticket_triage__predictions") in steps

    broken = load_registry(TEST_REGISTRY, landing=str(tmp_path / "landing"), lake=str(tmp_path / "lake2"))
    lake = Lake(broken.lake, broken.landing)
    land(lake, "fraud", "predictions", day(0), fraud_rows(day(0), ["a"]).drop_columns(["merchant_id"]))
    [outcome] = materialize_range(broken, ["fraud"], DEFAULT_START, DEFAULT_START, instance)
    assert not outcome.success
    assert outcome.failure.startswith("fraud__predictions: ")
    assert "missing required column(s) 'merchant_id'" in outcome.failure and "\n" not in outcome.failure

    land(lake, "fraud", "predictions", day(0), fraud_rows(day(0), ["a", "b"], score=[float("nan"), 0.2]))
    [outcome] = materialize_range(broken, ["fraud"], DEFAULT_START, DEFAULT_START, instance)
    assert outcome.failure == (
        f"check fraud/predictions:predictions_quarantine_share_within_limit failed on {day(0)}: "
        'expected {"max_share": 0.01}, observed {"share": 0.5, "quarantined": 1, "accepted": 1}'
    )


@pytest.mark.slow
def test_each_models_range_runs_in_its_own_process_on_a_shared_instance(registry):
    """On an instance other processes can write to, the models' runs go at once, one process each."""
    with dg.instance_for_test() as instance:
        outcomes = materialize_range(registry, ["fraud", "ticket_triage"], DEFAULT_START, DEFAULT_START, instance)

        assert [(o.model, o.success) for o in outcomes] == [("fraud", True), ("ticket_triage", True)]
        pids = set()
        for outcome in outcomes:
            assert instance.get_run_by_id(outcome.run_id).status == dg.DagsterRunStatus.SUCCESS
            [started] = [
                e.message for e in instance.all_logs(outcome.run_id) if "Executing steps in process" in e.message
            ]
            pids.add(started.split("pid: ")[1].rstrip(")"))
        assert len(pids) == 2 and str(os.getpid()) not in pids


def test_an_in_process_run_waits_for_another_run_of_its_model(registry, tmp_path):
    """``closedloop run`` bypasses the run queue: it holds the model's pipeline lock instead, so a second
    run of the model starts only when the first has ended."""
    import threading

    from orchestration.runner import PIPELINE_LOCK

    lake = Lake(registry.lake, registry.landing)
    holding, release, waited = threading.Event(), threading.Event(), []

    def first_run() -> None:  # another run of ticket_triage, holding its lock until told to end
        with lake.locked("ticket_triage", PIPELINE_LOCK):
            holding.set()
            release.wait()

    def on_wait(model: str, lock) -> None:
        waited.append((model, lock.name))
        release.set()  # the first run ends now that the second is waiting for it

    other = threading.Thread(target=first_run)
    other.start()
    holding.wait()
    instance = dg.DagsterInstance.ephemeral()
    [outcome] = materialize_range(registry, ["ticket_triage"], DEFAULT_START, DEFAULT_START, instance, on_wait=on_wait)
    other.join()
    assert waited == [("ticket_triage", "pipeline.lock")] and outcome.success
