"""Drift limits learned from the baseline's own days, like NannyML's standard-deviation thresholds.

A written PSI limit of 0.1 means one thing on 100,000 rows a day and another on 1,300, and a
feature whose mix moves from day to day by itself crosses a limit written for a steady one. With
``drift.learned`` each figure's limit is what the baseline's own days teach: every baseline day's
figure against the other baseline days (pooled over versions, as a day would be), then mean + k
sd (or quantiles) of those days. The side follows the metric's written bound: an upper bound (PSI)
learns an upper limit, a signed change (mean shift) learns a limit either way of zero, a ratio
a factor either way of one. A column's own written limits (``drift.columns``) still win. With
``seasonal: weekday`` the limits sit around the mean of the baseline days of the judged day's
weekday, their width from every day's distance to its own weekday's mean.

Each day is held out of its own reference: compared with a baseline that holds it, a day looks
steadier than any later day can (NannyML's reference chunks have that bias). The limits are
frozen beside the baseline once every baseline day has a profile, so later days are all judged
by the same ones.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections import defaultdict

import pyarrow as pa

from closedloop.core.bounds import Bound
from closedloop.core.lake import Lake
from closedloop.core.specs import DRIFT_OUTPUT_COLUMNS, ModelSpec
from closedloop.drift.baseline import Baseline
from closedloop.drift.measures import ROLE_METRICS, ColumnProfile, Comparison
from closedloop.drift.profiles import merge_profiles

LearnedDriftLimits = dict[tuple[str, str], Bound]  # (column, metric) -> limit
Figures = dict[tuple[str, str], list[tuple[int, float]]]  # (column, metric) -> (weekday, figure) per baseline day


def baseline_day_figures(model: ModelSpec, baseline: Baseline, days: list[pa.Table]) -> Figures:
    """Each (column, metric)'s figure on every baseline day with enough rows, against the other baseline days
    (a day held to a reference that holds itself would look steadier than any later day can)."""
    figures: Figures = defaultdict(list)
    for index, profile in enumerate(days):
        weekday = profile.column("day")[0].as_py().weekday() if profile.num_rows else 0
        others = merge_profiles(days[:index] + days[index + 1 :], across_versions=True).to_pylist()
        reference = {row["column"]: ColumnProfile.from_row(row) for row in others}
        for row in merge_profiles([profile], across_versions=True).to_pylist():
            column = row["column"]
            spec = baseline.numeric.get(column) or baseline.categorical.get(column)
            if column not in reference or spec is None or row["rows"] < model.drift.min_rows:
                continue
            comparison = Comparison(column, ColumnProfile.from_row(row), reference[column], spec, None)
            for metric in ROLE_METRICS[column if column in DRIFT_OUTPUT_COLUMNS else row["kind"]]:
                value = metric(comparison)
                if value is not None and math.isfinite(value):
                    figures[column, metric.__name__].append((weekday, value))
    return figures


def learn_drift_limits(model: ModelSpec, figures: Figures, weekday: int = 0) -> LearnedDriftLimits:
    """The limit each (column, metric) learns from its baseline days' figures, for a day of ``weekday`` when
    the limits are seasonal; the written one where it has a column's own limit, no written bound to take a
    side from, or fewer days than ``periods``."""
    learned = model.drift.learned
    assert learned is not None  # only called for a model that learns its limits
    limits = {}
    for (column, metric), figured in figures.items():
        values = [v for _, v in figured]
        seasons = [w for w, _ in figured] if learned.seasonal else None
        written = model.drift.limit(metric, column)
        # A figure every baseline day shares (the share of never-seen values, 0 on the days that defined
        # "seen") teaches no spread: it keeps its written limit.
        steady = max(values) == min(values)
        if written is None or metric in model.drift.columns.get(column, {}) or len(values) < learned.periods or steady:
            continue
        if written.type == "upper":
            bound = learned.model_copy(update={"side": "upper"}).bound(values, seasons, weekday)
            if bound is not None and isinstance(bound.error, float):
                limits[column, metric] = Bound(type="upper", error=max(bound.error, 0.0))
        elif written.type in ("absolute", "ratio"):
            bound = learned.model_copy(update={"side": "both"}).bound(values, seasons, weekday)
            if bound is not None and isinstance(bound.error, tuple):
                low, high = bound.error
                if written.type == "absolute":
                    limits[column, metric] = Bound(type="absolute", error=max(abs(low), abs(high)))
                elif low > 0:
                    limits[column, metric] = Bound(type="ratio", error=max(high, 1.0 / low))
    return limits


def drift_limits(lake: Lake, model: ModelSpec, baseline: Baseline, day: dt.date) -> LearnedDriftLimits | None:
    """The learned drift limits ``day`` is judged by (None when the model writes its limits, or while baseline
    days lack profiles); with ``seasonal: weekday``, those of its weekday.

    Frozen beside the baseline as ``baselines/<baseline>_limits.json`` once every baseline day is
    profiled; a change of the model's drift settings learns them again.
    """
    if model.drift.learned is None:
        return None
    settings = json.dumps(model.drift.model_dump(mode="json"), sort_keys=True)
    key = hashlib.sha256(f"{baseline.hash}\n{settings}".encode()).hexdigest()[:16]
    path = lake.document_path(model.name, "baselines", f"{baseline.name}_limits")
    if path.exists():
        document = json.loads(path.read_text())
        if document["key"] == key:
            return _of_weekday(document, day.weekday())
    start, end = model.baseline.start, model.baseline.end
    files = lake.partition_files(model.name, "profiles", start, end)
    if len(files) < (end - start).days + 1:
        return None
    days = [lake.read_partition(model.name, "profiles", Lake.day_of(f)) for f in files]
    present = [table for table in days if table is not None]
    figures = baseline_day_figures(model, baseline, present)
    weekdays = range(7) if model.drift.learned.seasonal == "weekday" else [None]
    document = {
        "model": model.name,
        "baseline": baseline.name,
        "key": key,
        "days": [Lake.day_of(f).isoformat() for f in files],
        "limits": [
            {"weekday": weekday, "column": column, "metric": metric, "bound": bound.model_dump(mode="json")}
            for weekday in weekdays
            for (column, metric), bound in sorted(learn_drift_limits(model, figures, weekday or 0).items())
        ],
    }
    lake.write_document(path, document)
    return _of_weekday(document, day.weekday())


def _of_weekday(document: dict, weekday: int) -> LearnedDriftLimits:
    return {
        (r["column"], r["metric"]): Bound.model_validate(r["bound"])
        for r in document["limits"]
        if r["weekday"] in (None, weekday)
    }
