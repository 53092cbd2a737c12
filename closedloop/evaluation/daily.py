"""Evaluation as the pipeline keeps it, day by day: labels known so far, and each day's windows.

A prediction day's outcomes are seen as of the labels known so far: the latest label partition
in the lake. A day's ``rolling_eval`` partition holds every registry window's metrics
(``closedloop.evaluation.rolling_eval``) and, for windows whose labels are not mature yet, the performance
estimate (``closedloop.evaluation.estimation``) as rows with ``labels = "estimated"``. An estimate is made
once, the first time a window is evaluated before its labels mature, and kept each time the day
is evaluated again: once the labels mature, the estimate stands beside the realised value in
the same partition, so its error can be read off over time.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc

from closedloop.core.lake import Lake
from closedloop.core.names import ALL, checked_day
from closedloop.core.specs import ModelSpec
from closedloop.evaluation.estimation import PerformanceEstimate, estimate_window
from closedloop.evaluation.eval_stats import score_counts
from closedloop.evaluation.metrics import threshold_for_rate
from closedloop.evaluation.rolling_eval import (
    ESTIMATED,
    ROLLING_EVAL_SCHEMA,
    RollingEval,
    rolling_eval,
    window_start,
    window_stats,
)


def labels_known_through(lake: Lake, model: ModelSpec, day: str | dt.date) -> dt.date:
    """The date ``day``'s outcomes are seen from: the latest label partition in the lake, never before ``day``."""
    day = checked_day(day)
    latest = lake.last_partition_day(model.name, "labels")
    return max(day, latest) if latest else day


def estimate_table(
    model: ModelSpec,
    day: dt.date,
    window_days: int,
    days_with_stats: int,
    estimates: dict[str, PerformanceEstimate | None],
) -> pa.Table:
    """Per version, the expected metrics (95% bootstrap interval) and confusion counts as ``rolling_eval`` rows."""
    rows = []
    for version, estimate in estimates.items():
        if estimate is None:
            continue
        base = {
            "window_days": window_days,
            "window_start": window_start(day, window_days),
            "window_end": day,
            "days_with_stats": days_with_stats,
            "model_version": version,
            "segment": ALL,
            "segment_value": ALL,
            "labels": ESTIMATED,
            "threshold": estimate.threshold,
            "binning_error": None,
        }
        for name, metric in estimate.metrics.items():
            rows.append({**base, "metric": name, "value": metric.value, "lower": metric.lower, "upper": metric.upper})
        for cell, count in estimate.confusion.items():
            rows.append({**base, "metric": f"expected_{cell}", "value": count, "lower": None, "upper": None})
    return pa.Table.from_pylist(rows, schema=ROLLING_EVAL_SCHEMA)


def evaluate_day(lake: Lake, model: ModelSpec, day: str | dt.date, as_of: str | dt.date) -> RollingEval:
    """Every registry window ending on ``day``, with the estimates of windows not mature as of ``as_of``."""
    day, as_of = checked_day(day), checked_day(as_of)
    realised = rolling_eval(lake, model, day)
    previous = lake.read_partition(model.name, "rolling_eval", day)
    previous = ROLLING_EVAL_SCHEMA.empty_table() if previous is None else previous.cast(ROLLING_EVAL_SCHEMA)
    kept = previous.filter(pc.equal(previous["labels"], ESTIMATED))
    mature_through = as_of - dt.timedelta(days=model.labels.maturity_days)
    # The estimate's reference ends maturity_days before the window; before that there is nothing to fit.
    has_reference = day - dt.timedelta(days=model.labels.maturity_days) >= model.start_date
    parts = [realised.table]
    for window_days in model.evaluation.windows_days:
        earlier = kept.filter(pc.equal(kept["window_days"], window_days))
        if earlier.num_rows:
            parts.append(earlier)
        elif day > mature_through and has_reference:
            window = realised.table.filter(pc.equal(realised.table["window_days"], window_days))
            days_with_stats = window["days_with_stats"][0].as_py() if window.num_rows else 0
            estimates = estimate_window(lake, model, day, window_days)
            parts.append(estimate_table(model, day, window_days, days_with_stats, estimates))
    return RollingEval(model, day, pa.concat_tables(parts))


def approved_rate_thresholds(
    lake: Lake, model: ModelSpec, day: str | dt.date, window_days: int
) -> dict[str, float | None]:
    """Per version, the threshold that would have kept the approved decision rate over the window ending on ``day``."""
    rate = model.evaluation.approved_decision_rate
    if rate is None:
        return {}
    stats, _ = window_stats(lake, model, day, window_days)
    populations = score_counts(stats, pool_versions=False)
    versions = {version: counts for (version, segment, _), counts in populations.items() if segment == ALL}
    return {version: threshold_for_rate(versions[version], rate) for version in sorted(versions)}
