"""Partitions: one daily definition per model, including today, shared by all its assets.

A model with an ``end_date`` (retired, or a replayed history such as the demo's) ends there,
so days after its log are not shown as missing.

Daily rather than hourly: a date range of the whole graph must be one run (Dagster cannot mix
partitions definitions in a run, and hourly partitions cost seconds of bookkeeping per day
before any work). Hour-level detail lives in rows; today's partition is refreshed in place.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

import dagster as dg

from closedloop.core.specs import ModelSpec


@cache
def _daily(start: str, end: str | None) -> dg.DailyPartitionsDefinition:
    # Dagster's end_date is the first day left out; before it, partitions still stop at today.
    return dg.DailyPartitionsDefinition(start_date=start, end_date=end, end_offset=1, timezone="UTC")


def daily_partitions(model: ModelSpec) -> dg.DailyPartitionsDefinition:
    end = model.end_date + dt.timedelta(days=1) if model.end_date else None
    return _daily(model.start_date.isoformat(), end.isoformat() if end else None)


def run_days(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> list[str]:
    """The partition keys of this run: one day, or every day of a single-run backfill."""
    return list(context.partition_keys)
