"""The input contract: which columns a model's log must have, and of which types.

A landed file is renamed from the model's own column names to closedloop's (the registry's
``columns`` mapping) and cast to the contract's types. A file that cannot be made to fit (a
missing column, a type that does not convert, timestamps without a time zone) fails the whole
partition with a message that names the file, the column and what to change; row-level
problems are not decided here but in the ingest SQL, which quarantines the rows.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from closedloop.registry import ModelSpec

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

LABEL_TYPES: dict[str, pa.DataType] = {
    "prediction_id": pa.string(),
    "label": pa.int8(),
    "label_ts": TIMESTAMP,
}
REQUIRED_LABEL_COLUMNS = tuple(LABEL_TYPES)


class ContractError(ValueError):
    """A landed file that does not fit the model's contract; the message says what to change."""


def prediction_types(model: ModelSpec) -> dict[str, pa.DataType]:
    """Column -> type of an accepted prediction row: closedloop's columns, features, segments."""
    types = dict(PREDICTION_TYPES)
    types.update({name: pa.float64() for name in model.features.numeric})
    types.update({name: pa.string() for name in model.features.categorical})
    types.update({name: pa.string() for name in model.segments})
    return types


def required_prediction_columns(model: ModelSpec) -> tuple[str, ...]:
    return REQUIRED_PREDICTION_COLUMNS + model.features.all + model.segments


def conform(table: pa.Table, model: ModelSpec, kind: str, source: Path) -> pa.Table:
    """Rename ``table`` to closedloop's columns and cast it to the contract of ``kind``.

    Columns the contract does not know are kept as they are; optional closedloop columns the
    file lacks are added as nulls, so that every accepted partition has the same schema.
    """
    if kind == "predictions":
        types, required = prediction_types(model), required_prediction_columns(model)
    elif kind == "labels":
        types, required = LABEL_TYPES, REQUIRED_LABEL_COLUMNS
    else:
        raise ValueError(f"unknown landing table {kind!r}")

    renamed = _renamed(table, model, source)
    missing = [name for name in required if name not in renamed.column_names]
    if missing:
        described = ", ".join(_describe_column(model, name) for name in missing)
        raise ContractError(
            f"{source}: missing required column(s) {described}. "
            f"Found columns {table.column_names}; if the log uses other names, map them under "
            f"models.{model.name}.columns in the registry."
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


def _renamed(table: pa.Table, model: ModelSpec, source: Path) -> pa.Table:
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


def _cast(column: pa.ChunkedArray, wanted: pa.DataType, name: str, model: ModelSpec, source: Path) -> pa.ChunkedArray:
    if column.type == wanted:
        return column
    if pa.types.is_timestamp(wanted):
        if not pa.types.is_timestamp(column.type):
            raise ContractError(
                f"{source}: column {_describe_column(model, name)} has type {column.type}, expected a timestamp with a time zone"
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
            f"{source}: column {_describe_column(model, name)} has type {column.type} and does not convert to {wanted}: {exc}"
        ) from None
