"""Rolling evaluation: quality, calibration and threshold rates over the registry's windows.

For each window (``evaluation.windows_days``, e.g. 7 and 30 days) ending on a day, the daily
``eval_stats`` partitions are summed and every metric of ``closedloop.evaluation.metrics`` is computed per
model version (plus all versions pooled as ``"all"``) and segment value. Quality metrics use
*matured* labels by default: labels known at each day's maturity horizon, so the numbers do not
drift as late labels trickle in. Labels known now but not at a passed horizon (the day is not
mature yet, or the label came after the horizon, e.g. a backlog after a label outage) are
evaluated separately (``labels = "immature"``): an early, possibly biased look (fast labels
are not a random sample), never mixed into the matured figures.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from closedloop.core.lake import Lake, LakeError
from closedloop.core.names import ALL, checked_day
from closedloop.core.specs import ModelSpec
from closedloop.core.sql import connect, query
from closedloop.evaluation.eval_stats import LABEL_SETS, MERGED_SCHEMA, score_counts
from closedloop.evaluation.metrics import WINDOW_METRICS, evaluate
from closedloop.evaluation.score_bins import SCORE_GRID

ROLLING_EVAL_SCHEMA = pa.schema(
    [
        ("window_days", pa.int32()),
        ("window_start", pa.date32()),
        ("window_end", pa.date32()),
        ("days_with_stats", pa.int32()),
        ("model_version", pa.string()),
        ("segment", pa.string()),
        ("segment_value", pa.string()),
        ("labels", pa.string()),
        ("threshold", pa.float64()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("lower", pa.float64()),
        ("upper", pa.float64()),
        ("binning_error", pa.float64()),
    ]
)
COUNT_METRICS = ("n", "n_labeled", "n_positive")
ESTIMATED = "estimated"  # the labels of the rows evaluation.daily estimates for windows not mature yet
# Metrics that need no labels: a window reports them for the days up to its end, matured or not.
LABEL_FREE_METRICS = tuple(m.name for m in WINDOW_METRICS if not m.needs_labels)


def window_start(day: dt.date, window_days: int) -> dt.date:
    return day - dt.timedelta(days=window_days - 1)


def window_stats(lake: Lake, model: ModelSpec, day: str | dt.date, window_days: int) -> tuple[pa.Table, int]:
    """The window's daily ``eval_stats`` summed, and how many of its days had statistics.

    Partitions counted on other score bins (written by an older closedloop) are refused, naming
    their days: their bin numbers mean other scores, so summing them would misplace counts.
    """
    day = checked_day(day)
    files = lake.partition_files(model.name, "eval_stats", window_start(day, window_days), day)
    if not files:
        return MERGED_SCHEMA.empty_table(), 0
    with connect() as con:
        stats = con.read_parquet([str(p) for p in files], union_by_name=True, filename=True)
        con.register("stats", stats)
        if "score_grid" not in stats.columns:  # not one file records its bins: all predate the named bins
            raise _counted_on_other_bins(model, files)
        merged = con.sql(query(__package__, "merge_eval_stats")).to_arrow_table().cast(MERGED_SCHEMA)
        if set(merged["score_grid"].unique().to_pylist()) - {SCORE_GRID}:
            stale = con.sql(query(__package__, "stale_eval_stats"), params={"grid": SCORE_GRID}).fetchall()
            raise _counted_on_other_bins(model, [Path(name) for (name,) in stale])
        return merged, len(files)


def _counted_on_other_bins(model: ModelSpec, stale: list[Path]) -> LakeError:
    days = [Lake.day_of(p).isoformat() for p in stale]
    return LakeError(
        f"{model.name}/eval_stats of {', '.join(days)} ({stale[0]}{' and others' if len(stale) > 1 else ''}) "
        "was counted on other score bins than this version of closedloop uses; re-materialize eval_stats "
        f"for those days, e.g. closedloop run --start {days[0]} --end {days[-1]} --model {model.name}"
    )


def pooled_threshold(model: ModelSpec, version: str) -> float | None:
    """The version's threshold; for all versions pooled, their common threshold if they share one."""
    if version != ALL:
        return model.threshold(version)
    thresholds = {spec.threshold for spec in model.versions.values()}
    return thresholds.pop() if len(thresholds) == 1 else None


def evaluate_window(stats: pa.Table, model: ModelSpec) -> list[dict]:
    """Tidy rows (version, segment, value, label set, metric) of every metric on a merged window."""
    rows = []
    for labels in LABEL_SETS:
        for (version, segment, value), counts in sorted(score_counts(stats, labels).items(), key=lambda kv: str(kv[0])):
            threshold = pooled_threshold(model, version)
            for metric, result in evaluate(counts, threshold, model.evaluation.precision_at_k).items():
                rows.append(
                    {
                        "model_version": version,
                        "segment": segment,
                        "segment_value": value,
                        "labels": labels,
                        "threshold": threshold,
                        "metric": metric,
                        "value": result.value,
                        "lower": result.lower,
                        "upper": result.upper,
                        "binning_error": result.binning_error,
                    }
                )
    return rows


@dataclass(frozen=True)
class RollingEval:
    """Every window's metrics ending on ``day``, as one tidy table (one row per metric)."""

    model: ModelSpec
    day: dt.date
    table: pa.Table

    def document(self, window_days: int) -> dict:
        """One window as a JSON-ready dict (``closedloop metrics --json``).

        Each version block holds the metrics on matured labels, their ``intervals`` (95%) and
        ``binning_error`` bounds, an ``immature`` block with the label-dependent metrics on
        labels that are not matured yet, and ``segments`` -> column -> value -> the same block.
        """
        table = self.table.filter(pc.equal(self.table["window_days"], window_days))
        if table.num_rows == 0:
            raise ValueError(
                f"no {window_days}-day window for {self.model.name} on {self.day}; windows: {self.windows}"
            )
        first = table.slice(0, 1).to_pylist()[0]
        blocks: dict[tuple, dict] = {}
        for row in table.to_pylist():
            key = (row["model_version"], row["segment"], row["segment_value"])
            block = blocks.setdefault(key, {"threshold": row["threshold"]})
            if row["labels"] != "matured":
                if row["metric"] in LABEL_FREE_METRICS:
                    continue
                block = block.setdefault(row["labels"], {})
            _put(block, row)
        versions: dict[str, dict] = {}
        for (version, segment, value), block in blocks.items():
            entry = versions.setdefault(version, {})
            if segment == ALL:
                entry.update(block)
            else:
                entry.setdefault("segments", {}).setdefault(segment, {})["null" if value is None else value] = block
        return {
            "model": self.model.name,
            "date": self.day.isoformat(),
            "window_days": window_days,
            "window_start": first["window_start"].isoformat(),
            "window_end": first["window_end"].isoformat(),
            "days_with_stats": first["days_with_stats"],
            "maturity_days": self.model.labels.maturity_days,
            "mature_through": (self.day - dt.timedelta(days=self.model.labels.maturity_days)).isoformat(),
            "all_versions": versions.pop(ALL, {}),
            "versions": versions,
        }

    @property
    def windows(self) -> list[int]:
        return sorted(set(self.table["window_days"].to_pylist()))


def _put(block: dict, row: dict) -> None:
    metric, value = row["metric"], row["value"]
    block[metric] = int(value) if metric in COUNT_METRICS and value is not None else value
    if row["lower"] is not None:
        block.setdefault("intervals", {})[metric] = [row["lower"], row["upper"]]
    if row["binning_error"]:
        block.setdefault("binning_error", {})[metric] = row["binning_error"]


def rolling_eval(lake: Lake, model: ModelSpec, day: str | dt.date) -> RollingEval:
    """Metrics of every registry window ending on ``day``, from the daily ``eval_stats`` partitions."""
    day = checked_day(day)
    rows = []
    for window_days in model.evaluation.windows_days:
        stats, days_with_stats = window_stats(lake, model, day, window_days)
        window = {
            "window_days": window_days,
            "window_start": window_start(day, window_days),
            "window_end": day,
            "days_with_stats": days_with_stats,
        }
        rows += [{**window, **row} for row in evaluate_window(stats, model)]
    return RollingEval(model, day, pa.Table.from_pylist(rows, schema=ROLLING_EVAL_SCHEMA))


def read_rolling_eval(lake: Lake, model: ModelSpec, day: str | dt.date) -> RollingEval:
    """The ``rolling_eval`` partition the pipeline wrote for ``day``."""
    day = checked_day(day)
    table = lake.read_partition(model.name, "rolling_eval", day)
    if table is None:
        raise LakeError(
            f"no rolling evaluation of {model.name} for {day} "
            f"({lake.partition_path(model.name, 'rolling_eval', day)}); "
            f"materialize the day first, e.g. closedloop run --start {day} --end {day} --model {model.name}"
        )
    return RollingEval(model, day, table.cast(ROLLING_EVAL_SCHEMA))


def metrics_document(
    lake: Lake, model: ModelSpec, day: str | dt.date, window_days: int, segment: str | None = None
) -> dict:
    """One window of the day's ``rolling_eval`` per version (``closedloop metrics``): without
    ``segment`` the whole populations only, with it each version broken down by that segment."""
    document = read_rolling_eval(lake, model, day).document(window_days)
    for block in [document["all_versions"], *document["versions"].values()]:
        segments = block.pop("segments", {})
        if segment is not None:
            block["segments"] = {segment: segments.get(segment, {})}
    return document


def daily_decision_rates(lake: Lake, model: ModelSpec, day: str | dt.date, days: int) -> pa.Table:
    """Rows, decisions and decision rate per prediction day and version over the ``days`` ending on ``day``."""
    day = checked_day(day)
    files = [str(p) for p in lake.partition_files(model.name, "eval_stats", window_start(day, days), day)]
    schema = pa.schema(
        [
            ("prediction_date", pa.date32()),
            ("model_version", pa.string()),
            ("n", pa.int64()),
            ("decided", pa.int64()),
            ("decision_rate", pa.float64()),
        ]
    )
    if not files:
        return schema.empty_table()
    with connect() as con:
        # Decisions do not depend on the score bins: partitions of any closedloop version add up here.
        con.register("stats", con.read_parquet(files, union_by_name=True))
        return con.sql(query(__package__, "daily_decision_rates")).to_arrow_table().cast(schema)
