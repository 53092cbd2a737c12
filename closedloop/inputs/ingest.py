"""Ingest: one day of a model's landed log into the lake, with nothing the user gave us lost.

Every landed row ends in exactly one place: the accepted partition, the quarantine (with the
reason and the original row as JSON), or the count of exact duplicates dropped (client retries
that resent a row). ``landing rows = accepted + quarantined + duplicates`` always holds.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from closedloop.core.lake import Lake
from closedloop.core.names import checked_day
from closedloop.core.specs import ModelSpec
from closedloop.core.sql import connect, query
from closedloop.inputs.contract import LABEL_TYPES, TIMESTAMP, ContractError, conform, prediction_types
from closedloop.inputs.id_index import days_that_may_hold, id_bounds, ids_between, index_days, write_day_ids

QUARANTINE_SCHEMA = pa.schema(
    [
        ("partition_date", pa.date32()),
        ("source_file", pa.string()),
        ("source_row", pa.int64()),
        ("prediction_id", pa.string()),
        ("reason", pa.string()),
        ("original", pa.string()),
    ]
)
_KNOWN_PREDICTIONS_SCHEMA = pa.schema(
    [("prediction_id", pa.string()), ("model_version", pa.string()), ("ts", TIMESTAMP)]
)


@dataclass(frozen=True)
class IngestResult:
    """What happened to one landing partition."""

    model: str
    table: str
    day: dt.date
    files: tuple[str, ...]
    landing_rows: int
    accepted: int
    quarantined: int
    duplicates_dropped: int
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    unknown_predictions: int = 0

    def describe(self) -> str:
        """One line for a run's log."""
        line = (
            f"{self.model}/{self.table} {self.day}: {self.landing_rows} landed in {len(self.files)} file(s), "
            f"{self.accepted} accepted, {self.quarantined} quarantined, {self.duplicates_dropped} exact duplicates"
        )
        if self.unknown_predictions:
            line += f"; {self.unknown_predictions} labels for predictions not in the lake yet"
        return line


def _day_bounds(day: dt.date) -> dict[str, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return {"day_start": start, "day_end": start + dt.timedelta(days=1)}


@dataclass(frozen=True)
class _Landed:
    """A day's landed rows as the ingest SQL sees them.

    The contract's columns keep their names; every column the contract does not declare travels
    under an alias (``_extra_0``, ...) in a type DuckDB round-trips, so no landed name (``_copy``,
    ``Amount`` beside ``amount``) can collide with closedloop's own or another's, and the
    accepted rows get the landed names and types back.
    """

    table: pa.Table  # the contract's columns, the aliased extras, then _source_file and _source_row
    files: list[Path]
    extras: dict[str, pa.Field]  # alias -> the landed column

    def restored(self, accepted: pa.Table, joined: pa.Table | None = None) -> pa.Table:
        """``accepted`` in the landing's column order, its extras under their landed names and types.

        Columns ingest ``joined`` on come right after the contract's, before the extras: DuckDB
        matches names without regard to case and takes the first, so ``model_version`` must precede
        a landed ``Model_Version``.
        """
        schema = self.table.drop_columns(list(_ORIGIN)).schema
        accepted = accepted.select(schema.names).cast(schema)
        declared = [name for name in schema.names if name not in self.extras]
        columns = [accepted.column(name) for name in declared] + (joined.columns if joined is not None else [])
        fields = [schema.field(name) for name in declared] + (list(joined.schema) if joined is not None else [])
        for alias, landed in self.extras.items():
            columns.append(accepted.column(alias).cast(landed.type))
            fields.append(landed)
        return pa.Table.from_arrays(columns, schema=pa.schema(fields))

    def rows_as_landed(self) -> pa.Table:
        """Each row's origin and the row itself under its landed column names, for the quarantine's JSON."""
        names = [name for name in self.table.column_names if name not in _ORIGIN]
        fields = [self.extras[name].name if name in self.extras else name for name in names]
        rows = pa.StructArray.from_arrays([self.table.column(n).combine_chunks() for n in names], names=fields)
        return pa.table({**{name: self.table.column(name) for name in _ORIGIN}, "_row": rows})


_ORIGIN = ("_source_file", "_source_row")


def _read_landing(lake: Lake, model: ModelSpec, table: str, day: dt.date, types: dict[str, pa.DataType]) -> _Landed:
    """The day's landed files conformed to the contract and stacked, each row tagged with its origin."""
    files = lake.landing_files(model.name, table, day)
    aliases: dict[str, str] = {}  # landed name of an undeclared column -> its alias, the same in every file
    parts = []
    for path in files:
        where = f"{model.name}/{table} partition {day}, file {path}"
        try:
            raw = pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            raise ContractError(
                f"{where}: cannot read this landing file as Parquet ({exc}); fix or remove it and re-run "
                f"{model.name}/{table} for {day}. No part of the partition was written."
            ) from None
        conformed = conform(raw, model, table, where)
        extras = [name for name in conformed.column_names if name not in types]
        for name in extras:
            aliases.setdefault(name, f"_extra_{len(aliases)}")
        conformed = conformed.rename_columns([aliases.get(name, name) for name in conformed.column_names])
        source = str(path.relative_to(lake.landing))
        conformed = conformed.append_column("_source_file", pa.array([source] * conformed.num_rows, pa.string()))
        conformed = conformed.append_column("_source_row", pa.array(range(conformed.num_rows), pa.int64()))
        parts.append(conformed)
    if not parts:
        empty = pa.schema([pa.field(name, kind) for name, kind in types.items()])
        empty = empty.append(pa.field("_source_file", pa.string())).append(pa.field("_source_row", pa.int64()))
        return _Landed(empty.empty_table(), files, {})
    stacked = pa.concat_tables(parts, promote_options="permissive")
    landed = {alias: pa.field(name, stacked.schema.field(alias).type) for name, alias in aliases.items()}
    for alias, column in landed.items():
        carrier = _carrier(column.type)
        if carrier is None:
            raise ContractError(
                f"{model.name}/{table} partition {day}: column {column.name!r} (not declared in the registry) has "
                f"type {column.type}, which closedloop cannot carry; write it as a number or a string, or drop it "
                "from the log. No part of the partition was written."
            )
        if carrier != column.type:
            index = stacked.schema.get_field_index(alias)
            stacked = stacked.set_column(index, alias, stacked.column(alias).cast(carrier))
    columns = [name for name in stacked.column_names if name not in _ORIGIN] + list(_ORIGIN)
    return _Landed(stacked.select(columns), files, landed)


@functools.cache
def _carrier(kind: pa.DataType) -> pa.DataType | None:
    """The type an undeclared column of type ``kind`` crosses DuckDB in and is cast back from (None: none works)."""
    for carrier in (kind, _WIDER.get(kind.id), pa.int64() if pa.types.is_duration(kind) else None, pa.string()):
        if carrier is not None and _round_trips(kind, carrier):
            return carrier
    return None


_WIDER = {pa.float16().id: pa.float32()}


def _round_trips(kind: pa.DataType, carrier: pa.DataType) -> bool:
    try:
        with connect() as con:
            con.register("probe", pa.table({"value": pa.array([], kind).cast(carrier)}))
            back = con.sql("SELECT value FROM probe").to_arrow_table()
        back.column("value").cast(carrier).cast(kind)
    except (pa.ArrowException, duckdb.Error):
        return False
    return True


def _classify(
    con: duckdb.DuckDBPyConnection, landing: _Landed, classify_sql: str, day: dt.date, params: dict | None = None
) -> tuple[pa.Table, pa.Table, int, dict[str, int]]:
    """Accepted rows, quarantine rows, exact duplicates dropped, and quarantine counts by reason.

    ``classify_sql`` fills the temporary table ``classified`` from the first copy of each landed
    row (``copies``), whatever else the caller registered on ``con`` and ``params``, giving every
    row a ``_status`` and, if held, a ``_reason``.
    """
    con.register("landing", landing.table)
    con.register("landed_rows", landing.rows_as_landed())
    con.execute(query(__package__, "number_copies"))
    con.execute(query(__package__, classify_sql), {**_day_bounds(day), **(params or {})})
    [(duplicates,)] = con.sql("SELECT count(*) FROM copies WHERE _copy > 1").fetchall()
    accepted = con.sql(
        "SELECT * EXCLUDE (_source_file, _source_row, _status, _reason) FROM classified WHERE _status = 'accepted'"
    ).to_arrow_table()
    quarantine = con.sql(query(__package__, "quarantined_rows"), params={"day": day}).to_arrow_table()
    reasons = con.sql(
        "SELECT _reason, count(*) FROM classified WHERE _status = 'quarantined' GROUP BY 1 ORDER BY 2 DESC, 1"
    ).fetchall()
    return accepted, quarantine.cast(QUARANTINE_SCHEMA), duplicates, dict(reasons)


def _result(
    model: ModelSpec,
    table: str,
    day: dt.date,
    files: list[Path],
    landing_rows: int,
    accepted: int,
    quarantined: int,
    duplicates: int,
    reasons: dict[str, int],
    unknown_predictions: int = 0,
) -> IngestResult:
    result = IngestResult(
        model=model.name,
        table=table,
        day=day,
        files=tuple(str(p) for p in files),
        landing_rows=landing_rows,
        accepted=accepted,
        quarantined=quarantined,
        duplicates_dropped=duplicates,
        quarantine_reasons=reasons,
        unknown_predictions=unknown_predictions,
    )
    if result.accepted + result.quarantined + result.duplicates_dropped != landing_rows:
        raise AssertionError(f"ingest of {model.name}/{table} {day} would lose rows: {result}")
    return result


def ingest_predictions(lake: Lake, model: ModelSpec, day: str | dt.date) -> IngestResult:
    """Replace the day's ``predictions`` and its quarantine with what has landed so far."""
    return _ingest_scored(lake, model, day, "predictions")


def ingest_shadow(lake: Lake, model: ModelSpec, day: str | dt.date) -> IngestResult:
    """Replace the day's ``shadow`` scores and their own quarantine, under the predictions' contract.

    A shadow version scores the requests the served version did without its decision being
    applied, so its rows pair with the served ones on the registry's ``pairing_key``; nothing else
    in the loop reads them. Most days have no shadow traffic and get an empty partition.
    """
    return _ingest_scored(lake, model, day, "shadow")


def _ingest_scored(lake: Lake, model: ModelSpec, day: str | dt.date, table: str) -> IngestResult:
    day = checked_day(day)
    landing = _read_landing(lake, model, table, day, prediction_types(model))
    versions = pa.table(
        {
            "model_version": list(model.versions),
            "threshold": [spec.threshold for spec in model.versions.values()],
        }
    )
    with connect() as con:
        con.register("versions", versions)
        con.register("pairing_keys", _pairing_keys(landing.table, model))
        con.register("earlier_ids", _earlier_ids(con, lake, model, table, day, landing.table.column("prediction_id")))
        accepted, quarantine, duplicates, reasons = _classify(
            con, landing, "classify_predictions", day, {"pairing_key": model.pairing_key}
        )
    accepted = landing.restored(accepted).sort_by([("ts", "ascending"), ("prediction_id", "ascending")])
    landed = landing.table.num_rows
    result = _result(
        model, table, day, landing.files, landed, accepted.num_rows, quarantine.num_rows, duplicates, reasons
    )
    written = lake.write_partition(model.name, table, day, accepted)
    if table == "predictions":
        write_day_ids(lake, model.name, day, accepted.column("prediction_id"), written)
    lake.write_quarantine(model.name, table, day, quarantine)
    return result


def _earlier_ids(
    con: duckdb.DuckDBPyConnection, lake: Lake, model: ModelSpec, table: str, day: dt.date, landed: pa.ChunkedArray
) -> duckdb.DuckDBPyRelation | pa.Table:
    """Ids accepted on days before ``day`` that may be among the ``landed`` ids (a superset of those that are).

    Predictions are probed through the days' id indexes, reading only the days and row groups whose
    ids can overlap the landed ones; shadow scores (few, and most days none) read the partitions.
    """
    yesterday = day - dt.timedelta(days=1)
    if table == "predictions":
        return ids_between(con, index_days(lake, model.name, end=yesterday), id_bounds(landed))
    earlier = [str(p) for p in lake.partition_files(model.name, table, end=yesterday)]
    if not earlier:
        return pa.table({"prediction_id": pa.array([], pa.string())})
    return con.read_parquet(earlier).select("prediction_id")


def _pairing_keys(landing: pa.Table, model: ModelSpec) -> pa.Table:
    """Each landed row's request key under one fixed name, so the SQL never pastes the registry's column name."""
    key = landing.column(model.pairing_key) if model.pairing_key else pa.nulls(landing.num_rows, pa.string())
    origin = {name: landing.column(name) for name in _ORIGIN}
    return pa.table({**origin, "request_key": key})


def ingest_labels(lake: Lake, model: ModelSpec, day: str | dt.date) -> IngestResult:
    """Replace the day's label arrivals, joined to the predictions they refer to.

    A label whose prediction is not in the lake (yet) is kept with a null ``model_version`` and
    counted; it is joined later, when the prediction arrives, by whoever reads the labels.
    Label partitions are written even for days when nothing arrived, so that every day exists.
    """
    day = checked_day(day)
    landing = _read_landing(lake, model, "labels", day, LABEL_TYPES)
    clashes = [f.name for f in landing.extras.values() if f.name.lower() in _JOINED_TO_LABELS]
    if clashes:
        raise ContractError(
            f"{model.name}/labels partition {day}: the label log carries {clashes}, which closedloop joins from the "
            "prediction itself; drop or rename the column in the label log. No part of the partition was written."
        )
    with connect() as con:
        con.register("landing", landing.table)
        prediction_files = _prediction_files_holding(lake, model, day, landing.table.column("prediction_id"))
        if prediction_files:
            con.register("history", con.read_parquet(prediction_files).select("prediction_id, model_version, ts"))
        else:
            con.register("history", _KNOWN_PREDICTIONS_SCHEMA.empty_table())
        con.register("known_predictions", con.sql(query(__package__, "known_predictions")))
        accepted, quarantine, duplicates, reasons = _classify(con, landing, "classify_labels", day)
    joined = pa.table(
        {
            "model_version": accepted.column("model_version").cast(pa.string()),
            "prediction_ts": accepted.column("prediction_ts").cast(TIMESTAMP),
        }
    )
    accepted = landing.restored(accepted, joined).sort_by([("label_ts", "ascending"), ("prediction_id", "ascending")])
    unknown = joined.column("model_version").null_count
    result = _result(
        model,
        "labels",
        day,
        landing.files,
        landing.table.num_rows,
        accepted.num_rows,
        quarantine.num_rows,
        duplicates,
        reasons,
        unknown,
    )
    lake.write_partition(model.name, "labels", day, accepted)
    lake.write_quarantine(model.name, "labels", day, quarantine)
    return result


_JOINED_TO_LABELS = ("model_version", "prediction_ts")


def _prediction_files_holding(lake: Lake, model: ModelSpec, day: dt.date, ids: pa.ChunkedArray) -> list[str]:
    """The predictions partitions up to ``day`` whose id index says they can hold some of ``ids``."""
    return [
        str(lake.partition_path(model.name, "predictions", index.day))
        for index in days_that_may_hold(index_days(lake, model.name, end=day), ids)
    ]
