"""The input contract: which columns a model's log must have, and of which types.

A landed file is renamed from the model's own column names to closedloop's (the registry's
``columns`` mapping) and cast to the contract's types. A file that cannot be made to fit (a
missing column, a type that does not convert, timestamps without a time zone) fails the whole
partition with a message that names the file, the column and what to change; row-level
problems are not decided here but in the ingest SQL, which quarantines the rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from closedloop.core.lake import Lake
from closedloop.core.specs import ModelSpec
from closedloop.core.sql import connect, query
from closedloop.inputs.id_index import DayIds, ids_between, index_days

TIMESTAMP = pa.timestamp("us", tz="UTC")

PREDICTION_TYPES: dict[str, pa.DataType] = {
    "prediction_id": pa.string(),
    "model_version": pa.string(),
    "ts": TIMESTAMP,
    "score": pa.float64(),
    "decision": pa.int8(),
    "latency_ms": pa.float64(),
    "cost_usd": pa.float64(),
    "route": pa.string(),
    "is_fallback": pa.bool_(),
    "error": pa.string(),
}
REQUIRED_PREDICTION_COLUMNS = ("prediction_id", "model_version", "ts", "score")
# Landing tables of scored requests: what the model served, and what a shadow version scored
# without its decision being applied. Both hold to the same contract.
SCORED_TABLES = ("predictions", "shadow")

LABEL_TYPES: dict[str, pa.DataType] = {
    "prediction_id": pa.string(),
    "label": pa.int8(),
    "label_ts": TIMESTAMP,
}
REQUIRED_LABEL_COLUMNS = tuple(LABEL_TYPES)


class ContractError(ValueError):
    """A landed file that does not fit the model's contract; the message says what to change."""


def prediction_types(model: ModelSpec) -> dict[str, pa.DataType]:
    """Column -> type of an accepted prediction row: closedloop's columns, features, segments, request key."""
    types = dict(PREDICTION_TYPES)
    types.update({name: pa.float64() for name in model.features.numeric})
    types.update({name: pa.string() for name in model.features.categorical})
    types.update({name: pa.string() for name in model.segments + pairing_columns(model)})
    return types


def pairing_columns(model: ModelSpec) -> tuple[str, ...]:
    """The request key column, when the registry names one (``pairing_key``)."""
    return (model.pairing_key,) if model.pairing_key else ()


def required_prediction_columns(model: ModelSpec) -> tuple[str, ...]:
    return REQUIRED_PREDICTION_COLUMNS + model.features.all + model.segments + pairing_columns(model)


def landing_tables(model: ModelSpec) -> tuple[str, ...]:
    """The landing tables closedloop ingests for ``model``: shadow scores only for a model with a request key."""
    return ("predictions", "labels") + (("shadow",) if model.pairing_key else ())


def conform(table: pa.Table, model: ModelSpec, kind: str, source: str) -> pa.Table:
    """Rename ``table`` to closedloop's columns and cast it to the contract of ``kind``.

    ``source`` names the partition and file in error messages.

    Columns the contract does not know are kept as they are; optional closedloop columns the
    file lacks are added as nulls, so that every accepted partition has the same schema.
    """
    if kind in SCORED_TABLES:
        types, required = prediction_types(model), required_prediction_columns(model)
    elif kind == "labels":
        types, required = LABEL_TYPES, REQUIRED_LABEL_COLUMNS
    else:
        raise ValueError(f"unknown landing table {kind!r}")

    renamed = _renamed(table, model, source)
    missing = [name for name in required if name not in renamed.column_names]
    if missing:
        described = ", ".join(_describe_column(model, name) for name in missing)
        key = (
            f" The request key {model.pairing_key!r} (models.{model.name}.pairing_key) must be in every scored log."
            if model.pairing_key in missing
            else ""
        )
        raise ContractError(
            f"{source}: missing required column(s) {described}. Found columns {table.column_names}. "
            f"If the log renamed them, map the new names under models.{model.name}.columns in the registry; "
            f"if the model no longer uses a feature or segment, remove it from models.{model.name}.features or "
            f".segments.{key}"
        )

    columns, fields = [], []
    for name, wanted in types.items():
        if name in renamed.column_names:
            columns.append(_cast(renamed.column(name), wanted, name, model, source))
        else:
            columns.append(pa.nulls(renamed.num_rows, wanted))
        fields.append(pa.field(name, wanted))
    for name in renamed.column_names:
        if name not in types:
            columns.append(renamed.column(name))
            fields.append(renamed.schema.field(name))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _renamed(table: pa.Table, model: ModelSpec, source: str) -> pa.Table:
    to_canonical = {model.source_column(name): name for name in model.columns}
    names = [to_canonical.get(name, name) for name in table.column_names]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ContractError(
            f"{source}: column(s) {repeated} appear twice after applying models.{model.name}.columns; "
            "a file may carry either the mapped name or closedloop's name, not both"
        )
    return table.rename_columns(names)


def _describe_column(model: ModelSpec, name: str) -> str:
    source = model.source_column(name)
    return repr(name) if source == name else f"{name!r} (mapped from {source!r})"


def _cast(column: pa.ChunkedArray, wanted: pa.DataType, name: str, model: ModelSpec, source: str) -> pa.ChunkedArray:
    if column.type == wanted:
        return column
    if pa.types.is_timestamp(wanted):
        if not pa.types.is_timestamp(column.type):
            raise ContractError(
                f"{source}: column {_describe_column(model, name)} has type {column.type}, expected a timestamp with "
                "a time zone"
            )
        if column.type.tz is None:
            raise ContractError(
                f"{source}: column {_describe_column(model, name)} holds timestamps without a time zone; "
                "write them as UTC-aware timestamps (e.g. pandas tz='UTC')"
            )
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    try:
        return pc.cast(column, wanted, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ContractError(
            f"{source}: column {_describe_column(model, name)} has type {column.type} and does not convert to {wanted} "
            f"({exc}). Fix the log, or declare the column under the kind it now has in models.{model.name}.features "
            "(numeric or categorical)."
        ) from None


# The most frequent baseline values a categorical column's check enumerates. A column with more
# (a merchant id) tolerates the baseline's own share of values outside them on top of the
# registry's new-value share, so the check stays meaningful and fast (GX copies the set per use).
MAX_ALLOWED_VALUES = 200


@dataclass(frozen=True)
class LearnedColumn:
    """What one feature or segment column looked like in the baseline window."""

    name: str
    kind: str  # "numeric" or "categorical"
    null_rate: float
    daily_null_rates: tuple[float, ...] = ()  # one per baseline day with rows: how much the rate moves by itself
    minimum: float | None = None
    maximum: float | None = None
    values: tuple[str, ...] = ()
    outside_share: float = 0.0  # share of the baseline's non-null values not among ``values``


@dataclass(frozen=True)
class LearnedContract:
    """The data-dependent half of the contract, learned from the registry's baseline window."""

    start: dt.date
    end: dt.date
    days: int
    rows: int
    columns: dict[str, LearnedColumn]


def learn_contract(lake: Lake, model: ModelSpec) -> LearnedContract | None:
    """Ranges, value sets and null rates of the baseline window's accepted predictions (None before it exists)."""
    files = lake.partition_files(model.name, "predictions", model.baseline.start, model.baseline.end)
    names = list(model.features.all + model.segments)
    tables = [pq.read_table(path, columns=names) for path in files]
    rows = sum(t.num_rows for t in tables)
    if not rows:
        return None
    table = pa.concat_tables(tables)

    def daily_null_rates(name: str) -> tuple[float, ...]:
        return tuple(t.column(name).null_count / t.num_rows for t in tables if t.num_rows)

    columns = {}
    for name in model.features.numeric:
        bounds = pc.min_max(table.column(name))
        columns[name] = LearnedColumn(
            name,
            "numeric",
            table.column(name).null_count / rows,
            daily_null_rates(name),
            bounds["min"].as_py(),
            bounds["max"].as_py(),
        )
    for name in model.features.categorical + model.segments:
        counts = pc.value_counts(table.column(name).drop_null()).to_pylist()
        counts.sort(key=lambda item: (-item["counts"], item["values"]))
        kept = counts[:MAX_ALLOWED_VALUES]
        present = sum(item["counts"] for item in counts)
        outside = 1.0 - sum(item["counts"] for item in kept) / present if present else 0.0
        columns[name] = LearnedColumn(
            name,
            "categorical",
            table.column(name).null_count / rows,
            daily_null_rates(name),
            values=tuple(sorted(item["values"] for item in kept)),
            outside_share=outside,
        )
    return LearnedContract(model.baseline.start, model.baseline.end, len(files), rows, columns)


def unregistered_columns(model: ModelSpec, columns: list[str]) -> list[str]:
    """Columns a predictions partition carries that the registry does not declare (kept, but unwatched)."""
    known = prediction_types(model)
    return [name for name in columns if name not in known]


def repeated_prediction_ids(lake: Lake, model: ModelSpec, days: list[dt.date]) -> dict[dt.date, int]:
    """Per day, how many of its prediction ids also appear in another day's partition.

    Read through the days' id indexes (``closedloop.inputs.id_index``): each day probes only the
    other days, and row groups, whose ids can overlap its own. When that would read more than all
    the indexes together (ids in no order, many days to check), the indexes are read once instead.
    """
    counts = dict.fromkeys(days, 0)
    indexes = index_days(lake, model.name)
    by_day = {index.day: index for index in indexes}
    wanted = [by_day[day] for day in counts if day in by_day and by_day[day].lowest is not None]
    others = {
        w.day: [o for o in indexes if o.day != w.day and o.may_hold(w.lowest or "", w.highest or "")] for w in wanted
    }
    probed = sum(o.ids for day_others in others.values() for o in day_others)
    at_once = [w for w in wanted if w.distinct] if probed > sum(index.ids for index in indexes) else []
    with connect() as con:
        if at_once:
            con.register(
                "all_predictions",
                con.read_parquet([str(index.path) for index in indexes], hive_partitioning=True).select(
                    "prediction_id, CAST(date AS DATE) AS day"
                ),
            )
            found = con.execute(query(__package__, "repeated_prediction_ids"), {"days": [w.day for w in at_once]})
            counts.update(dict(found.fetchall()))
        for w in wanted:
            if w not in at_once and others[w.day]:
                counts[w.day] = _repeated_on(con, lake, model, w, others[w.day])
    return counts


def _repeated_on(
    con: duckdb.DuckDBPyConnection, lake: Lake, model: ModelSpec, day: DayIds, others: list[DayIds]
) -> int:
    """How many rows of one day carry an id that one of ``others`` holds."""
    if day.distinct:
        rows = pq.read_table(day.path).column("prediction_id")
    else:  # the partition repeats an id, or has rows without one: count its rows, as the check always has
        partition = lake.read_partition(model.name, "predictions", day.day, ["prediction_id"])
        if partition is None:
            return 0
        rows = partition.column("prediction_id")
    con.register("day_rows", pa.table({"prediction_id": rows}))
    con.register("elsewhere", ids_between(con, others, (day.lowest or "", day.highest or "")))
    [(repeated,)] = con.sql("SELECT count(*) FROM day_rows SEMI JOIN elsewhere USING (prediction_id)").fetchall()
    con.unregister("elsewhere")
    con.unregister("day_rows")
    return repeated
