"""Outcomes: one day's predictions joined to the labels known so far, re-built as labels arrive.

Labels arrive late (fraud chargebacks weeks later, ticket reviews days later), so a prediction
day's outcomes are a function of the day *and* of the date they are seen from (``as_of``): the
same day gains labels every time a later label partition lands. A day is *mature* once its
registry maturity horizon (``labels.maturity_days``) has passed; only labels known at that
horizon count as matured, so quality metrics on matured labels do not move with the date they
are computed on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from closedloop.core.lake import Lake, LakeError
from closedloop.core.metric import Metric
from closedloop.core.names import ALL, checked_day
from closedloop.core.periods import day_start
from closedloop.core.specs import ModelSpec
from closedloop.core.sql import connect, query
from closedloop.inputs.contract import LABEL_TYPES, TIMESTAMP, pairing_columns, prediction_types

OUTCOME_PREDICTION_COLUMNS = ("prediction_id", "model_version", "ts", "score", "decision")
_LABELS_SCHEMA = pa.schema([(name, LABEL_TYPES[name]) for name in ("prediction_id", "label", "label_ts")])


def outcome_prediction_columns(model: ModelSpec) -> tuple[str, ...]:
    """The prediction columns an outcome keeps; the request key lets a shadow row borrow the served row's label."""
    return OUTCOME_PREDICTION_COLUMNS + pairing_columns(model) + model.segments


def outcomes_schema(model: ModelSpec) -> pa.Schema:
    """Columns of an ``outcomes`` partition: the prediction's keys and segments, then its label."""
    types = prediction_types(model)
    columns = outcome_prediction_columns(model)
    return pa.schema(
        [(name, types[name]) for name in columns]
        + [
            ("label", pa.int8()),
            ("label_ts", TIMESTAMP),
            ("label_delay_hours", pa.float64()),
            ("label_matured", pa.bool_()),
        ]
    )


@dataclass(frozen=True)
class OutcomeSummary:
    """How much of a prediction day is labeled, how late the labels came, and whether it is final."""

    model: str
    day: dt.date
    as_of: dt.date
    maturity_date: dt.date
    mature: bool
    n: int
    n_labeled: int
    n_positive: int
    n_matured: int
    coverage: float | None
    label_delay_p50_hours: float | None
    label_delay_p90_hours: float | None

    def as_dict(self) -> dict:
        """JSON-ready (dates as ISO strings), for asset metadata and the command line."""
        return {
            name: value.isoformat() if isinstance(value, dt.date) else value for name, value in self.__dict__.items()
        }


@dataclass(frozen=True)
class DayOutcomes:
    """The ``outcomes`` partition of a day (``outcomes_schema``) and its summary for run metadata."""

    table: pa.Table
    summary: OutcomeSummary


def outcomes_for_day(lake: Lake, model: ModelSpec, day: str | dt.date, as_of: str | dt.date) -> DayOutcomes:
    """The predictions of ``day`` with every label that arrived from ``day`` to ``as_of`` (inclusive)."""
    day, as_of = checked_day(day), checked_day(as_of)
    if as_of < day:
        raise ValueError(f"as_of {as_of} is before the prediction day {day}: no label can be known yet")
    columns = list(outcome_prediction_columns(model))
    predictions = lake.read_partition(model.name, "predictions", day, columns=columns)
    if predictions is None:
        raise LakeError(
            f"no predictions partition for {model.name} on {day} "
            f"({lake.partition_path(model.name, 'predictions', day)}); "
            "ingest the day first"
        )
    maturity_date = day + dt.timedelta(days=model.labels.maturity_days)
    label_files = [str(p) for p in lake.partition_files(model.name, "labels", day, as_of)]
    with connect() as con:
        labels = (
            con.read_parquet(label_files).select("prediction_id, label, label_ts")
            if label_files
            else con.from_arrow(_LABELS_SCHEMA.empty_table())
        )
        con.register("predictions", predictions)
        con.register("labels", labels)
        params = {
            "maturity_end": dt.datetime.combine(maturity_date + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC),
            "mature": as_of >= maturity_date,
        }
        table = con.sql(query(__package__, "outcomes"), params=params).to_arrow_table().cast(outcomes_schema(model))
        con.register("outcomes", table)
        [(n, n_labeled, n_positive, n_matured, p50, p90)] = con.sql(query(__package__, "outcome_summary")).fetchall()
    summary = OutcomeSummary(
        model=model.name,
        day=day,
        as_of=as_of,
        maturity_date=maturity_date,
        mature=as_of >= maturity_date,
        n=n,
        n_labeled=n_labeled,
        n_positive=n_positive,
        n_matured=n_matured,
        coverage=n_labeled / n if n else None,
        label_delay_p50_hours=p50,
        label_delay_p90_hours=p90,
    )
    return DayOutcomes(table, summary)


LABEL_COVERAGE = Metric(
    "label_coverage",
    "share",
    "higher",
    description=(
        "Share of a day's predictions whose label had arrived K days later (a label outage shows the day it happens)."
    ),
)


@dataclass(frozen=True)
class Coverage:
    """The labels known for one population of a prediction day, as of the end of a later day."""

    version: str  # a version, or ALL
    labeled: int
    predictions: int

    @property
    def share(self) -> float:
        return self.labeled / self.predictions


def label_coverage(lake: Lake, model: ModelSpec, day: dt.date, days_back: int) -> list[Coverage]:
    """For the predictions made ``days_back`` days before ``day``: how many had a label by the end of ``day``.

    A point-in-time fact: labels that arrive later do not change it. All versions first, then each version.
    """
    predicted = day - dt.timedelta(days=days_back)
    table = lake.read_partition(model.name, "outcomes", predicted, columns=["model_version", "label_ts"])
    if table is None:
        return []
    end = day_start(day + dt.timedelta(days=1))
    known = pc.fill_null(pc.less(table["label_ts"], pa.scalar(end, table.schema.field("label_ts").type)), False)
    table = table.append_column("known", pc.cast(known, pa.int64()))
    pooled = table.group_by([]).aggregate([("known", "sum"), ("known", "count")]).to_pylist()
    versions = table.group_by("model_version").aggregate([("known", "sum"), ("known", "count")]).to_pylist()
    return [
        Coverage(row.get("model_version", ALL), row["known_sum"], row["known_count"])
        for row in pooled + sorted(versions, key=lambda r: r["model_version"])
        if row["known_count"]
    ]
