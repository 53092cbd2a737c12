"""A version's own reference: what its score and decisions looked like while nothing was known wrong.

A version released after the baseline window scores and decides its own way (its own threshold,
its own calibration): held to the baseline, a clean canary deciding at 0.5 instead of 0.6 is a
decision-rate drift every day. Its outputs are compared with its own reference instead: its first
``drift.version_reference_days`` days with rows of it, shadow days (it scored the requests,
nothing it decided was applied) before served ones. Until those days are in, its outputs are
*learning*: measured against the baseline and reported, never an alert. Its inputs are the
traffic's, not the version's, and stay judged against the baseline from its first day.

Once complete, the reference is frozen beside the baseline it was profiled on, so that a later
re-ingest of those days does not move what every later day was measured against.
"""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pyarrow.compute as pc

from closedloop.core.lake import Lake
from closedloop.core.specs import ModelSpec
from closedloop.drift.baseline import Baseline
from closedloop.drift.profiles import MERGED_SCHEMA, merge_profiles, profile_table

# How long before its release a version's shadow days are looked for.
SHADOW_LOOKBACK_DAYS = 60


def versions_with_own_reference(model: ModelSpec, day: dt.date) -> list[str]:
    """The versions released after the baseline window, by ``day``: those the baseline never saw serve.

    A baseline taken from a reference dataset (a training set) has no versions: every version is
    measured against it, which is the point of training-serving skew.
    """
    if model.baseline.reference is not None:
        return []
    end = model.baseline.end
    return [
        version
        for version in model.versions_by_release
        if (released := model.versions[version].released) is not None and end < released <= day
    ]


def version_reference(lake: Lake, model: ModelSpec, baseline: Baseline, version: str, day: dt.date) -> pa.Table | None:
    """The version's merged reference profile (``MERGED_SCHEMA``) for judging ``day``, or None while learning."""
    path = lake.document_path(model.name, "baselines", f"{baseline.name}_{version}")
    if path.exists():
        document = json.loads(path.read_text())
        if document["baseline_hash"] == baseline.hash:
            return pa.Table.from_pylist(document["profile"], schema=MERGED_SCHEMA)
    days = _reference_days(lake, model, baseline, version, day)
    if len(days) < model.drift.version_reference_days:
        return None
    profile = merge_profiles(days, across_versions=True)
    document = {
        "model": model.name,
        "version": version,
        "baseline": baseline.name,
        "baseline_hash": baseline.hash,
        "days": [table.column("day")[0].as_py().isoformat() for table in days],
        "profile": profile.to_pylist(),
    }
    lake.write_document(path, document)
    return profile


def _days_with_partitions(lake: Lake, model: ModelSpec, table: str, start: dt.date, end: dt.date) -> list[dt.date]:
    if end < start:
        return []
    files = lake.partition_files(model.name, table, start, end)
    return [dt.date.fromisoformat(path.parent.name.removeprefix("date=")) for path in files]


def _reference_days(lake: Lake, model: ModelSpec, baseline: Baseline, version: str, day: dt.date) -> list[pa.Table]:
    """The version's first days with rows before ``day``, one profile each: shadow rows where the day has
    them, else served rows (a shadow week before a canary gives the canary a reference on its first day)."""
    released = model.versions[version].released
    assert released is not None  # versions_with_own_reference keeps released versions only
    wanted = model.drift.version_reference_days
    found: list[pa.Table] = []
    shadow_start = released - dt.timedelta(days=SHADOW_LOOKBACK_DAYS)
    last = day - dt.timedelta(days=1)
    if model.pairing_key is not None:
        for shadow_day in _days_with_partitions(lake, model, "shadow", shadow_start, min(last, released)):
            rows = lake.read_partition(model.name, "shadow", shadow_day)
            rows = None if rows is None else rows.filter(pc.equal(rows.column("model_version"), version))
            if rows is not None and rows.num_rows:
                found.append(profile_table(rows, baseline, shadow_day))
    if len(found) < wanted:
        for served_day in _days_with_partitions(lake, model, "profiles", released, last):
            rows = lake.read_partition(model.name, "profiles", served_day)
            rows = None if rows is None else rows.filter(pc.equal(rows.column("model_version"), version))
            if rows is not None and rows.num_rows:
                found.append(rows)
            if len(found) >= wanted:
                break
    return found[:wanted]
