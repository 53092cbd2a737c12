"""Hourly operational guards in Dagster: the schedules, an hourly tick end to end, the spike caught."""

import datetime as dt

import dagster as dg
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from closedloop.core.bounds import LearnedLimits
from closedloop.core.lake import Lake
from closedloop.core.periods import hours_to_judge
from closedloop.registry import load_registry
from closedloop.simulator import DEFAULT_START, simulate
from closedloop.simulator.incidents import INCIDENTS
from orchestration.definitions import build_definitions
from tests.helpers import TEST_REGISTRY
from wiring.tags import AS_OF_TAG

UTC = dt.UTC
SPIKE = next(i for i in INCIDENTS if i.id == "triage_traffic_spike")
SPIKE_DAY = DEFAULT_START + dt.timedelta(days=SPIKE.start_day)


def schedule(defs, name):
    return next(s for s in defs.schedules if s.name == name)


def tick_context(defs, at: dt.datetime, instance=None):
    return dg.build_schedule_context(
        scheduled_execution_time=at, instance=instance, repository_def=defs.get_repository_def()
    )


def test_hourly_schedule_asks_for_todays_partition_with_its_tick_time(registry):
    defs = build_definitions(registry)
    tick = dt.datetime(2026, 9, 16, 11, 5, tzinfo=UTC)
    context = tick_context(defs, tick)
    [request] = schedule(defs, "ticket_triage_hourly").evaluate_tick(context).run_requests
    assert request.partition_key == "2026-09-16"
    assert request.tags[AS_OF_TAG] == tick.isoformat()
    assert schedule(defs, "ticket_triage_hourly").cron_schedule == "5 * * * *"
    assert schedule(defs, "ticket_triage_hourly").job_name == "ticket_triage_hourly_refresh"


def test_daily_schedule_asks_for_yesterday_once_its_last_hour_landed(registry):
    defs = build_definitions(registry)
    context = tick_context(defs, dt.datetime(2026, 9, 17, 0, 30, tzinfo=UTC))
    [request] = schedule(defs, "fraud_daily").evaluate_tick(context).run_requests
    assert request.partition_key == "2026-09-16"
    assert schedule(defs, "fraud_daily").job_name == "fraud_pipeline"


def test_schedules_run_by_default(registry):
    for definition in build_definitions(registry).schedules:
        assert definition.default_status == dg.DefaultScheduleStatus.RUNNING


def test_guards_judge_the_hour_that_just_ended_on_an_hourly_tick():
    day = dt.date(2026, 9, 16)
    assert hours_to_judge(day, dt.datetime(2026, 9, 16, 11, 5, tzinfo=UTC)) == [
        dt.datetime(2026, 9, 16, 10, tzinfo=UTC)
    ]
    assert hours_to_judge(day, dt.datetime(2026, 9, 16, 0, 5, tzinfo=UTC)) == []
    assert len(hours_to_judge(day, None)) == 24
    assert len(hours_to_judge(day, dt.datetime(2026, 9, 20, 11, tzinfo=UTC))) == 24


@pytest.mark.slow
def test_an_hourly_tick_replaces_todays_partition_with_more_rows(tmp_path):
    landing = tmp_path / "landing"
    simulate(landing, days=1, seed=4, fraud_rows_per_day=100, triage_rows_per_day=2000)
    day_folder = landing / "ticket_triage" / "predictions" / f"date={DEFAULT_START}"
    whole = pq.read_table(day_folder / "part-00.parquet")
    hour = pc.hour(whole.column("created_at"))
    (day_folder / "part-00.parquet").unlink()
    pq.write_table(whole.filter(pc.less(hour, 10)), day_folder / "part-00.parquet")  # landed by 10:05

    registry = load_registry(TEST_REGISTRY, landing=str(landing), lake=str(tmp_path / "lake"))
    defs = build_definitions(registry)
    instance = dg.DagsterInstance.ephemeral()
    job = defs.resolve_job_def("ticket_triage_hourly_refresh")
    lake = Lake(registry.lake, registry.landing)

    def tick(at: dt.datetime):
        [request] = schedule(defs, "ticket_triage_hourly").evaluate_tick(tick_context(defs, at, instance)).run_requests
        result = job.execute_in_process(instance=instance, partition_key=request.partition_key, tags=request.tags)
        assert result.success
        return lake.read_partition("ticket_triage", "predictions", DEFAULT_START), result

    first, result = tick(dt.datetime.combine(DEFAULT_START, dt.time(10, 5), tzinfo=UTC))
    latency = {e.check_name: e for e in result.get_asset_check_evaluations()}["latency_p95_within_ceiling"]
    assert latency.metadata["latest_hour"].value == f"{DEFAULT_START} 09:00"

    pq.write_table(whole.filter(pc.equal(hour, 10)), day_folder / "part-01.parquet")  # the next hour's file
    second, _ = tick(dt.datetime.combine(DEFAULT_START, dt.time(11, 5), tzinfo=UTC))

    assert first.num_rows == pc.sum(pc.less(hour, 10)).as_py()
    assert second.num_rows == first.num_rows + pc.sum(pc.equal(hour, 10)).as_py()
    assert len(set(second.column("prediction_id").to_pylist())) == second.num_rows
    ops = lake.read_partition("ticket_triage", "ops_stats", DEFAULT_START)
    assert pc.sum(ops.column("requests")).as_py() == second.num_rows
    assert [p.name for p in lake.partition_path("ticket_triage", "predictions", DEFAULT_START).parent.iterdir()] == [
        "part.parquet"
    ]


@pytest.mark.slow
def test_the_traffic_spike_trips_latency_and_cost_in_its_first_hour_and_the_budget_that_day(tmp_path):
    """The cost ceiling is written; the latency ceiling is learned from the same hours of the days before."""
    landing = tmp_path / "landing"
    simulate(landing, days=SPIKE.start_day + 1, seed=7, fraud_rows_per_day=100, triage_rows_per_day=3000)
    registry = load_registry(TEST_REGISTRY, landing=str(landing), lake=str(tmp_path / "lake"))
    triage = registry.model("ticket_triage")
    learned = LearnedLimits(reference="trailing", periods=96, method="sd", k=4, seasonal="hour")
    ops = triage.ops.model_copy(update={"max_latency_p95_ms": None, "learned": {"latency_p95_ms": learned}})
    registry = registry.model_copy(
        update={"models": {**registry.models, "ticket_triage": triage.model_copy(update={"ops": ops})}}
    )
    result = (
        build_definitions(registry)
        .resolve_job_def("ticket_triage_pipeline")
        .execute_in_process(
            instance=dg.DagsterInstance.ephemeral(),
            tags={
                "dagster/asset_partition_range_start": DEFAULT_START.isoformat(),
                "dagster/asset_partition_range_end": SPIKE_DAY.isoformat(),
            },
            raise_on_error=False,
        )
    )
    guards = {e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key.path[-1] == "ops_stats"}
    first_spike_hour = f"{SPIKE_DAY} {SPIKE.hours[0]:02d}:00"
    for name in ("latency_p95_within_ceiling", "cost_per_1k_within_ceiling"):
        assert not guards[name].passed, name
        assert guards[name].metadata["first_failure"].value.startswith(f"{first_spike_hour} (all)"), name
        broken = guards[name].metadata["broken_hours"].value.splitlines()[2:]
        assert broken and all(line.startswith(f"| {SPIKE_DAY}") for line in broken), name  # clean days stay quiet
        periods = guards[name].metadata["failing_periods"].value
        assert periods[0] == first_spike_hour and all(p.startswith(f"{SPIKE_DAY} ") for p in periods), name
    budget = guards["projected_daily_spend_within_budget"]
    assert not budget.passed
    first_budget_hour = budget.metadata["first_failure"].value[:16]
    assert str(SPIKE_DAY) in first_budget_hour and first_budget_hour < f"{SPIKE_DAY} 23:00"
    assert guards["error_rate_within_ceiling"].metadata["hours_judged"].value > 24 * SPIKE.start_day / 2
    latency = guards["latency_p95_within_ceiling"].metadata
    assert latency["hours_learning"].value >= 48 and latency["hours_judged"].value > 24 * SPIKE.start_day / 4
