"""Operational statistics: latency, errors, fallbacks and cost per hour, version and route.

``compute_ops_stats`` turns one day of accepted predictions into rows of counts, sums, minima,
maxima and a latency histogram on fixed bins, so that any set of hours, days, versions or routes
merges by summing (``merge_ops_stats``) and a 7-day window never re-reads raw predictions.
Metrics (rates, latency quantiles, cost per 1k) are derived only from merged rows (``ops_metrics``).

Latency quantiles come from the histogram: the bins are log-spaced with ratio
``LATENCY_BIN_RATIO`` = 1.025 from ``LATENCY_MIN_MS`` = 1 ms up to ``LATENCY_MAX_MS``
(1.025^540 ms, about 10.3 minutes). A quantile is reported as the geometric midpoint of the bin
that holds the sample quantile, clamped to the observed min and max, so its relative error
against the sample quantile (``numpy.quantile(..., method="inverted_cdf")``) is at most
``sqrt(1.025) - 1`` = 1.24%, under half the bin ratio (1.25%): ``LATENCY_QUANTILE_RELATIVE_ERROR``.
The bound holds for quantiles inside [1 ms, 10.3 min); a quantile below or above that range is
reported as the range edge, clamped to the observed min and max.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from closedloop.core.lake import Lake
from closedloop.core.sql import connect, query

LATENCY_MIN_MS = 1.0
LATENCY_BIN_RATIO = 1.025
LATENCY_BINS = 540
LATENCY_MAX_MS = LATENCY_MIN_MS * LATENCY_BIN_RATIO**LATENCY_BINS
LATENCY_QUANTILE_RELATIVE_ERROR = math.sqrt(LATENCY_BIN_RATIO) - 1.0
NO_ROUTE = "(none)"
KEYS = ("hour", "model_version", "route")
TIMESTAMP = pa.timestamp("us", tz="UTC")

OPS_STATS_SCHEMA = pa.schema(
    [
        ("hour", TIMESTAMP),
        ("model_version", pa.string()),
        ("route", pa.string()),
        ("requests", pa.int64()),
        ("errors", pa.int64()),
        ("fallbacks", pa.int64()),
        ("latency_count", pa.int64()),
        ("latency_sum_ms", pa.float64()),
        ("latency_min_ms", pa.float64()),
        ("latency_max_ms", pa.float64()),
        ("latency_histogram", pa.list_(pa.int64())),
        ("cost_count", pa.int64()),
        ("cost_sum_usd", pa.float64()),
    ]
)
_SUMMED = ("requests", "errors", "fallbacks", "latency_count", "latency_sum_ms", "cost_count", "cost_sum_usd")


def compute_ops_stats(predictions: pa.Table | str | os.PathLike) -> pa.Table:
    """One day's ``ops_stats`` rows from its accepted predictions (an Arrow table or the partition file)."""
    parameters = {"min_ms": LATENCY_MIN_MS, "log_ratio": math.log(LATENCY_BIN_RATIO), "bins": LATENCY_BINS}
    with connect() as con:
        if isinstance(predictions, pa.Table):
            con.register("predictions", predictions)
        else:
            con.register("predictions", con.read_parquet(os.fspath(predictions)))
        stats = con.sql(query(__package__, "ops_stats"), params=parameters).to_arrow_table()
    return stats.select(OPS_STATS_SCHEMA.names).cast(OPS_STATS_SCHEMA)


def read_ops_stats(lake: Lake, model: str, start: str | dt.date, end: str | dt.date) -> pa.Table:
    """The ``ops_stats`` rows of every existing day from ``start`` to ``end`` (inclusive)."""
    return lake.read_range(model, "ops_stats", start, end, schema=OPS_STATS_SCHEMA)


def _histograms(stats: pa.Table) -> np.ndarray:
    """The latency histograms as a (rows, bins) array."""
    column = stats.column("latency_histogram").combine_chunks()
    width = LATENCY_BINS + 2
    lengths = column.value_lengths().to_numpy(zero_copy_only=False)
    if column.null_count or np.any(lengths != width):
        raise ValueError(f"ops_stats latency histograms must have {width} bins (LATENCY_BINS = {LATENCY_BINS} + 2)")
    return column.flatten().to_numpy().reshape(len(column), width)


def merge_ops_stats(stats: pa.Table, by: Sequence[str] = ()) -> pa.Table:
    """Sum ``ops_stats`` rows within each group of ``by`` (a subset of hour, model_version, route).

    Counts, sums and histograms add up, minima and maxima take the extremes; the result has the
    same columns, with the keys not in ``by`` dropped, and one row per group (one row when ``by``
    is empty and there are rows).
    """
    by = list(by)
    unknown = sorted(set(by) - set(KEYS))
    if unknown:
        raise ValueError(f"cannot merge ops_stats by {unknown}; keys are {list(KEYS)}")
    frame = stats.select([*by, *_SUMMED, "latency_min_ms", "latency_max_ms"]).to_pandas()
    codes = frame.groupby(by, sort=True, dropna=False).ngroup().to_numpy() if by else np.zeros(len(frame), np.int64)
    groups = int(codes.max()) + 1 if len(codes) else 0
    histograms = np.zeros((groups, LATENCY_BINS + 2), dtype=np.int64)
    np.add.at(histograms, codes, _histograms(stats))
    aggregations = dict.fromkeys(_SUMMED, "sum") | {"latency_min_ms": "min", "latency_max_ms": "max"}
    merged = frame.groupby(codes, sort=True).agg({**dict.fromkeys(by, "first"), **aggregations})
    offsets = pa.array(np.arange(groups + 1) * histograms.shape[1], pa.int32())
    table = pa.Table.from_pandas(merged, preserve_index=False)
    table = table.append_column("latency_histogram", pa.ListArray.from_arrays(offsets, histograms.ravel()))
    schema = pa.schema(
        [OPS_STATS_SCHEMA.field(name) for name in OPS_STATS_SCHEMA.names if name not in set(KEYS) - set(by)]
    )
    return table.select(schema.names).cast(schema)


def latency_quantiles(stats: pa.Table, q: float) -> np.ndarray:
    """The ``q`` latency quantile of each row, from its histogram; NaN where a row has no latencies.

    Within ``LATENCY_QUANTILE_RELATIVE_ERROR`` of the rows' sample quantile (see the module doc).
    """
    histograms = _histograms(stats)
    count = stats.column("latency_count").to_numpy().astype(np.float64)
    low = stats.column("latency_min_ms").to_numpy(zero_copy_only=False).astype(np.float64)
    high = stats.column("latency_max_ms").to_numpy(zero_copy_only=False).astype(np.float64)
    rank = np.maximum(np.ceil(q * count), 1.0)  # the inverted-CDF rank, 1-based
    slot = (np.cumsum(histograms, axis=1) < rank[:, None]).sum(axis=1)
    midpoint = LATENCY_MIN_MS * LATENCY_BIN_RATIO ** (np.clip(slot, 1, LATENCY_BINS) - 0.5)
    estimate = np.where(slot == 0, LATENCY_MIN_MS, np.where(slot > LATENCY_BINS, LATENCY_MAX_MS, midpoint))
    with np.errstate(invalid="ignore"):
        estimate = np.clip(estimate, low, high)
    return np.where(count > 0, estimate, np.nan)


def ops_metrics(stats: pa.Table, by: Sequence[str] = ("hour",)) -> pd.DataFrame:
    """Rates, latency quantiles and cost per group of ``by``, from merged ``ops_stats`` rows.

    ``cost_per_1k`` is the mean cost of the predictions that logged a cost, times 1,000 (a missing
    cost is unknown, not free). Latency and cost metrics are NaN where no row logged them.
    """
    merged = merge_ops_stats(stats, by)
    frame = merged.drop_columns(["latency_histogram"]).to_pandas()
    frame["error_rate"] = frame["errors"] / frame["requests"]
    frame["fallback_rate"] = frame["fallbacks"] / frame["requests"]
    for q in (50, 95, 99):
        frame[f"latency_p{q}_ms"] = latency_quantiles(merged, q / 100)
    latency_count = frame["latency_count"].where(frame["latency_count"] > 0)
    frame["latency_mean_ms"] = frame["latency_sum_ms"] / latency_count
    cost_count = frame["cost_count"].where(frame["cost_count"] > 0)
    frame["cost_usd"] = frame["cost_sum_usd"].where(frame["cost_count"] > 0)
    frame["cost_per_1k"] = 1000.0 * frame["cost_sum_usd"] / cost_count
    return frame


def projected_daily_spend(stats: pa.Table, as_of_hour: dt.datetime, history: pa.Table | None = None) -> float | None:
    """The day's spend if the rest of it follows the usual traffic shape; None without cost data.

    Spend from midnight through the end of ``as_of_hour``, divided by the share of a day's
    requests that usually arrive by then: from ``history`` (``ops_stats`` rows of earlier days,
    e.g. the previous 7) when it has requests, else the share of the day's 24 hours elapsed.
    When history says no traffic is due by then, the spend so far is the projection.
    """
    hour = pd.Timestamp(as_of_hour).tz_convert("UTC")
    day_start = hour.floor("D")
    frame = stats.select(["hour", "cost_count", "cost_sum_usd"]).to_pandas()
    so_far = frame[(frame["hour"] >= day_start) & (frame["hour"] <= hour)]
    if so_far["cost_count"].sum() == 0:
        return None
    spend = float(so_far["cost_sum_usd"].sum())
    share = (hour.hour + 1) / 24
    if history is not None and history.num_rows:
        past = history.select(["hour", "requests"]).to_pandas()
        by_hour = past.groupby(past["hour"].dt.hour)["requests"].sum()
        if by_hour.sum() > 0:
            share = by_hour[by_hour.index <= hour.hour].sum() / by_hour.sum()
    return spend / share if share > 0 else spend
