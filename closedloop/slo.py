"""SLOs: a production metric's value for a period, judged against its SLO, with memory.

A metric's ``source`` names where closedloop already keeps it (the metric catalog):

- ``rolling_eval.<metric>[<N>d]``: the N-day window ending on the day, all versions pooled,
  whole population, matured labels (``rolling_eval`` table).
- ``drift.<column>_<metric>`` (optionally ``[<N>d]`` for the window instead of the day): e.g.
  ``drift.score_psi`` is the PSI of column ``score``, all versions together (``drift`` table).
- ``ops.<metric>``: a metric of ``ops_metrics`` over the hour (hourly cadence) or the day.
- ``predictions`` with ``sql``: a DuckDB aggregate expression over the period's predictions.

An SLO is breached after ``for`` consecutive breaching periods and recovers after
``recovery_periods`` consecutive ok periods; a period without data changes nothing, so a gap in
the data neither opens nor closes an incident. Each evaluation is one ``slo_evaluations`` row,
the source of truth for the incident sensor and the CLI.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from closedloop.contract import prediction_types
from closedloop.lake import Lake
from closedloop.names import checked_day
from closedloop.ops_stats import ops_metrics, read_ops_stats
from closedloop.profiles import ALL_VERSIONS
from closedloop.registry import DRIFT_METRICS, DRIFT_OUTPUT_COLUMNS, ModelSpec, ProductionMetric, Registry, RegistryError, SLOSpec
from closedloop.sql import connect, query

UTC = dt.timezone.utc
ALL = "all"  # rolling_eval's name for all versions pooled and the whole population
# Metrics closedloop.metrics.evaluate reports per window (precision_at_<k> comes from the registry).
ROLLING_EVAL_METRICS = (
    "n", "n_labeled", "n_positive", "coverage", "positive_rate", "decision_rate", "above_threshold",
    "below_threshold", "roc_auc", "pr_auc", "precision", "recall", "f1", "brier", "log_loss", "ece", "mce",
)  # fmt: skip
OPS_METRICS = (
    "requests", "errors", "fallbacks", "error_rate", "fallback_rate", "latency_p50_ms", "latency_p95_ms",
    "latency_p99_ms", "latency_mean_ms", "cost_usd", "cost_per_1k",
)  # fmt: skip
BUSINESS_SOURCES = ("predictions",)
STATES = ("ok", "breaching", "breached")

SLO_EVALUATIONS_SCHEMA = pa.schema(
    [
        ("model", pa.string()),
        ("slo", pa.string()),
        ("metric", pa.string()),
        ("source", pa.string()),
        ("cadence", pa.string()),
        ("period", pa.string()),  # YYYY-MM-DD for a day, YYYY-MM-DDTHH:00:00+00:00 for an hour
        ("day", pa.date32()),  # the lake partition the row lives in
        ("value", pa.float64()),  # null: no data for the period
        ("comparison", pa.string()),
        ("threshold", pa.float64()),
        ("band_low", pa.float64()),
        ("band_high", pa.float64()),
        ("breach", pa.bool_()),  # null: no data
        ("consecutive_breaches", pa.int32()),
        ("consecutive_ok", pa.int32()),
        ("state", pa.string()),
        ("severity", pa.string()),
        ("owner", pa.string()),
        ("evaluated_at", pa.timestamp("us", tz="UTC")),
    ]
)


class SLOError(ValueError):
    """An SLO or production metric that closedloop cannot evaluate; the message names it."""


# Periods


def period_bounds(period: dt.date | dt.datetime) -> tuple[dt.datetime, dt.datetime, str]:
    """[start, end) in UTC and the cadence: a date is a day, an aware datetime on the hour is an hour."""
    if isinstance(period, dt.datetime):
        if period.tzinfo is None or period.minute or period.second or period.microsecond:
            raise SLOError(f"an hourly period must be a time-zone aware datetime on the hour, got {period!r}")
        start = period.astimezone(UTC)
        return start, start + dt.timedelta(hours=1), "hourly"
    day = checked_day(period)
    start = dt.datetime.combine(day, dt.time(), tzinfo=UTC)
    return start, start + dt.timedelta(days=1), "daily"


def period_key(period: dt.date | dt.datetime) -> str:
    """The period as the ``slo_evaluations.period`` string."""
    start, _, cadence = period_bounds(period)
    return start.date().isoformat() if cadence == "daily" else start.isoformat()


# The metric catalog


@dataclass(frozen=True)
class MetricSource:
    """A parsed ``source``: which lake table, which metric in it, and the qualifiers."""

    kind: str  # rolling_eval, drift, ops, business
    metric: str
    column: str | None = None
    window: str | None = None  # rolling_eval: window days; drift: "day" or "<N>d"


_WINDOWED = re.compile(r"^(?P<name>[a-z0-9_]+)(\[(?P<days>[1-9][0-9]*)d\])?$")


def known_sources(model: ModelSpec) -> list[str]:
    """The source names (patterns where a family is large) a metric of ``model`` may use, for error messages."""
    windows = list(model.evaluation.windows_days)
    quality = list(ROLLING_EVAL_METRICS) + [f"precision_at_{k}" for k in model.evaluation.precision_at_k]
    columns = list(model.features.all + model.segments + DRIFT_OUTPUT_COLUMNS)
    return [
        f"rolling_eval.<metric>[<N>d] with N in {windows} and metric in {quality}",
        f"drift.<column>_<metric> (optionally [<N>d]) with column in {columns} and metric in {list(DRIFT_METRICS)}",
        f"ops.<metric> with metric in {list(OPS_METRICS)}",
        f"{' or '.join(BUSINESS_SOURCES)} with sql: <DuckDB aggregate expression>",
    ]


def parse_source(model: ModelSpec, metric: ProductionMetric) -> MetricSource:
    """Where ``metric`` lives; SLOError (naming the metric and the known sources) if nowhere."""
    source = metric.source
    family, _, rest = source.partition(".")
    parsed = None
    if metric.sql is not None:
        if source in BUSINESS_SOURCES:
            parsed = MetricSource("business", metric.name)
    elif family == "rolling_eval" and (match := _WINDOWED.match(rest)) and match["days"]:
        quality = ROLLING_EVAL_METRICS + tuple(f"precision_at_{k}" for k in model.evaluation.precision_at_k)
        if match["name"] in quality and int(match["days"]) in model.evaluation.windows_days:
            parsed = MetricSource("rolling_eval", match["name"], window=match["days"])
    elif family == "drift" and (match := _WINDOWED.match(rest)):
        columns = model.features.all + model.segments + DRIFT_OUTPUT_COLUMNS
        for name in DRIFT_METRICS:
            column = match["name"].removesuffix(f"_{name}")
            if column != match["name"] and column in columns:
                parsed = MetricSource("drift", name, column, f"{match['days']}d" if match["days"] else "day")
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
        raise SLOError(f"sql {expression!r} does not run on the predictions table: {str(exc).splitlines()[0]}") from None
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


def metric_value(lake: Lake, model: ModelSpec, metric: ProductionMetric, period: dt.date | dt.datetime) -> float | None:
    """The metric's value for the period (a day, or an hour for ops and business metrics); None without data."""
    source = parse_source(model, metric)
    start, end, cadence = period_bounds(period)
    day = start.date()
    if source.kind == "rolling_eval":
        return _rolling_eval_value(lake, model, day, source)
    if source.kind == "drift":
        return _drift_value(lake, model, day, source)
    if source.kind == "ops":
        return _ops_value(lake, model, start, end, cadence, source.metric)
    return _business_value(lake, model, metric.sql, start, end)


def _single(table: pa.Table | None, **equal: object) -> float | None:
    if table is None:
        return None
    for column, value in equal.items():
        table = table.filter(pc.equal(table[column], value))
    if table.num_rows > 1:
        raise SLOError(f"expected one lake row for {equal}, found {table.num_rows}")
    value = table["value"][0].as_py() if table.num_rows else None
    return None if value is None or math.isnan(value) else float(value)


def _rolling_eval_value(lake: Lake, model: ModelSpec, day: dt.date, source: MetricSource) -> float | None:
    table = lake.read_partition(model.name, "rolling_eval", day)
    return _single(
        table, window_days=int(source.window), model_version=ALL, segment=ALL, labels="matured", metric=source.metric
    )


def _drift_value(lake: Lake, model: ModelSpec, day: dt.date, source: MetricSource) -> float | None:
    table = lake.read_partition(model.name, "drift", day)
    return _single(table, column=source.column, version=ALL_VERSIONS, window=source.window, metric=source.metric)


def _ops_value(lake: Lake, model: ModelSpec, start: dt.datetime, end: dt.datetime, cadence: str, metric: str) -> float | None:
    stats = read_ops_stats(lake, model.name, start.date(), start.date())
    if cadence == "hourly":
        stats = stats.filter(pc.and_(pc.greater_equal(stats["hour"], start), pc.less(stats["hour"], end)))
    if stats.num_rows == 0:
        return None
    merged = ops_metrics(stats, by=()).iloc[0]
    # Like the ops guards: a quiet hour's p95 is a handful of requests, not a measurement.
    if cadence == "hourly" and merged["requests"] < model.ops.min_requests_per_hour:
        return None
    value = merged[metric]
    return None if value is None or math.isnan(value) else float(value)


def _business_value(lake: Lake, model: ModelSpec, expression: str, start: dt.datetime, end: dt.datetime) -> float | None:
    files = lake.partition_files(model.name, "predictions", start.date(), start.date())
    if not files:
        return None
    with connect() as con:
        con.register("predictions", con.read_parquet([str(f) for f in files]))
        value = con.execute(_business_sql(expression), {"start": start, "end": end}).fetchone()[0]
    return None if value is None or math.isnan(float(value)) else float(value)


# Judging and the state machine


def is_breach(slo: SLOSpec, value: float) -> bool:
    """True when ``value`` breaks the SLO: outside the band, or failing the comparison with the threshold."""
    if slo.band is not None:
        return not slo.band[0] <= value <= slo.band[1]
    holds = {"<": value < slo.threshold, "<=": value <= slo.threshold, ">": value > slo.threshold, ">=": value >= slo.threshold}
    return not holds[slo.comparison]


@dataclass(frozen=True)
class SLOState:
    """Where an SLO stands after a period: its state and the run lengths that decide the next."""

    state: str = "ok"
    consecutive_breaches: int = 0
    consecutive_ok: int = 0


def next_state(slo: SLOSpec, before: SLOState, breach: bool | None) -> SLOState:
    """The state after one more period: breached after ``for`` breaches in a row, ok again after
    ``recovery_periods`` ok periods in a row; no data (None) leaves everything as it was."""
    if breach is None:
        return before
    if breach:
        count = before.consecutive_breaches + 1
        state = "breached" if before.state == "breached" or count >= slo.for_periods else "breaching"
        return SLOState(state, count, 0)
    ok = before.consecutive_ok + 1
    state = "breached" if before.state == "breached" and ok < slo.recovery_periods else "ok"
    return SLOState(state, 0, ok)


def _previous_states(previous: Iterable[Mapping] | pa.Table | None) -> dict[str, SLOState]:
    rows = previous.to_pylist() if isinstance(previous, pa.Table) else list(previous or [])
    latest: dict[str, Mapping] = {}
    for row in sorted(rows, key=lambda r: r["period"]):
        latest[row["slo"]] = row
    return {
        name: SLOState(row["state"], row["consecutive_breaches"], row["consecutive_ok"]) for name, row in latest.items()
    }


def evaluate_slos(
    lake: Lake,
    model: ModelSpec,
    period: dt.date | dt.datetime,
    previous: Iterable[Mapping] | pa.Table | None,
    evaluated_at: dt.datetime,
) -> pa.Table:
    """``slo_evaluations`` rows of the SLOs whose metric has the period's cadence (a date: daily, an hour: hourly).

    ``previous`` holds earlier evaluation rows (at least each SLO's latest; see
    ``latest_evaluations``); an SLO without one starts ok. Deterministic given the lake and inputs.
    """
    _, _, cadence = period_bounds(period)
    metrics = {m.name: m for m in model.metrics}
    before = _previous_states(previous)
    rows = []
    for slo in model.slos:
        metric = metrics[slo.metric]
        if metric.cadence != cadence:
            continue
        value = metric_value(lake, model, metric, period)
        breach = None if value is None else is_breach(slo, value)
        after = next_state(slo, before.get(slo.name, SLOState()), breach)
        rows.append(
            {
                "model": model.name,
                "slo": slo.name,
                "metric": metric.name,
                "source": metric.source,
                "cadence": cadence,
                "period": period_key(period),
                "day": period_bounds(period)[0].date(),
                "value": value,
                "comparison": slo.comparison,
                "threshold": slo.threshold,
                "band_low": slo.band[0] if slo.band else None,
                "band_high": slo.band[1] if slo.band else None,
                "breach": breach,
                "consecutive_breaches": after.consecutive_breaches,
                "consecutive_ok": after.consecutive_ok,
                "state": after.state,
                "severity": slo.severity,
                "owner": slo.owner or metric.owner,
                "evaluated_at": evaluated_at,
            }
        )
    return pa.Table.from_pylist(rows, schema=SLO_EVALUATIONS_SCHEMA)


# The lake record


def read_evaluations(lake: Lake, model: str, start: dt.date | None = None, end: dt.date | None = None) -> pa.Table:
    """Every ``slo_evaluations`` row of the days from ``start`` to ``end`` (inclusive), in file order."""
    return lake.read_range(model, "slo_evaluations", start, end, schema=SLO_EVALUATIONS_SCHEMA)


def latest_evaluations(lake: Lake, model: str, period: dt.date | dt.datetime, lookback_days: int = 30) -> list[dict]:
    """Each SLO's latest evaluation strictly before ``period``: the ``previous`` of ``evaluate_slos``.

    Only the last ``lookback_days`` are read; an SLO not evaluated in them starts over as ok.
    """
    start, _, _ = period_bounds(period)
    key = period_key(period)
    table = read_evaluations(lake, model, start.date() - dt.timedelta(days=lookback_days), start.date())
    latest: dict[str, dict] = {}
    for row in sorted(table.to_pylist(), key=lambda r: r["period"]):
        if _before(row["period"], key):
            latest[row["slo"]] = row
    return list(latest.values())


def _before(a: str, b: str) -> bool:
    """Whether period key ``a`` ends at or before period ``b`` starts (days and hours compare by start)."""
    def start(key: str) -> dt.datetime:
        return dt.datetime.fromisoformat(key) if "T" in key else dt.datetime.combine(dt.date.fromisoformat(key), dt.time(), tzinfo=UTC)
    return start(a) < start(b)


def record_evaluations(lake: Lake, model: str, rows: pa.Table) -> list:
    """Add rows to their day's ``slo_evaluations`` partitions, replacing earlier rows of the same SLO and period."""
    rows = rows.cast(SLO_EVALUATIONS_SCHEMA)
    return [
        lake.upsert_partition(model, "slo_evaluations", day, rows.filter(pc.equal(rows["day"], day)), ("slo", "period"))
        for day in sorted(set(rows["day"].to_pylist()))
    ]
