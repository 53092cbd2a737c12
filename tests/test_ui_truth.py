"""The Dagster UI tells the truth per day: in a range run each partition keeps its own numbers and check results."""

import datetime as dt

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from closedloop.core.lake import Lake
from closedloop.registry import DEFAULT_CONFIG, load_registry
from closedloop.simulator import simulate
from orchestration.definitions import build_definitions
from orchestration.schedules import build_schedules
from tests.helpers import TEST_REGISTRY, day
from wiring.partitions import daily_partitions

DAYS = 12
FIRST, DAMAGED = 9, 11  # the run covers days 9..11; day 11 logs a column the registry does not know
DEMO_END = dt.date(2026, 10, 30)
COLUMNS_CHECK = dg.AssetCheckKey(dg.AssetKey(["fraud", "predictions"]), "predictions_columns_match_registry")


@pytest.fixture(scope="module")
def range_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui_truth")
    simulate(root / "landing", days=DAYS, seed=3, fraud_rows_per_day=300, triage_rows_per_day=50)
    for path in (root / "landing" / "fraud" / "predictions" / f"date={day(DAMAGED)}").glob("*.parquet"):
        table = pq.read_table(path)
        pq.write_table(table.append_column("experiment_arm", pa.array(["b"] * table.num_rows)), path)
    registry = load_registry(TEST_REGISTRY, landing=str(root / "landing"), lake=str(root / "lake"))
    instance = dg.DagsterInstance.ephemeral()
    result = (
        build_definitions(registry)
        .resolve_job_def("fraud_pipeline")
        .execute_in_process(
            instance=instance,
            asset_selection=[dg.AssetKey(["fraud", t]) for t in ("predictions", "labels", "ops_stats")],
            raise_on_error=False,
            tags={
                "dagster/asset_partition_range_start": day(FIRST),
                "dagster/asset_partition_range_end": day(DAMAGED),
            },
        )
    )
    return Lake(registry.lake, registry.landing), instance, result


def _latest_metadata(instance: dg.DagsterInstance, asset: dg.AssetKey) -> dict[str, dict]:
    records = instance.fetch_materializations(asset, limit=100).records
    latest: dict[str, dict] = {}
    for record in records:  # newest first
        latest.setdefault(record.partition_key, record.asset_materialization.metadata)
    return latest


def test_each_partition_carries_its_own_numbers(range_run):
    lake, instance, _ = range_run
    days = [day(i) for i in range(FIRST, DAMAGED + 1)]
    predictions = _latest_metadata(instance, dg.AssetKey(["fraud", "predictions"]))
    assert set(predictions) == set(days)
    for d in days:
        assert predictions[d]["accepted_rows"].value == lake.read_partition("fraud", "predictions", d).num_rows, d
        assert predictions[d]["partition_file"].value == str(lake.partition_path("fraud", "predictions", d))
        assert predictions[d]["run_range"].value == f"{days[0]}..{days[-1]}"  # the run's own metadata stays
    assert len({predictions[d]["landing_rows"].value for d in days}) > 1  # the simulator's days differ in size

    ops = _latest_metadata(instance, dg.AssetKey(["fraud", "ops_stats"]))
    assert all(isinstance(ops[d]["latency_p95_ms"].value, float) for d in days)  # numbers, so the UI plots them
    assert [ops[d]["requests"].value for d in days] == [predictions[d]["accepted_rows"].value for d in days]


def test_each_day_has_its_own_check_outcome_and_the_run_its_summary(range_run):
    _, instance, result = range_run
    evaluations = [e for e in result.get_asset_check_evaluations() if e.asset_check_key == COLUMNS_CHECK]
    by_day = {e.partition: e for e in evaluations[:-1]}
    assert list(by_day) == [day(i) for i in range(FIRST, DAMAGED + 1)]
    assert [by_day[day(i)].passed for i in range(FIRST, DAMAGED + 1)] == [True, True, False]
    assert by_day[day(DAMAGED)].metadata["observed"].value == {
        "unregistered": ["experiment_arm"],
        "hint": "declare them under models.fraud.features or drop them from the log",
    }
    assert by_day[day(FIRST)].metadata["observed"].value == {"unregistered": []}
    assert by_day[day(FIRST)].metadata["failing_periods"].value == []

    summary = evaluations[-1]  # the run's verdict over the range, for `closedloop run` and the run's page
    assert summary.partition is None and not summary.passed
    assert summary.metadata["failing_periods"].value == [day(DAMAGED)]

    # What the UI's partition status of the check reads: each day current against its own materialization.
    infos = instance.event_log_storage.get_asset_check_partition_info([COLUMNS_CHECK])
    assert {i.partition_key: (i.latest_execution_status.value, i.is_current) for i in infos} == {
        None: ("FAILED", True),  # the run's summary: a partitioned check's status ignores it
        day(FIRST): ("SUCCEEDED", True),
        day(FIRST + 1): ("SUCCEEDED", True),
        day(DAMAGED): ("FAILED", True),
    }


def test_a_one_day_run_files_its_result_under_the_day(range_run):
    lake, instance, _ = range_run
    registry = load_registry(TEST_REGISTRY, landing=str(lake.landing), lake=str(lake.root))
    result = (
        build_definitions(registry)
        .resolve_job_def("fraud_pipeline")
        .execute_in_process(
            instance=instance,
            asset_selection=[dg.AssetKey(["fraud", "predictions"])],
            partition_key=day(FIRST),
        )
    )
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.asset_check_key == COLUMNS_CHECK]
    assert evaluation.partition == day(FIRST) and evaluation.passed


def test_partitions_end_on_the_registrys_end_date_and_run_to_today_without_one(registry):
    fraud = registry.model("fraud")
    ended = fraud.model_copy(update={"end_date": DEMO_END})
    assert daily_partitions(ended).get_last_partition_key() == DEMO_END.isoformat()
    assert daily_partitions(ended).get_first_partition_key() == fraud.start_date.isoformat()
    assert daily_partitions(fraud).get_last_partition_key() == dt.datetime.now(dt.UTC).date().isoformat()
    demo = load_registry(DEFAULT_CONFIG)  # the demo's partitions end where its 60 simulated days do
    assert {m.end_date for m in demo.models.values()} == {DEMO_END}


def test_the_schedules_of_an_ended_model_skip_the_days_after_its_log(registry):
    ended = registry.model("ticket_triage").model_copy(update={"end_date": DEMO_END})
    hourly, daily, report = build_schedules(ended)
    after = dt.datetime.combine(DEMO_END + dt.timedelta(days=1), dt.time(0, 30), tzinfo=dt.UTC)
    for schedule in (hourly, daily, report):
        skipped = schedule(dg.build_schedule_context(scheduled_execution_time=after + dt.timedelta(days=1)))
        assert isinstance(skipped, dg.SkipReason) and "models.ticket_triage.end_date" in skipped.skip_message
    for schedule in (daily, report):
        last = schedule(dg.build_schedule_context(scheduled_execution_time=after))
        assert isinstance(last, dg.RunRequest) and last.partition_key == DEMO_END.isoformat()
