"""A day's drift: the day and its trailing week against the baseline, from profiles and samples only."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from closedloop.core.lake import Lake, LakeError
from closedloop.core.specs import ModelSpec
from closedloop.drift.baseline import Baseline
from closedloop.drift.domain_classifier import domain_classifier_auc
from closedloop.drift.learned_limits import drift_limits
from closedloop.drift.profiles import PROFILE_SCHEMA, merge_profiles
from closedloop.drift.report import ALL_INPUTS, drift_report
from closedloop.drift.version_reference import version_reference, versions_with_own_reference

WINDOW_DAYS = 7
# How far below its lowest alert limit a first fold's AUC settles the day (about 2.5 times a fold's spread).
SETTLE_MARGIN = 0.05


def baseline_sample(lake: Lake, model: ModelSpec) -> pa.Table | None:
    """The rows sampled from the baseline window, the domain classifier's reference."""
    return lake.read_range(model.name, "samples", model.baseline.start, model.baseline.end)


def drift_of_day(
    lake: Lake, model: ModelSpec, baseline: Baseline, reference_sample: pa.Table | None, day: dt.date
) -> pa.Table:
    """The drift report of one day and its trailing week (profiles only, never raw predictions).

    With ``baseline.trailing_days`` the reference is the N days before ``day`` (their profiles
    merged, their samples for the domain classifier) rather than the frozen window, when they exist.
    A version released after the baseline window has its outputs judged against its own reference;
    with ``drift.learned`` every figure against the limits the baseline's own days taught.
    """
    today = lake.read_partition(model.name, "profiles", day)
    if today is None:
        raise LakeError(
            f"{model.name}/drift {day}: the day has no profiles partition; materialize {model.name}/profiles "
            f"for {day} first (closedloop run --start {day} --end {day} --model {model.name} does both)"
        )
    # A day without traffic has an empty profile, and so may its whole trailing week: then every
    # figure is 'not enough data', never an error.
    window_start = day - dt.timedelta(days=WINDOW_DAYS - 1)
    window = lake.read_range(model.name, "profiles", window_start, day, schema=PROFILE_SCHEMA)
    sample = lake.read_partition(model.name, "samples", day)
    reference_profile = None
    if model.baseline.trailing_days:
        first, last = day - dt.timedelta(days=model.baseline.trailing_days), day - dt.timedelta(days=1)
        trailing = lake.read_range(model.name, "profiles", first, last)
        if trailing is not None:
            reference_profile = merge_profiles([trailing], across_versions=True)
            reference_sample = lake.read_range(model.name, "samples", first, last)
    domain_auc = None
    if reference_sample is not None and sample is not None and sample.num_rows:
        result = domain_classifier_auc(model, baseline, reference_sample, sample, settle_below=_settle_below(model))
        domain_auc = {"day": result.auc}
    version_references = {
        version: version_reference(lake, model, baseline, version, day)
        for version in versions_with_own_reference(model, day)
    }
    return drift_report(
        model,
        baseline,
        today,
        window,
        window=f"{WINDOW_DAYS}d",
        day=day,
        domain_auc=domain_auc,
        reference_profile=reference_profile,
        version_references=version_references,
        learned_limits=drift_limits(lake, model, baseline, day),
    )


def _settle_below(model: ModelSpec) -> float | None:
    """The AUC under which one fold settles the day; None (every fold) when the AUC is only reported."""
    bound = model.drift.limit("domain_classifier_auc", ALL_INPUTS)
    if bound is None or bound.type != "upper":
        return None
    levels = [level for level in (bound.warn, bound.error) if isinstance(level, float | int)]
    return min(levels) - SETTLE_MARGIN if levels else None
