"""Daily profiles: mergeable statistics of a day's predictions, laid on the baseline's bins and values.

A profile row is a sufficient statistic for drift: counts, sums and bin counts add up across
days and versions, and HyperLogLog registers merge by element-wise max, so the drift of any
window is computed from daily rows and never re-reads the predictions. Rows are only mergeable
when they were profiled on the same baseline (same ``baseline_hash``): its bin edges and top
values give the lists their meaning.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import duckdb
import numpy as np
import pyarrow as pa

from closedloop.core.lake import Lake, LakeError
from closedloop.core.names import ALL, checked_day
from closedloop.core.specs import ModelSpec
from closedloop.core.sql import connect, query


class Buckets(Protocol):
    """What a profile is laid on (a frozen baseline): bin edges per numeric column, top and known
    values per categorical one, and the hash that makes profiles on it mergeable."""

    @property
    def hash(self) -> str: ...

    @property
    def numeric(self) -> Mapping[str, Any]: ...

    @property
    def categorical(self) -> Mapping[str, Any]: ...

    def require_model(self, model: ModelSpec) -> None: ...


REGISTER_BITS = 12  # HyperLogLog precision: 4,096 registers, ~1.6% standard error on distinct counts

_KEY_FIELDS = [
    pa.field("model_version", pa.string()),
    pa.field("column", pa.string()),
    pa.field("kind", pa.string()),  # "numeric" or "categorical"
]
_STAT_FIELDS = [
    pa.field("rows", pa.int64()),
    pa.field("count", pa.int64()),  # non-missing values
    pa.field("nulls", pa.int64()),  # nulls, and NaN/inf for numeric columns
    pa.field("sum", pa.float64()),
    pa.field("sum_sq", pa.float64()),
    pa.field("min", pa.float64()),
    pa.field("max", pa.float64()),
    pa.field("bins", pa.list_(pa.int64())),  # on the baseline's edges: underflow, ..., overflow
    pa.field("top_counts", pa.list_(pa.int64())),  # aligned to the baseline's top values
    pa.field("other", pa.int64()),  # values the baseline saw, outside its top values
    pa.field("unseen", pa.int64()),  # values the baseline never saw
    pa.field("hll", pa.list_(pa.uint8())),  # HyperLogLog registers of the distinct values
    pa.field("baseline_hash", pa.string()),
]
PROFILE_SCHEMA = pa.schema([pa.field("day", pa.date32()), *_KEY_FIELDS, *_STAT_FIELDS])
MERGED_SCHEMA = pa.schema([*_KEY_FIELDS, pa.field("days", pa.int64()), *_STAT_FIELDS])

_SUMMED = ["rows", "count", "nulls", "sum", "sum_sq", "other", "unseen"]


def profile_day(lake: Lake, model: ModelSpec, baseline: Buckets, day: str | dt.date) -> pa.Table:
    """The profile of one day's accepted predictions (one row per version and watched column)."""
    day = checked_day(day)
    baseline.require_model(model)
    path = lake.partition_path(model.name, "predictions", day)
    if not path.exists():
        raise LakeError(
            f"{path}: no predictions partition for {model.name} on {day}; ingest the day before profiling it"
        )
    with connect() as con:
        con.register("predictions", con.read_parquet(str(path)))
        return profile_predictions(con, baseline, day)


def profile_table(table: pa.Table, baseline: Buckets, day: str | dt.date) -> pa.Table:
    """The profile of prediction rows held in memory, all counted as rows of ``day``."""
    with connect() as con:
        con.register("predictions", table)
        return profile_predictions(con, baseline, checked_day(day))


def profile_predictions(con: duckdb.DuckDBPyConnection, baseline: Buckets, day: dt.date) -> pa.Table:
    """Profile the view ``predictions`` on ``con`` in one query: each column is read once."""
    numeric = list(baseline.numeric)
    categorical = list(baseline.categorical)
    con.register(
        "edges", pa.table({"name": numeric, "edges": [list(baseline.numeric[c].edges) for c in numeric]}, schema=_EDGES)
    )
    con.register("known", _known_values(baseline))
    con.register(
        "tops",
        pa.table({"name": categorical, "n_top": [len(baseline.categorical[c].top) for c in categorical]}, schema=_TOPS),
    )
    params = {
        "numeric": numeric,
        "categorical": categorical,
        "day": day,
        "baseline": baseline.hash,
        "register_bits": REGISTER_BITS,
    }
    profile = con.sql(query(__package__, "profile_predictions"), params=params).to_arrow_table()
    return profile.select(PROFILE_SCHEMA.names).cast(PROFILE_SCHEMA)


_EDGES = pa.schema([("name", pa.string()), ("edges", pa.list_(pa.float64()))])
_TOPS = pa.schema([("name", pa.string()), ("n_top", pa.int32())])
_KNOWN = pa.schema([("name", pa.string()), ("value", pa.string()), ("bucket", pa.int32())])


def _known_values(baseline: Buckets) -> pa.Table:
    """Every value the baseline saw, with its position among the top values (-1 when not a top value)."""
    rows = []
    for column, spec in baseline.categorical.items():
        position = {value: i for i, value in enumerate(spec.top)}
        rows += [(column, value, position.get(value, -1)) for value in spec.known]
    names, values, buckets = zip(*rows, strict=True) if rows else ((), (), ())
    return pa.table({"name": list(names), "value": list(values), "bucket": list(buckets)}, schema=_KNOWN)


def merge_profiles(tables: Iterable[pa.Table], *, across_versions: bool = False) -> pa.Table:
    """Sum profile rows over days (and versions, with ``across_versions``): one row per version and column.

    Counts, sums and bins add up, min/max combine, HyperLogLog registers take the element-wise
    max. Rows profiled on different baselines cannot be merged: their bins mean different things.
    """
    table = pa.concat_tables(
        [PROFILE_SCHEMA.empty_table()] + [t.select(PROFILE_SCHEMA.names).cast(PROFILE_SCHEMA) for t in tables]
    )
    hashes = set(table.column("baseline_hash").to_pylist())
    if len(hashes) > 1:
        raise ValueError(f"profiles from different baselines cannot be merged: {sorted(hashes)}")
    if table.num_rows == 0:
        return MERGED_SCHEMA.empty_table()
    frame = table.drop_columns(["bins", "top_counts", "hll"]).to_pandas()
    if across_versions:
        frame["model_version"] = ALL
    keys = ["model_version", "column", "kind", "baseline_hash"]
    groups = frame.groupby(keys, sort=False)
    merged = groups[_SUMMED].sum(min_count=1)
    merged["min"] = groups["min"].min()
    merged["max"] = groups["max"].max()
    merged["days"] = groups["day"].nunique()
    merged = merged.reset_index()
    group_of_row = groups.ngroup().to_numpy()
    merged["bins"] = _merge_lists(table.column("bins"), group_of_row, len(merged), np.add)
    merged["top_counts"] = _merge_lists(table.column("top_counts"), group_of_row, len(merged), np.add)
    merged["hll"] = _merge_lists(table.column("hll"), group_of_row, len(merged), np.maximum)
    return pa.Table.from_pandas(merged[MERGED_SCHEMA.names], schema=MERGED_SCHEMA, preserve_index=False)


def _merge_lists(column: pa.ChunkedArray, group_of_row: np.ndarray, groups: int, combine: np.ufunc) -> list:
    """Element-wise ``combine`` of each group's list cells (the rows of one column have equal lengths)."""
    array = column.combine_chunks()
    offsets = array.offsets.to_numpy()
    values = array.values.to_numpy(zero_copy_only=False).astype(np.int64)
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    merged: list = [None] * groups
    for row, group in enumerate(group_of_row):
        if valid[row]:
            cell = values[offsets[row] : offsets[row + 1]]
            merged[group] = cell.copy() if merged[group] is None else combine(merged[group], cell)
    return merged


def hll_estimate(registers: np.ndarray) -> float:
    """Distinct values counted by HyperLogLog registers (Flajolet et al. 2007, with linear counting when small)."""
    registers = np.asarray(registers, dtype=np.float64)
    m = registers.size
    alpha = 0.7213 / (1.0 + 1.079 / m)
    estimate = alpha * m * m / np.sum(np.exp2(-registers))
    empty = int(np.sum(registers == 0))
    if estimate <= 2.5 * m and empty:
        return float(m * np.log(m / empty))
    return float(estimate)
