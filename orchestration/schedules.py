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
from orchestration.jobs import pipeline_job_name, report_job_name
from wiring.tags import AS_OF_TAG, MODEL_TAG

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
        tags={MODEL_TAG: model.name},
    )


def past_the_end(model: ModelSpec, day: dt.date) -> bool:
    """Whether ``day`` is after the last day of ``model``'s log (its registry ``end_date``), so has no partition."""
    return model.end_date is not None and day > model.end_date


def _yesterday(model: ModelSpec, context: dg.ScheduleEvaluationContext, kind: str) -> dg.RunRequest | dg.SkipReason:
    """A run of yesterday's partition, unless the model's log ended before it."""
    yesterday = context.scheduled_execution_time.astimezone(dt.UTC).date() - dt.timedelta(days=1)
    if past_the_end(model, yesterday):
        return dg.SkipReason(f"{model.name}'s log ended on {model.end_date} (models.{model.name}.end_date)")
    return dg.RunRequest(run_key=f"{model.name}-{kind}-{yesterday}", partition_key=yesterday.isoformat())


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
            return dg.SkipReason(f"{model.name}'s log ended on {model.end_date} (models.{model.name}.end_date)")
        return dg.RunRequest(
            run_key=f"{model.name}-hourly-{tick:%Y-%m-%dT%H}",
            partition_key=tick.date().isoformat(),
            tags={AS_OF_TAG: tick.isoformat()},
        )

    @dg.schedule(
        name=f"{model.name}_daily",
        cron_schedule=f"{DAILY_TIME[1]} {DAILY_TIME[0]} * * *",
        job_name=pipeline_job_name(model),
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Materializes yesterday's whole graph once its last hour has landed.",
    )
    def daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        return _yesterday(model, context, "daily")

    @dg.schedule(
        name=f"{model.name}_daily_report",
        cron_schedule=f"{REPORT_TIME[1]} {REPORT_TIME[0]} * * *",
        job_name=report_job_name(model),
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Writes yesterday's report once its SLOs are judged and its incidents handled.",
    )
    def daily_report(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        return _yesterday(model, context, "report")

    return [hourly, daily, daily_report]
