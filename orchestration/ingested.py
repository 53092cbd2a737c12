"""What a run's ingest steps measured, read back from the run's own events (for the CLI and the demo).

Every day an ingest step writes has its figures in that day's materialization; a step that
failed part-way carries the figures of the days it wrote before failing in its failure. Nothing
here is derived from the lake or the landing zone, which may hold an earlier run's partitions
or files that changed since.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import dagster as dg

from closedloop.core.specs import ModelSpec
from closedloop.inputs.contract import landing_tables

_COUNTS = {
    "landed": "landing_rows",
    "accepted": "accepted_rows",
    "quarantined": "quarantined_rows",
    "duplicates": "duplicates_dropped",
}


def ingested_in(result: dg.ExecuteInProcessResult, model: ModelSpec, start: dt.date, end: dt.date) -> dict:
    """Per landing table of ``model``: days ingested by this run and their rows landed, accepted, quarantined,
    duplicates dropped and reasons; the days of ``start``..``end`` it did not ingest; whether its step failed."""
    days_in_range = (end - start).days + 1
    summary = {}
    for table in landing_tables(model):
        days = _materialized_days(result, dg.AssetKey([model.name, table]))
        failed = _failure_metadata(result, f"{model.name}__{table}")
        if failed is not None:
            days.update({entry["day"]: entry for entry in failed.get("days_ingested", [])})
        reasons: Counter[str] = Counter()
        for figures in days.values():
            reasons.update(figures.get("quarantine_reasons") or {})
        summary[table] = {
            "days_ingested": len(days),
            "days_missing": days_in_range - len(days),
            "failed_day": None if failed is None else failed.get("failed_day"),
            **{name: sum(int(f[key]) for f in days.values()) for name, key in _COUNTS.items()},
            "quarantine_reasons": dict(sorted(reasons.items(), key=lambda item: (-item[1], item[0]))),
        }
    return summary


def _materialized_days(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict[str, dict]:
    days = {}
    for event in result.all_events:
        if event.event_type != dg.DagsterEventType.ASSET_MATERIALIZATION:
            continue
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key == key and materialization.partition is not None:
            days[materialization.partition] = {name: value.value for name, value in materialization.metadata.items()}
    return days


def _failure_metadata(result: dg.ExecuteInProcessResult, step: str) -> dict | None:
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE and event.step_key == step:
            failure = event.step_failure_data.user_failure_data
            return {} if failure is None else {name: value.value for name, value in failure.metadata.items()}
    return None
