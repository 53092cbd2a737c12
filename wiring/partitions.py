"""Partitions: one daily definition per model, including today, shared by all its assets.

Daily rather than hourly: a date range of the whole graph must be one run (Dagster cannot mix
partitions definitions in a run, and hourly partitions cost seconds of bookkeeping per day
before any work). Hour-level detail lives in rows; today's partition is refreshed in place.
"""

from __future__ import annotations

from functools import cache

import dagster as dg

from closedloop.core.specs import ModelSpec


@cache
def _daily_from(start: str) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=start, end_offset=1, timezone="UTC")


def daily_partitions(model: ModelSpec) -> dg.DailyPartitionsDefinition:
    return _daily_from(model.start_date.isoformat())


def run_days(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> list[str]:
    """The partition keys of this run: one day, or every day of a single-run backfill."""
    return list(context.partition_keys)
