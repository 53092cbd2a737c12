"""The metric catalog: every metric closedloop can judge, and the ``source`` names a production metric uses for it.

Each stage declares its metrics beside the code that computes them; this module only gathers
them into families, one per lake table they are read from:

- ``rolling_eval.<metric>[<N>d]``: the N-day window (whole population, matured labels), metrics
  of ``evaluation.metrics.WINDOW_METRICS`` and ``precision_at_<k>`` for the registry's queue sizes.
- ``eval.<metric>``: a label-free metric of the day's ``eval_stats`` (decision rate, rows, ...).
- ``drift.<column>_<metric>`` (optionally ``[<N>d]`` for the window instead of the day): e.g.
  ``drift.score_psi`` is the PSI of column ``score``; ``drift.drifting_inputs`` counts the
  feature and segment columns with a figure past its error limit.
- ``outcomes.label_coverage[<K>d]``: the share of the predictions made K days before the day
  whose label had arrived by the end of the day.
- ``ops.<metric>``: a metric of ``ops.stats.ops_metrics`` over the hour (hourly cadence) or the day.
- ``predictions`` with ``sql``: a DuckDB aggregate expression over the period's predictions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from closedloop.core.metric import Metric
from closedloop.core.periods import period_bounds
from closedloop.core.specs import DRIFT_OUTPUT_COLUMNS, ModelSpec, ProductionMetric
from closedloop.core.sql import connect, query
from closedloop.drift.measures import DRIFT_METRICS, DRIFTING_INPUTS
from closedloop.evaluation.metrics import WINDOW_METRICS, precision_at_k_metric
from closedloop.evaluation.outcomes import LABEL_COVERAGE
from closedloop.inputs.contract import prediction_types
from closedloop.ops.metrics import OPS_METRICS

BUSINESS_SOURCES = ("predictions",)
BUSINESS = Metric(
    "business", "as the sql says", "neither", description="A DuckDB aggregate over the period's predictions."
)
# The lake table (and Dagster asset) each family is read from, where its SLO checks live.
FAMILY_TABLES = {
    "rolling_eval": "rolling_eval",
    "eval": "eval_stats",
    "drift": "drift",
    "outcomes": "outcomes",
    "ops": "ops_stats",
    "business": "predictions",
}


# What a business metric's SQL may give: a number (a boolean counts as 0 or 1).
NUMERIC_SQL_TYPES = frozenset(
    {"BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE"}
    | {"UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"}
)


class SourceError(ValueError):
    """A ``source`` closedloop does not compute; the message names it."""


@dataclass(frozen=True)
class MetricSource:
    """A parsed ``source``: which family (lake table), which metric in it, and the qualifiers."""

    kind: str  # a key of FAMILY_TABLES
    metric: str
    column: str | None = None
    window: str | None = None  # rolling_eval: window days; drift: "day" or "<N>d"; outcomes: days back


_WINDOWED = re.compile(r"^(?P<name>[a-z0-9_]+)(\[(?P<days>[1-9][0-9]*)d\])?$")


def rolling_eval_metrics(model: ModelSpec) -> tuple[Metric, ...]:
    """The window metrics of ``model``: the fixed ones and precision@K for each of its queue sizes."""
    return WINDOW_METRICS + tuple(precision_at_k_metric(k) for k in model.evaluation.precision_at_k)


def eval_metrics() -> tuple[Metric, ...]:
    """The metrics a single day's ``eval_stats`` gives without labels."""
    return tuple(m for m in WINDOW_METRICS if not m.needs_labels)


def family(model: ModelSpec, kind: str) -> tuple[Metric, ...]:
    """Every metric of one family for ``model``."""
    metrics = {
        "rolling_eval": rolling_eval_metrics(model),
        "eval": eval_metrics(),
        "drift": DRIFT_METRICS + (DRIFTING_INPUTS,),
        "outcomes": (LABEL_COVERAGE,),
        "ops": OPS_METRICS,
        "business": (BUSINESS,),
    }
    return metrics[kind]


def _names(metrics: tuple[Metric, ...]) -> list[str]:
    return [m.name for m in metrics]


def known_sources(model: ModelSpec) -> list[str]:
    """The source names (patterns where a family is large) a metric of ``model`` may use, for error messages."""
    windows = list(model.evaluation.windows_days)
    columns = list(model.features.all + model.segments + DRIFT_OUTPUT_COLUMNS)
    return [
        f"rolling_eval.<metric>[<N>d] with N in {windows} and metric in {_names(rolling_eval_metrics(model))}",
        f"eval.<metric> with metric in {_names(eval_metrics())}",
        f"drift.<column>_<metric> (optionally [<N>d]) with column in {columns} and metric in {_names(DRIFT_METRICS)}",
        f"drift.{DRIFTING_INPUTS.name} (optionally [<N>d])",
        f"outcomes.{LABEL_COVERAGE.name}[<K>d] (predictions of K days before, labeled by the end of the day)",
        f"ops.<metric> with metric in {_names(OPS_METRICS)}",
        f"{' or '.join(BUSINESS_SOURCES)} with sql: <DuckDB aggregate expression>",
    ]


def parse_source(model: ModelSpec, metric: ProductionMetric) -> MetricSource:
    """Where ``metric`` lives; SourceError (naming the source) if closedloop computes no such metric."""
    source = metric.source
    kind, _, rest = source.partition(".")
    match = _WINDOWED.match(rest)
    parsed = None
    if metric.sql is not None:
        if source in BUSINESS_SOURCES:
            parsed = MetricSource("business", metric.name)
    elif kind == "rolling_eval" and match and match["days"]:
        if match["name"] in _names(family(model, kind)) and int(match["days"]) in model.evaluation.windows_days:
            parsed = MetricSource(kind, match["name"], window=match["days"])
    elif kind == "eval" and rest in _names(family(model, kind)):
        parsed = MetricSource(kind, rest)
    elif kind == "outcomes" and match and match["days"] and match["name"] in _names(family(model, kind)):
        parsed = MetricSource(kind, match["name"], window=match["days"])
    elif kind == "drift" and match:
        window = f"{match['days']}d" if match["days"] else "day"
        if match["name"] == DRIFTING_INPUTS.name:
            parsed = MetricSource(kind, DRIFTING_INPUTS.name, window=window)
        columns = model.features.all + model.segments + DRIFT_OUTPUT_COLUMNS
        for name in _names(DRIFT_METRICS):
            column = match["name"].removesuffix(f"_{name}")
            if column != match["name"] and column in columns:
                parsed = MetricSource(kind, name, column, window)
    elif kind == "ops" and rest in _names(family(model, kind)):
        parsed = MetricSource(kind, rest)
    if parsed is None:
        raise SourceError(f"unknown source {source!r}" + (" for a metric with sql" if metric.sql is not None else ""))
    return parsed


def metric_definition(model: ModelSpec, metric: ProductionMetric) -> Metric:
    """The catalog's entry for a production metric: its unit, which way is better, whether it needs labels."""
    source = parse_source(model, metric)
    return next(m for m in family(model, source.kind) if m.name in (source.metric, BUSINESS.name))


def metric_table(model: ModelSpec, metric_name: str) -> str:
    """The lake table (and Dagster asset) a production metric is computed from: its SLO checks live there."""
    metric = next(m for m in model.metrics if m.name == metric_name)
    return FAMILY_TABLES[parse_source(model, metric).kind]


def validate_business_sql(model: ModelSpec, expression: str) -> None:
    """Prepare the expression against an empty predictions table with the contract's columns.

    Catches unknown columns, syntax and type errors, expressions that are not one aggregate
    value and values that are not numbers (``max(model_version)``), at registry load instead of at
    the first evaluation.
    """
    if ";" in expression:
        raise SourceError(f"sql {expression!r} must be a single expression (no ';')")
    # from_batches, not schema.empty_table(), which imports pandas (and loading the registry must not).
    empty = pa.Table.from_batches([], schema=pa.schema(list(prediction_types(model).items())))
    start, end, _ = period_bounds(model.start_date)
    try:
        with connect() as con:
            con.register("predictions", empty)
            cursor = con.execute(business_sql(expression), {"start": start, "end": end})
            value_type = str(cursor.description[1][1])
            result = cursor.fetchall()
    except duckdb.Error as exc:
        message = str(exc).splitlines()[0]
        if "GROUP BY" in message:
            raise SourceError(
                f"sql {expression!r} must be an aggregate (one value per period, e.g. avg(decision))"
            ) from None
        raise SourceError(f"sql {expression!r} does not run on the predictions table: {message}") from None
    if len(result) != 1:
        raise SourceError(f"sql {expression!r} must be an aggregate (one value per period, e.g. avg(decision))")
    if value_type not in NUMERIC_SQL_TYPES and not value_type.startswith("DECIMAL"):
        raise SourceError(
            f"sql {expression!r} gives {value_type}, not a number; an SLO judges numbers (e.g. avg(decision), "
            "count(*), sum(cost_usd))"
        )


def business_sql(expression: str) -> str:
    """The query of a business metric: ``expression`` per version over the period's predictions."""
    return query(__package__, "business_metric").replace("{expression}", expression)
