"""Schedules: every hour, today's ingest and operational guards; every day, yesterday's whole graph,
then an hour later yesterday's report.

All run by default. The hourly run replaces today's ``predictions`` and ``ops_stats``
partitions with everything landed so far (an idempotent replace) and tags the run with its
tick time, so the guards judge the hour that has just ended. The daily run starts after the
day's last hour has landed and materializes everything for the finished day. A model whose
log has ended (the registry's ``end_date``) skips the ticks after it: those days have no partition.
"""

import datetime as dt

import dagster as dg

from closedloop.core.specs import ModelSpec
from orchestration.jobs import partition_writer_tags, pipeline_job_name, report_job_name
from wiring.tags import AS_OF_TAG

HOURLY_MINUTE = 5  # minutes past the hour: let the hour's last files land
DAILY_TIME = (0, 30)  # UTC hour and minute after midnight
REPORT_TIME = (1, 30)  # an hour later: the day's SLO checks have run and the incident sensor has acted


def hourly_refresh_job_name(model: ModelSpec) -> str:
    return f"{model.name}_hourly_refresh"


def build_hourly_refresh_job(model: ModelSpec) -> "dg.UnresolvedAssetJobDefinition":
    return dg.define_asset_job(
        name=hourly_refresh_job_name(model),
        selection=dg.AssetSelection.assets(*(dg.AssetKey([model.name, name]) for name in ("predictions", "ops_stats"))),
        description=(
            f"Today's {model.name} predictions and operational statistics, refreshed with what has landed so far."
        ),
        tags=partition_writer_tags(model),
    )


def past_the_end(model: ModelSpec, day: dt.date) -> bool:
    """Whether ``day`` is after the last day of ``model``'s log (its registry ``end_date``), so has no partition."""
    return model.end_date is not None and day > model.end_date


def _ended(model: ModelSpec) -> dg.SkipReason:
    return dg.SkipReason(f"{model.name}'s log ended on {model.end_date} (models.{model.name}.end_date)")


def _daily_schedule(
    model: ModelSpec, name: str, time: tuple[int, int], job_name: str, description: str
) -> dg.ScheduleDefinition:
    """A schedule that runs ``job_name`` on yesterday's partition at ``time`` (UTC), until the model's log ends."""

    @dg.schedule(
        name=f"{model.name}_{name}",
        cron_schedule=f"{time[1]} {time[0]} * * *",
        job_name=job_name,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=description,
    )
    def daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        yesterday = context.scheduled_execution_time.astimezone(dt.UTC).date() - dt.timedelta(days=1)
        if past_the_end(model, yesterday):
            return _ended(model)
        return dg.RunRequest(run_key=f"{model.name}-{name}-{yesterday}", partition_key=yesterday.isoformat())

    return daily


def build_schedules(model: ModelSpec) -> list[dg.ScheduleDefinition]:
    @dg.schedule(
        name=f"{model.name}_hourly",
        cron_schedule=f"{HOURLY_MINUTE} * * * *",
        job_name=hourly_refresh_job_name(model),
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Refreshes today's partition and judges the hour that just ended against the ops guards.",
    )
    def hourly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        tick = context.scheduled_execution_time.astimezone(dt.UTC)
        if past_the_end(model, tick.date()):
            return _ended(model)
        return dg.RunRequest(
            run_key=f"{model.name}-hourly-{tick:%Y-%m-%dT%H}",
            partition_key=tick.date().isoformat(),
            tags={AS_OF_TAG: tick.isoformat()},
        )

    daily = _daily_schedule(
        model, "daily", DAILY_TIME, pipeline_job_name(model),
        "Materializes yesterday's whole graph once its last hour has landed.",
    )  # fmt: skip
    report = _daily_schedule(
        model, "daily_report", REPORT_TIME, report_job_name(model),
        "Writes yesterday's report once its SLOs are judged and its incidents handled.",
    )  # fmt: skip
    return [hourly, daily, report]
