"""Readings: a production metric's value for one period, read from the lake table closedloop keeps it in.

Every source gives all versions pooled (version ``all``) and each version on its own, with the
rows behind the value where the source counts them. A metric that needs labels is read from the
latest rolling window whose labels had all matured when the day began (labels through the day
before: the window ending ``labels.maturity_days + 1`` days earlier), so the value judged on a
day is what was knowable that day, the same in a backfill as in the daily run.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from closedloop.control.metric_catalog import DRIFTING_INPUTS, MetricSource, business_sql, parse_source
from closedloop.core.lake import Lake
from closedloop.core.names import ALL
from closedloop.core.periods import period_bounds
from closedloop.core.specs import ModelSpec, ProductionMetric
from closedloop.core.sql import connect
from closedloop.drift.report import UNJUDGED, drifting_inputs, input_drift
from closedloop.evaluation import metrics as quality
from closedloop.evaluation.eval_stats import score_counts
from closedloop.evaluation.outcomes import label_coverage
from closedloop.evaluation.rolling_eval import LABEL_FREE_METRICS, pooled_threshold
from closedloop.ops.stats import OPS_STATS_SCHEMA, ops_metrics


@dataclass(frozen=True)
class Reading:
    """A metric's value for one period and one population: a version, or all versions pooled."""

    version: str
    value: float | None
    rows: int | None = None  # rows behind the value, where the source counts them
    detail: str | None = None
    subject: str | None = None  # who an SLO judging this reading is about (``slo_evaluation.subject_readings``)


def metric_readings(
    lake: Lake, model: ModelSpec, metric: ProductionMetric, period: dt.date | dt.datetime
) -> list[Reading]:
    """The metric for the period (a day, or an hour for ops and business metrics): all versions
    pooled (version ``all``) and each version; empty without data."""
    source = parse_source(model, metric)
    start, end, cadence = period_bounds(period)
    day = start.date()
    if source.kind == "rolling_eval":
        return _rolling_eval_readings(lake, model, day, source)
    if source.kind == "eval":
        return _eval_readings(lake, model, day, source.metric)
    if source.kind == "outcomes":
        return _coverage_readings(lake, model, day, _window_days(source))
    if source.kind == "drift":
        return _drift_readings(lake, model, day, source)
    if source.kind == "ops":
        return _ops_readings(lake, model, start, cadence, source.metric)
    assert metric.sql is not None  # the catalog parses a business source only for a metric with sql
    return _business_readings(lake, model, metric.sql, start, end)


def _window_days(source: MetricSource) -> int:
    """The days of a windowed source (rolling_eval, outcomes); the catalog gives them every windowed source."""
    assert source.window is not None
    return int(source.window)


def _number(value: float | None) -> float | None:
    return None if value is None or math.isnan(float(value)) else float(value)


def label_lag_days(model: ModelSpec) -> int:
    """How many days before a period the latest fully matured evaluation window ends."""
    return model.labels.maturity_days + 1


def _rolling_eval_readings(lake: Lake, model: ModelSpec, day: dt.date, source: MetricSource) -> list[Reading]:
    needs_labels = source.metric not in LABEL_FREE_METRICS
    window_end = day - dt.timedelta(days=label_lag_days(model) if needs_labels else 0)
    table = lake.read_partition(model.name, "rolling_eval", window_end)
    if table is None:
        return []
    mask = pc.and_(pc.equal(table["window_days"], _window_days(source)), pc.equal(table["segment"], ALL))
    rows = table.filter(pc.and_(mask, pc.equal(table["labels"], "matured"))).to_pylist()
    values = {(r["model_version"], r["metric"]): r["value"] for r in rows}
    count = "n_labeled" if needs_labels else "n"
    return [
        Reading(version, _number(value), int(values.get((version, count)) or 0), f"window ending {window_end}")
        for (version, name), value in sorted(values.items())
        if name == source.metric
    ]


def _eval_readings(lake: Lake, model: ModelSpec, day: dt.date, name: str) -> list[Reading]:
    stats = lake.read_partition(model.name, "eval_stats", day)
    if stats is None:
        return []
    readings = []
    for (version, segment, _), counts in sorted(score_counts(stats).items(), key=lambda kv: str(kv[0])):
        if segment != ALL:
            continue
        threshold = pooled_threshold(model, version)
        value: float | None
        if name == "n":
            value = counts.n
        elif name == "decision_rate":
            value = quality.decision_rate(counts).value
        elif threshold is None:
            value = None  # versions with different thresholds have no pooled share above "the" threshold
        else:
            value = getattr(quality, name)(counts, threshold).value
        readings.append(Reading(version, _number(value), int(counts.n)))
    return readings


def _coverage_readings(lake: Lake, model: ModelSpec, day: dt.date, days_back: int) -> list[Reading]:
    detail = f"predictions of {day - dt.timedelta(days=days_back)} labeled by the end of {day}"
    return [Reading(c.version, c.share, c.predictions, detail) for c in label_coverage(lake, model, day, days_back)]


def _drift_readings(lake: Lake, model: ModelSpec, day: dt.date, source: MetricSource) -> list[Reading]:
    table = lake.read_partition(model.name, "drift", day)
    if table is None:
        return []
    table = table.filter(pc.equal(table["window"], source.window))
    if source.metric == DRIFTING_INPUTS.name:
        return [
            Reading(d.version, None if d.count is None else float(d.count), d.rows, d.detail)
            for d in drifting_inputs(table)
        ]
    rows = table.filter(pc.and_(pc.equal(table["column"], source.column), pc.equal(table["metric"], source.metric)))
    return [
        Reading(
            r["version"],
            None if r["status"] in UNJUDGED else _number(r["value"]),
            r["rows"],
        )
        for r in rows.to_pylist()
    ]


def input_drift_readings(lake: Lake, model: ModelSpec, day: dt.date, window: str) -> list[Reading]:
    """``drift.drifting_inputs`` per input column: 1 when the column drifts past an error limit, else 0.

    The subject is the column; only columns with a judged figure (enough rows) have a reading.
    """
    table = lake.read_partition(model.name, "drift", day)
    if table is None:
        return []
    table = table.filter(pc.equal(table["window"], window))
    return [Reading(c.version, float(c.drifting), c.rows, c.detail, subject=c.column) for c in input_drift(table)]


def _ops_readings(
    lake: Lake, model: ModelSpec, start: dt.datetime, cadence: str, metric: str, by_route: bool = False
) -> list[Reading]:
    files = lake.partition_files(model.name, "ops_stats", start.date(), start.date())
    if not files:
        return []
    readings = []
    for row in _ops_metrics_of_day(files[0], files[0].stat().st_mtime_ns, cadence, by_route):
        if row["period"] != start:
            continue
        # Like the ops guards: a quiet hour's p95 is a handful of requests, not a measurement.
        enough = cadence != "hourly" or row["requests"] >= model.ops.min_requests_per_hour
        value = _number(row[metric]) if enough else None
        route = row.get("route")
        detail = None if route is None else f"route {route}"
        readings.append(Reading(row["model_version"], value, int(row["requests"]), detail, subject=route))
    return readings


def route_readings(
    lake: Lake, model: ModelSpec, metric: ProductionMetric, period: dt.date | dt.datetime
) -> list[Reading]:
    """An ``ops.<metric>`` per serving route (pooled over versions and per version): the subject is the route."""
    source = parse_source(model, metric)
    start, _, cadence = period_bounds(period)
    return _ops_readings(lake, model, start, cadence, source.metric, by_route=True)


@functools.lru_cache(maxsize=4)
def _ops_metrics_of_day(path: Path, modified_ns: int, cadence: str, by_route: bool) -> list[dict]:
    """Every hour's (or the whole day's) ops metrics of one ``ops_stats`` partition, pooled and per
    version, and with ``by_route`` per route instead of over all routes.

    Judging a day's 24 hours reads and merges the partition once, not 24 times; the file's
    modification time is part of the key, so a refreshed partition is read again.
    """
    stats = Lake.read_files([path], OPS_STATS_SCHEMA)
    if cadence == "daily":
        day = stats["hour"][0].as_py().replace(hour=0) if stats.num_rows else None
        stats = stats.set_column(0, "hour", pa.array([day] * stats.num_rows, stats.schema.field("hour").type))
    routes = ("route",) if by_route else ()
    pooled = ops_metrics(stats, by=("hour", *routes)).assign(model_version=ALL)
    per_version = ops_metrics(stats, by=("hour", "model_version", *routes))
    return [
        {**row, "period": row["hour"].to_pydatetime()}
        for row in [*pooled.to_dict("records"), *per_version.to_dict("records")]
    ]


def shadow_readings(lake: Lake, model: ModelSpec, metric: ProductionMetric, day: dt.date) -> list[Reading]:
    """A business metric over the day's shadow rows (scored, never applied), per version; [] for other sources.

    The registry's SQL runs on the shadow table as on the served one: it has the same columns.
    """
    if parse_source(model, metric).kind != "business" or metric.sql is None:
        return []
    start, end, _ = period_bounds(day)
    return _business_readings(lake, model, metric.sql, start, end, table="shadow")


def _business_readings(
    lake: Lake, model: ModelSpec, expression: str, start: dt.datetime, end: dt.datetime, table: str = "predictions"
) -> list[Reading]:
    files = lake.partition_files(model.name, table, start.date(), start.date())
    if not files:
        return []
    with connect() as con:
        con.register("predictions", con.read_parquet([str(f) for f in files]))
        rows = con.execute(business_sql(expression), {"start": start, "end": end}).fetchall()
    return [
        Reading(version or ALL, _number(value), int(n))
        for version, value, n in sorted(rows, key=lambda r: r[0] or "")
        if n
    ]
