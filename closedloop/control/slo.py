"""SLOs: a production metric's value for a period, judged against its SLO, with memory.

A metric's ``source`` names where closedloop already keeps it (the metric catalog):

- ``rolling_eval.<metric>[<N>d]``: the N-day window (whole population, matured labels). A
  metric that needs labels is read for the latest window whose labels had all matured when the
  day began (labels through the day before: the window ending ``labels.maturity_days + 1``
  days earlier), so the value judged on a day is what was knowable that day and the same in a
  backfill as in the daily run; label-free metrics (decision rate, ...) are read for the
  window ending on the day.
- ``eval.<metric>``: a label-free metric of the day's ``eval_stats`` (decision rate, rows, ...).
- ``drift.<column>_<metric>`` (optionally ``[<N>d]`` for the window instead of the day): e.g.
  ``drift.score_psi`` is the PSI of column ``score``; ``drift.drifting_inputs`` counts the
  feature and segment columns with a figure past its error limit.
- ``outcomes.label_coverage[<K>d]``: the share of the predictions made K days before the day
  whose label had arrived by the end of the day (a point-in-time fact: later labels do not
  change it, so a label outage shows on the day it happens).
- ``ops.<metric>``: a metric of ``ops_metrics`` over the hour (hourly cadence) or the day.
- ``predictions`` with ``sql``: a DuckDB aggregate expression over the period's predictions.

Every source reads all versions pooled and each version on its own; an SLO with
``per_version`` is held to its worst version. A value backed by fewer than the SLO's
``min_rows`` rows is no data. An SLO is breached after ``for`` consecutive breaching periods
and recovers after ``recovery_periods`` consecutive ok periods; a period without data changes
nothing, so a gap in the data neither opens nor closes an incident. Each evaluation is one
``slo_evaluations`` row, the source of truth for the incident sensor and the CLI; the rows
where the state turns breached or back to ok carry the ``transition`` the sensor acts on.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from closedloop.evaluation import metrics as quality
from closedloop.inputs.contract import prediction_types
from closedloop.drift.report import ALL_INPUTS
from closedloop.evaluation.eval_stats import score_counts
from closedloop.core.lake import Lake
from closedloop.core.periods import UTC, period_bounds, period_key, period_start
from closedloop.ops.stats import OPS_STATS_SCHEMA, ops_metrics
from closedloop.drift.profiles import ALL_VERSIONS
from closedloop.core.registry import DRIFT_METRICS, DRIFT_OUTPUT_COLUMNS, ModelSpec, ProductionMetric, Registry, RegistryError, SLOSpec
from closedloop.evaluation.rolling_eval import LABEL_FREE_METRICS, pooled_threshold
from closedloop.core.sql import connect, query

ALL = "all"  # rolling_eval's and eval_stats' name for all versions pooled and the whole population
# Metrics closedloop.evaluation.metrics.evaluate reports per window (precision_at_<k> comes from the registry).
ROLLING_EVAL_METRICS = (
    "n", "n_labeled", "n_positive", "coverage", "positive_rate", "decision_rate", "above_threshold",
    "below_threshold", "roc_auc", "pr_auc", "precision", "recall", "f1", "brier", "log_loss", "ece", "mce",
)  # fmt: skip
EVAL_METRICS = LABEL_FREE_METRICS
OUTCOME_METRICS = ("label_coverage",)
DRIFTING_INPUTS = "drifting_inputs"
OPS_METRICS = (
    "requests", "errors", "fallbacks", "error_rate", "fallback_rate", "latency_p50_ms", "latency_p95_ms",
    "latency_p99_ms", "latency_mean_ms", "cost_usd", "cost_per_1k",
)  # fmt: skip
BUSINESS_SOURCES = ("predictions",)
BREACHED, RECOVERED = "breached", "recovered"  # transitions

SLO_EVALUATIONS_SCHEMA = pa.schema(
    [
        ("model", pa.string()),
        ("slo", pa.string()),
        ("metric", pa.string()),
        ("source", pa.string()),
        ("cadence", pa.string()),
        ("period", pa.string()),  # YYYY-MM-DD for a day, YYYY-MM-DDTHH:00:00+00:00 for an hour
        ("day", pa.date32()),  # the lake partition the row lives in
        ("version", pa.string()),  # whose value it is: 'all' (pooled) or, per version, the worst version
        ("value", pa.float64()),  # null: no data for the period
        ("rows", pa.int64()),  # rows behind the value, where the source counts them
        ("detail", pa.string()),  # what stands behind the value (each version's value, the drifting columns)
        ("comparison", pa.string()),
        ("threshold", pa.float64()),
        ("band_low", pa.float64()),
        ("band_high", pa.float64()),
        ("breach", pa.bool_()),  # null: no data
        ("consecutive_breaches", pa.int32()),
        ("consecutive_ok", pa.int32()),
        ("state", pa.string()),
        ("breached_since", pa.string()),  # period the current breach began (on a recovery: the breach that ended)
        ("transition", pa.string()),  # 'breached' when the state turns breached, 'recovered' when it turns ok again
        ("severity", pa.string()),
        ("owner", pa.string()),
        ("evaluated_at", pa.timestamp("us", tz="UTC")),
    ]
)


class SLOError(ValueError):
    """An SLO or production metric that closedloop cannot evaluate; the message names it."""


# The metric catalog


@dataclass(frozen=True)
class MetricSource:
    """A parsed ``source``: which lake table, which metric in it, and the qualifiers."""

    kind: str  # rolling_eval, eval, drift, outcomes, ops, business
    metric: str
    column: str | None = None
    window: str | None = None  # rolling_eval: window days; drift: "day" or "<N>d"; outcomes: days back


@dataclass(frozen=True)
class Reading:
    """A metric's value for one period and one population: a version, or all versions pooled."""

    version: str
    value: float | None
    rows: int | None = None  # rows behind the value, where the source counts them
    detail: str | None = None


_WINDOWED = re.compile(r"^(?P<name>[a-z0-9_]+)(\[(?P<days>[1-9][0-9]*)d\])?$")


def known_sources(model: ModelSpec) -> list[str]:
    """The source names (patterns where a family is large) a metric of ``model`` may use, for error messages."""
    windows = list(model.evaluation.windows_days)
    quality_metrics = list(ROLLING_EVAL_METRICS) + [f"precision_at_{k}" for k in model.evaluation.precision_at_k]
    columns = list(model.features.all + model.segments + DRIFT_OUTPUT_COLUMNS)
    return [
        f"rolling_eval.<metric>[<N>d] with N in {windows} and metric in {quality_metrics}",
        f"eval.<metric> with metric in {list(EVAL_METRICS)}",
        f"drift.<column>_<metric> (optionally [<N>d]) with column in {columns} and metric in {list(DRIFT_METRICS)}",
        f"drift.{DRIFTING_INPUTS} (optionally [<N>d])",
        "outcomes.label_coverage[<K>d] (predictions of K days before, labeled by the end of the day)",
        f"ops.<metric> with metric in {list(OPS_METRICS)}",
        f"{' or '.join(BUSINESS_SOURCES)} with sql: <DuckDB aggregate expression>",
    ]


def parse_source(model: ModelSpec, metric: ProductionMetric) -> MetricSource:
    """Where ``metric`` lives; SLOError (naming the metric and the known sources) if nowhere."""
    source = metric.source
    family, _, rest = source.partition(".")
    match = _WINDOWED.match(rest)
    parsed = None
    if metric.sql is not None:
        if source in BUSINESS_SOURCES:
            parsed = MetricSource("business", metric.name)
    elif family == "rolling_eval" and match and match["days"]:
        names = ROLLING_EVAL_METRICS + tuple(f"precision_at_{k}" for k in model.evaluation.precision_at_k)
        if match["name"] in names and int(match["days"]) in model.evaluation.windows_days:
            parsed = MetricSource("rolling_eval", match["name"], window=match["days"])
    elif family == "eval" and rest in EVAL_METRICS:
        parsed = MetricSource("eval", rest)
    elif family == "outcomes" and match and match["days"] and match["name"] in OUTCOME_METRICS:
        parsed = MetricSource("outcomes", match["name"], window=match["days"])
    elif family == "drift" and match:
        window = f"{match['days']}d" if match["days"] else "day"
        if match["name"] == DRIFTING_INPUTS:
            parsed = MetricSource("drift", DRIFTING_INPUTS, window=window)
        columns = model.features.all + model.segments + DRIFT_OUTPUT_COLUMNS
        for name in DRIFT_METRICS:
            column = match["name"].removesuffix(f"_{name}")
            if column != match["name"] and column in columns:
                parsed = MetricSource("drift", name, column, window)
    elif family == "ops" and rest in OPS_METRICS:
        parsed = MetricSource("ops", rest)
    if parsed is None:
        raise SLOError(f"unknown source {source!r}" + (" for a metric with sql" if metric.sql is not None else ""))
    return parsed


def validate_business_sql(model: ModelSpec, expression: str) -> None:
    """Prepare the expression against an empty predictions table with the contract's columns.

    Catches unknown columns, syntax and type errors, and expressions that are not one aggregate
    value, at registry load instead of at the first evaluation.
    """
    if ";" in expression:
        raise SLOError(f"sql {expression!r} must be a single expression (no ';')")
    empty = pa.schema(list(prediction_types(model).items())).empty_table()
    start, end, _ = period_bounds(model.start_date)
    try:
        with connect() as con:
            con.register("predictions", empty)
            result = con.execute(_business_sql(expression), {"start": start, "end": end}).fetchall()
    except duckdb.Error as exc:
        message = str(exc).splitlines()[0]
        if "GROUP BY" in message:
            raise SLOError(f"sql {expression!r} must be an aggregate (one value per period, e.g. avg(decision))") from None
        raise SLOError(f"sql {expression!r} does not run on the predictions table: {message}") from None
    if len(result) != 1:
        raise SLOError(f"sql {expression!r} must be an aggregate (one value per period, e.g. avg(decision))")


def _business_sql(expression: str) -> str:
    return query("business_metric").replace("{expression}", expression)


def validate_model_slos(model: ModelSpec) -> list[str]:
    """Problems with the sources of the metrics that ``model``'s SLOs watch (empty when none)."""
    metrics = {m.name: m for m in model.metrics}
    problems = []
    for slo in model.slos:
        metric = metrics[slo.metric]  # the registry already checked the name
        try:
            parse_source(model, metric)
            if metric.sql is not None:
                validate_business_sql(model, metric.sql)
        except SLOError as exc:
            known = "; ".join(known_sources(model))
            problems.append(f"models.{model.name}.slos.{slo.name}: metric {metric.name!r}: {exc}; known sources: {known}")
    return problems


def check_registry(registry: Registry) -> Registry:
    """``registry`` if every SLO's metric can be evaluated, else RegistryError listing each bad SLO."""
    problems = [problem for model in registry.models.values() for problem in validate_model_slos(model)]
    if problems:
        raise RegistryError(f"{registry.path}: invalid SLOs\n" + "\n".join(f"  {p}" for p in problems))
    return registry


def metric_readings(lake: Lake, model: ModelSpec, metric: ProductionMetric, period: dt.date | dt.datetime) -> list[Reading]:
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
        return _coverage_readings(lake, model, day, int(source.window))
    if source.kind == "drift":
        return _drift_readings(lake, model, day, source)
    if source.kind == "ops":
        return _ops_readings(lake, model, start, end, cadence, source.metric)
    return _business_readings(lake, model, metric.sql, start, end)


def _number(value: object) -> float | None:
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
    mask = pc.and_(pc.equal(table["window_days"], int(source.window)), pc.equal(table["segment"], ALL))
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
    predicted = day - dt.timedelta(days=days_back)
    table = lake.read_partition(model.name, "outcomes", predicted, columns=["model_version", "label_ts"])
    if table is None:
        return []
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=UTC)
    known = pc.fill_null(pc.less(table["label_ts"], pa.scalar(end, table.schema.field("label_ts").type)), False)
    table = table.append_column("known", pc.cast(known, pa.int64()))
    pooled = table.group_by([]).aggregate([("known", "sum"), ("known", "count")]).to_pylist()
    versions = table.group_by("model_version").aggregate([("known", "sum"), ("known", "count")]).to_pylist()
    detail = f"predictions of {predicted} labeled by the end of {day}"
    return [
        Reading(row.get("model_version", ALL), row["known_sum"] / row["known_count"], row["known_count"], detail)
        for row in pooled + sorted(versions, key=lambda r: r["model_version"])
        if row["known_count"]
    ]


def _drift_readings(lake: Lake, model: ModelSpec, day: dt.date, source: MetricSource) -> list[Reading]:
    table = lake.read_partition(model.name, "drift", day)
    if table is None:
        return []
    table = table.filter(pc.equal(table["window"], source.window))
    if source.metric == DRIFTING_INPUTS:
        return _drifting_inputs(table)
    rows = table.filter(pc.and_(pc.equal(table["column"], source.column), pc.equal(table["metric"], source.metric)))
    return [
        Reading(ALL if r["version"] == ALL_VERSIONS else r["version"], None if r["status"] == "not_enough_data" else _number(r["value"]), r["rows"])
        for r in rows.to_pylist()
    ]


def _drifting_inputs(table: pa.Table) -> list[Reading]:
    """Per version: how many feature and segment columns have a figure past its error limit, and which."""
    outputs = pa.array([*DRIFT_OUTPUT_COLUMNS, ALL_INPUTS])
    inputs = table.filter(pc.invert(pc.is_in(table["column"], outputs))).to_pylist()
    readings = []
    for version in sorted({r["version"] for r in inputs}):
        mine = [r for r in inputs if r["version"] == version]
        judged = [r for r in mine if r["status"] != "not_enough_data"]
        if not judged:
            readings.append(Reading(ALL if version == ALL_VERSIONS else version, None))
            continue
        worst: dict[str, dict] = {}
        for r in sorted((r for r in judged if r["status"] == "error"), key=lambda r: -(r["severity"] or 0)):
            worst.setdefault(r["column"], r)
        detail = ", ".join(f"{c} ({r['metric']} {r['value']:.3g}, limit {r['threshold']:.3g})" for c, r in worst.items())
        rows = max(r["rows"] for r in judged)
        readings.append(Reading(ALL if version == ALL_VERSIONS else version, float(len(worst)), rows, detail or None))
    return readings


def _ops_readings(lake: Lake, model: ModelSpec, start: dt.datetime, end: dt.datetime, cadence: str, metric: str) -> list[Reading]:
    files = lake.partition_files(model.name, "ops_stats", start.date(), start.date())
    if not files:
        return []
    readings = []
    for row in _ops_metrics_of_day(files[0], files[0].stat().st_mtime_ns, cadence):
        if row["period"] != start:
            continue
        # Like the ops guards: a quiet hour's p95 is a handful of requests, not a measurement.
        enough = cadence != "hourly" or row["requests"] >= model.ops.min_requests_per_hour
        readings.append(Reading(row["model_version"], _number(row[metric]) if enough else None, int(row["requests"])))
    return readings


@functools.lru_cache(maxsize=4)
def _ops_metrics_of_day(path: Path, modified_ns: int, cadence: str) -> list[dict]:
    """Every hour's (or the whole day's) ops metrics of one ``ops_stats`` partition, pooled and per version.

    Judging a day's 24 hours reads and merges the partition once, not 24 times; the file's
    modification time is part of the key, so a refreshed partition is read again.
    """
    stats = Lake.read_files([path], OPS_STATS_SCHEMA)
    if cadence == "daily":
        day = stats["hour"][0].as_py().replace(hour=0) if stats.num_rows else None
        stats = stats.set_column(0, "hour", pa.array([day] * stats.num_rows, stats.schema.field("hour").type))
    pooled = ops_metrics(stats, by=("hour",)).assign(model_version=ALL)
    per_version = ops_metrics(stats, by=("hour", "model_version"))
    return [{**row, "period": row["hour"].to_pydatetime()} for row in [*pooled.to_dict("records"), *per_version.to_dict("records")]]


def _business_readings(lake: Lake, model: ModelSpec, expression: str, start: dt.datetime, end: dt.datetime) -> list[Reading]:
    files = lake.partition_files(model.name, "predictions", start.date(), start.date())
    if not files:
        return []
    with connect() as con:
        con.register("predictions", con.read_parquet([str(f) for f in files]))
        rows = con.execute(_business_sql(expression), {"start": start, "end": end}).fetchall()
    return [Reading(version or ALL, _number(value), int(n)) for version, value, n in sorted(rows, key=lambda r: r[0] or "") if n]


# Judging and the state machine


def is_breach(slo: SLOSpec, value: float) -> bool:
    """True when ``value`` breaks the SLO: outside the band, or failing the comparison with the threshold."""
    if slo.band is not None:
        return not slo.band[0] <= value <= slo.band[1]
    holds = {"<": value < slo.threshold, "<=": value <= slo.threshold, ">": value > slo.threshold, ">=": value >= slo.threshold}
    return not holds[slo.comparison]


def shortfall(slo: SLOSpec, value: float) -> float:
    """How far ``value`` lies on the bad side of the SLO's bound (negative: the margin left), to rank versions by."""
    if slo.band is not None:
        return max(slo.band[0] - value, value - slo.band[1])
    return slo.threshold - value if slo.comparison in (">", ">=") else value - slo.threshold


def judged_reading(slo: SLOSpec, readings: Iterable[Reading]) -> Reading | None:
    """The reading the SLO is judged on: the pooled one, or with ``per_version`` the worst version's.

    Readings without a value or with fewer than ``min_rows`` rows behind them do not count; None
    when nothing is left (no data).
    """
    usable = [
        r for r in readings
        if r.value is not None and (r.rows is None or r.rows >= slo.min_rows) and (r.version != ALL) == slo.per_version
    ]  # fmt: skip
    if not usable:
        return None
    worst = max(usable, key=lambda r: shortfall(slo, r.value))
    if not slo.per_version:
        return worst
    others = "; ".join(f"{r.version} {r.value:.4g}" for r in sorted(usable, key=lambda r: r.version))
    return Reading(worst.version, worst.value, worst.rows, "; ".join(filter(None, [f"versions: {others}", worst.detail])))


@dataclass(frozen=True)
class SLOState:
    """Where an SLO stands after a period: its state, the run lengths that decide the next, and
    the period its current breach began."""

    state: str = "ok"
    consecutive_breaches: int = 0
    consecutive_ok: int = 0
    breached_since: str | None = None


def next_state(slo: SLOSpec, before: SLOState, breach: bool | None, period: str = "") -> SLOState:
    """The state after one more period: breached after ``for`` breaches in a row, ok again after
    ``recovery_periods`` ok periods in a row; no data (None) leaves everything as it was."""
    if breach is None:
        return before
    if breach:
        count = before.consecutive_breaches + 1
        if before.state == "breached":
            return SLOState("breached", count, 0, before.breached_since)
        if count >= slo.for_periods:
            return SLOState("breached", count, 0, period)
        return SLOState("breaching", count, 0)
    ok = before.consecutive_ok + 1
    if before.state == "breached" and ok < slo.recovery_periods:
        return SLOState("breached", 0, ok, before.breached_since)
    return SLOState("ok", 0, ok)


def transition(before: SLOState, after: SLOState) -> str | None:
    """``breached`` when the SLO has just become breached, ``recovered`` when it has just recovered."""
    if after.state == "breached" and before.state != "breached":
        return BREACHED
    if before.state == "breached" and after.state == "ok":
        return RECOVERED
    return None


def _previous_states(previous: Iterable[Mapping] | pa.Table | None) -> dict[str, SLOState]:
    rows = previous.to_pylist() if isinstance(previous, pa.Table) else list(previous or [])
    latest: dict[str, Mapping] = {}
    for row in sorted(rows, key=lambda r: period_start(r["period"])):
        latest[row["slo"]] = row
    return {
        name: SLOState(
            row["state"],
            row["consecutive_breaches"],
            row["consecutive_ok"],
            row.get("breached_since") if row["state"] == "breached" else None,
        )
        for name, row in latest.items()
    }


def evaluate_slos(
    lake: Lake,
    model: ModelSpec,
    period: dt.date | dt.datetime,
    previous: Iterable[Mapping] | pa.Table | None,
    evaluated_at: dt.datetime,
    slos: Iterable[SLOSpec] | None = None,
) -> pa.Table:
    """``slo_evaluations`` rows of the SLOs (``slos``, default all the model's) whose metric has the
    period's cadence (a date: daily, an hour: hourly).

    ``previous`` holds earlier evaluation rows (at least each SLO's latest; see
    ``latest_evaluations``); an SLO without one starts ok. Deterministic given the lake and inputs.
    """
    start, _, cadence = period_bounds(period)
    key = period_key(period)
    metrics = {m.name: m for m in model.metrics}
    before = _previous_states(previous)
    readings: dict[str, list[Reading]] = {}
    rows = []
    for slo in model.slos if slos is None else slos:
        metric = metrics[slo.metric]
        if metric.cadence != cadence:
            continue
        if metric.name not in readings:
            readings[metric.name] = metric_readings(lake, model, metric, period)
        reading = judged_reading(slo, readings[metric.name])
        breach = None if reading is None else is_breach(slo, reading.value)
        earlier = before.get(slo.name, SLOState())
        after = next_state(slo, earlier, breach, key)
        change = transition(earlier, after)
        rows.append(
            {
                "model": model.name,
                "slo": slo.name,
                "metric": metric.name,
                "source": metric.source,
                "cadence": cadence,
                "period": key,
                "day": start.date(),
                "version": None if reading is None else reading.version,
                "value": None if reading is None else reading.value,
                "rows": None if reading is None else reading.rows,
                "detail": None if reading is None else reading.detail,
                "comparison": slo.comparison,
                "threshold": slo.threshold,
                "band_low": slo.band[0] if slo.band else None,
                "band_high": slo.band[1] if slo.band else None,
                "breach": breach,
                "consecutive_breaches": after.consecutive_breaches,
                "consecutive_ok": after.consecutive_ok,
                "state": after.state,
                "breached_since": earlier.breached_since if change == RECOVERED else after.breached_since,
                "transition": change,
                "severity": slo.severity,
                "owner": slo.owner or metric.owner,
                "evaluated_at": evaluated_at,
            }
        )
    return pa.Table.from_pylist(rows, schema=SLO_EVALUATIONS_SCHEMA)


def evaluate_periods(
    lake: Lake, model: ModelSpec, periods: list[dt.date | dt.datetime], slos: Iterable[SLOSpec], evaluated_at: dt.datetime
) -> pa.Table:
    """``slos`` judged for each period in order (a day, then its hours), each state carried from the
    period before, starting from the lake's latest evaluations before the first period."""
    slos = list(slos)
    previous = {row["slo"]: row for row in latest_evaluations(lake, model.name, periods[0])} if periods else {}
    tables = [SLO_EVALUATIONS_SCHEMA.empty_table()]
    for period in periods:
        rows = evaluate_slos(lake, model, period, list(previous.values()), evaluated_at, slos)
        previous.update({row["slo"]: row for row in rows.to_pylist()})
        tables.append(rows)
    return pa.concat_tables(tables)


def metric_table(model: ModelSpec, slo: SLOSpec) -> str:
    """The lake table (and Dagster asset) an SLO's metric is computed from: its check lives there."""
    metric = next(m for m in model.metrics if m.name == slo.metric)
    kind = parse_source(model, metric).kind
    return {"business": "predictions", "eval": "eval_stats", "ops": "ops_stats"}.get(kind, kind)


# The lake record


def read_evaluations(lake: Lake, model: str, start: dt.date | None = None, end: dt.date | None = None) -> pa.Table:
    """Every ``slo_evaluations`` row of the days from ``start`` to ``end`` (inclusive), in file order."""
    return lake.read_range(model, "slo_evaluations", start, end, schema=SLO_EVALUATIONS_SCHEMA)


def latest_evaluations(lake: Lake, model: str, period: dt.date | dt.datetime, lookback_days: int = 30) -> list[dict]:
    """Each SLO's latest evaluation strictly before ``period``: the ``previous`` of ``evaluate_slos``.

    Only the last ``lookback_days`` are read; an SLO not evaluated in them starts over as ok.
    """
    start, _, _ = period_bounds(period)
    table = read_evaluations(lake, model, start.date() - dt.timedelta(days=lookback_days), start.date())
    latest: dict[str, dict] = {}
    for row in sorted(table.to_pylist(), key=lambda r: period_start(r["period"])):
        if period_start(row["period"]) < start:
            latest[row["slo"]] = row
    return list(latest.values())


def record_evaluations(lake: Lake, model: str, rows: pa.Table) -> list:
    """Add rows to their day's ``slo_evaluations`` partitions, replacing earlier rows of the same SLO and period."""
    rows = rows.cast(SLO_EVALUATIONS_SCHEMA)
    return [
        lake.upsert_partition(model, "slo_evaluations", day, rows.filter(pc.equal(rows["day"], day)), ("slo", "period"))
        for day in sorted(set(rows["day"].to_pylist()))
    ]
