"""The prediction id index: per model and day, the day's distinct prediction ids, sorted.

Three readers ask which of some ids other days of ``predictions`` already hold: the check for
ids repeated across days, label ingest (which prediction does a label belong to) and prediction
ingest (an id accepted on an earlier day is quarantined). Instead of every earlier predictions
partition they read ``<lake>/<model>/prediction_ids/date=D/part.parquet``: one sorted column of
distinct ids in row groups of 65,536, so the footer's min and max of each row group tell a reader
which parts of which days can hold the ids it looks for. Ids that grow with time (the
simulator's ``<model>-YYYYMMDD-000001``, UUIDv7, ULIDs, snowflake ids) skip every other day on
the footers alone; random ids skip nothing but still read one narrow column.

A day's index is written by prediction ingest right after the partition, and built on demand
when it is missing or stale: older than the predictions partition, or built from another file
than the one there now (the file's inode, size and mtime are recorded in the index's metadata),
as when a partition was written by something other than ingest.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from closedloop.core.lake import Lake, LakeError
from closedloop.core.sql import query

TABLE = "prediction_ids"
ROW_GROUP_ROWS = 65_536
_SOURCE_KEY = b"closedloop.indexed_partition"


@dataclass(frozen=True)
class DayIds:
    """One day's index as its footer describes it."""

    day: dt.date
    path: Path
    ids: int  # distinct ids in the index
    partition_rows: int  # rows of the predictions partition (more than ``ids`` if it repeats or lacks ids)
    lowest: str | None  # None when the day has no ids
    highest: str | None

    def may_hold(self, lowest: str, highest: str) -> bool:
        """Whether any id in [lowest, highest] can be in this day's index."""
        return (
            self.lowest is not None and self.highest is not None and self.lowest <= highest and lowest <= self.highest
        )

    @property
    def distinct(self) -> bool:
        """Whether the partition holds each of its ids once (and no row without one)."""
        return self.ids == self.partition_rows


def distinct_sorted(ids: pa.Array | pa.ChunkedArray) -> pa.Table:
    """The distinct non-null ids, sorted, as the index's one-column table."""
    present = ids.cast(pa.string()).drop_null()
    if isinstance(present, pa.ChunkedArray):
        present = present.combine_chunks()
    ordered = present.take(pc.array_sort_indices(present))
    if len(ordered) > 1:  # sorted, so a repeated id is next to its copy (cheaper than hashing every id)
        first = pc.not_equal(ordered.slice(1), ordered.slice(0, len(ordered) - 1))
        ordered = ordered.filter(pa.concat_arrays([pa.array([True]), first]))
    return pa.table({"prediction_id": ordered})


def write_day_ids(lake: Lake, model: str, day: dt.date, ids: pa.Array | pa.ChunkedArray, partition: Path) -> Path:
    """Replace the day's index with the distinct ``ids`` of the predictions partition file ``partition``."""
    source = _signature(partition)
    if source is None:
        raise LakeError(f"cannot index {partition}: the predictions partition is not there")
    table = distinct_sorted(ids)
    table = table.replace_schema_metadata({_SOURCE_KEY: json.dumps({**source, "rows": len(ids)}).encode()})
    return lake.write_partition(model, TABLE, day, table, row_group_rows=ROW_GROUP_ROWS)


def index_days(lake: Lake, model: str, start: dt.date | None = None, end: dt.date | None = None) -> list[DayIds]:
    """The index of each predictions partition from ``start`` to ``end``, in date order, built if missing or stale."""
    return [
        _fresh_index(lake, model, partition) for partition in lake.partition_files(model, "predictions", start, end)
    ]


def id_bounds(ids: pa.Array | pa.ChunkedArray) -> tuple[str, str] | None:
    """The lowest and highest of ``ids`` (None when there is no id)."""
    bounds = pc.min_max(ids.cast(pa.string()))
    lowest, highest = bounds["min"].as_py(), bounds["max"].as_py()
    return None if lowest is None or highest is None else (lowest, highest)


def ids_between(
    con: duckdb.DuckDBPyConnection, indexes: list[DayIds], bounds: tuple[str, str] | None
) -> duckdb.DuckDBPyRelation | pa.Table:
    """The ids the given days' indexes hold within ``bounds``, read only from the days and row groups that can.

    A relation to register on ``con`` (an id held by several of the days comes once per day).
    """
    files = [str(i.path) for i in indexes if bounds is not None and i.may_hold(*bounds)]
    if bounds is None or not files:
        return pa.table({"prediction_id": pa.array([], pa.string())})
    lowest, highest = bounds
    return con.sql(
        query(__package__, "indexed_ids_between"), params={"files": files, "lowest": lowest, "highest": highest}
    )


def days_that_may_hold(indexes: list[DayIds], ids: pa.Array | pa.ChunkedArray) -> list[DayIds]:
    """The days among ``indexes`` whose footer says their ids can overlap the range of ``ids``.

    Footers only: reading the candidates' ids to rule some out costs about what reading their
    predictions does (it is the same one string column), so a caller reads those directly.
    """
    bounds = id_bounds(ids)
    return [] if bounds is None else [index for index in indexes if index.may_hold(*bounds)]


def _fresh_index(lake: Lake, model: str, partition: Path) -> DayIds:
    day = Lake.day_of(partition)
    for _ in range(3):
        described = _described(lake, model, day, partition)
        if described is not None:
            return described
        try:
            ids = pq.read_table(partition, columns=["prediction_id"]).column("prediction_id")
        except (OSError, pa.ArrowException) as exc:
            raise LakeError(f"cannot index the prediction ids of lake partition {partition}: {exc}") from exc
        write_day_ids(lake, model, day, ids, partition)
    raise LakeError(f"lake partition {partition} kept changing while its prediction ids were indexed; run again")


def _described(lake: Lake, model: str, day: dt.date, partition: Path) -> DayIds | None:
    """The day's index from its footer; None when it is missing, damaged or stale for ``partition``."""
    path = lake.partition_path(model, TABLE, day)
    source = _signature(partition)
    try:
        index_mtime = path.stat().st_mtime_ns
        metadata = pq.read_metadata(path)
        recorded = json.loads((metadata.metadata or {}).get(_SOURCE_KEY, b"{}"))
    except (OSError, ValueError, pa.ArrowException):
        return None  # missing, or damaged: built again
    if source is None or index_mtime < source["mtime_ns"] or {k: recorded.get(k) for k in source} != source:
        return None
    lowest, highest = _bounds(path, metadata)
    return DayIds(day, path, metadata.num_rows, int(recorded.get("rows", metadata.num_rows)), lowest, highest)


def _bounds(path: Path, metadata: pq.FileMetaData) -> tuple[str | None, str | None]:
    """The lowest and highest id of a sorted index: its first and last row group's statistics, or values."""
    if metadata.num_rows == 0:
        return None, None
    groups = [metadata.row_group(i) for i in range(metadata.num_row_groups) if metadata.row_group(i).num_rows]
    first, last = groups[0].column(0).statistics, groups[-1].column(0).statistics
    if first is not None and last is not None and first.has_min_max and last.has_min_max:
        return str(first.min), str(last.max)
    ids = pq.read_table(path).column("prediction_id")  # written without statistics: rare, and sorted anyway
    return ids[0].as_py(), ids[-1].as_py()


def _signature(partition: Path) -> dict[str, int] | None:
    """What tells one write of a partition file from another: a replaced file is a new inode."""
    try:
        stat = os.stat(partition)
    except FileNotFoundError:
        return None
    return {"inode": stat.st_ino, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
