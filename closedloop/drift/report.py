"""Input and output drift: a day's and a window's merged profiles against the frozen baseline.

Each metric is one function of a ``Comparison`` (one column's current and baseline profiles);
which metrics apply depends on the column's role (numeric feature, categorical feature or
segment, score, decision), and the registry's ``drift`` limits judge them. Everything comes from
mergeable profiles, so any window costs a sum of daily rows. On the baseline's buckets:

- PSI and Jensen-Shannon are defined on the buckets; they are exact for them.
- Wasserstein assumes values spread evenly within a bucket (the under/overflow buckets reach to
  the observed min/max); its error against the exact statistic on raw rows is at most
  ``0.5 * sum_i width_i * (p_i + q_i)``. It is divided by the baseline's standard deviation.
- KS from binned CDFs is a lower bound of the exact statistic, which exceeds it by at most the
  largest bucket share of either side.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from closedloop.drift.baseline import Baseline, CategoricalBaseline, NumericBaseline
from closedloop.drift.profiles import hll_estimate, merge_profiles
from closedloop.core.names import ALL
from closedloop.core.metric import Metric
from closedloop.core.specs import DRIFT_OUTPUT_COLUMNS, DriftSpec, ModelSpec

DAY_WINDOW = "day"
ALL_INPUTS = "(inputs)"  # the column of multivariate rows; never a valid column name
PSI_FLOOR = 1e-4  # empty buckets count as this share in PSI, so it stays finite
NAN = float("nan")

REPORT_SCHEMA = pa.schema(
    [
        ("day", pa.date32()),
        ("column", pa.string()),
        ("version", pa.string()),
        ("window", pa.string()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("threshold", pa.float64()),  # the limit the status was judged against
        ("severity", pa.float64()),  # how far toward the error limit (1.0 = at it); ranks columns
        ("status", pa.string()),  # ok, warn, error, not_enough_data
        ("rows", pa.int64()),  # rows of the version in the window
    ]
)


@dataclass(frozen=True)
class ColumnProfile:
    """One column's merged profile; ``counts`` are its distribution's buckets (bins, or top values and the rest)."""

    rows: int
    count: int
    nulls: int
    sum: float
    sum_sq: float
    min: float | None
    max: float | None
    counts: np.ndarray
    unseen: int
    hll: np.ndarray | None

    @classmethod
    def from_row(cls, row: Mapping) -> ColumnProfile:
        numeric = row["kind"] == "numeric"
        # Categorical: the top values and the rest, seen or not; novelty has its own metric
        # (new_category_share), and a long tail of ids would otherwise read as a shift.
        counts = row["bins"] if numeric else [*row["top_counts"], row["other"] + row["unseen"]]
        return cls(
            rows=row["rows"],
            count=row["count"],
            nulls=row["nulls"],
            sum=row["sum"] or 0.0,
            sum_sq=row["sum_sq"] or 0.0,
            min=row["min"],
            max=row["max"],
            counts=np.asarray(counts, dtype=np.float64),
            unseen=row["unseen"] or 0,
            hll=None if row["hll"] is None else np.asarray(row["hll"]),
        )

    @classmethod
    def empty(cls, like: ColumnProfile) -> ColumnProfile:
        return cls(0, 0, 0, 0.0, 0.0, None, None, np.zeros_like(like.counts), 0, None)

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else NAN

    @property
    def std(self) -> float:
        if self.count < 2:
            return NAN
        variance = (self.sum_sq - self.sum * self.sum / self.count) / (self.count - 1)
        return math.sqrt(max(variance, 0.0))

    @property
    def missing_rate(self) -> float:
        return self.nulls / self.rows if self.rows else NAN

    @property
    def shares(self) -> np.ndarray | None:
        total = self.counts.sum()
        return self.counts / total if total else None


@dataclass(frozen=True)
class Comparison:
    """What a metric sees: one column of one version in one window, and the baseline's."""

    column: str
    current: ColumnProfile
    reference: ColumnProfile
    baseline: NumericBaseline | CategoricalBaseline
    threshold: float | None  # the version's decision threshold (score only)


def _divide(numerator: float, denominator: float | None) -> float:
    if denominator is None or not denominator or math.isnan(denominator):
        return NAN
    return numerator / denominator


def mean_shift(c: Comparison) -> float:
    """Change of the mean, in baseline standard deviations."""
    return _divide(c.current.mean - c.reference.mean, c.reference.std)


def std_shift(c: Comparison) -> float:
    """Change of the standard deviation, in baseline standard deviations."""
    return _divide(c.current.std - c.reference.std, c.reference.std)


def missing_rate_delta(c: Comparison) -> float:
    """Change of the share of missing values (nulls, NaN, inf), in points of 1."""
    return c.current.missing_rate - c.reference.missing_rate


def psi(c: Comparison) -> float:
    """Population stability index over the baseline's buckets (empty buckets count as ``PSI_FLOOR``)."""
    p, q = c.current.shares, c.reference.shares
    if p is None or q is None:
        return NAN
    p, q = np.maximum(p, PSI_FLOOR), np.maximum(q, PSI_FLOOR)
    return float(np.sum((p - q) * np.log(p / q)))


def js_distance(c: Comparison) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) over the baseline's buckets."""
    p, q = c.current.shares, c.reference.shares
    if p is None or q is None:
        return NAN
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        used = a > 0
        return float(np.sum(a[used] * np.log2(a[used] / m[used])))

    return math.sqrt(max((kl(p) + kl(q)) / 2, 0.0))


def _support(c: Comparison) -> np.ndarray:
    """Bucket boundaries: the observed minimum, the baseline's edges, the observed maximum."""
    edges = np.asarray(c.baseline.edges, dtype=np.float64)
    ends = [v for v in (c.current.min, c.reference.min, c.current.max, c.reference.max) if v is not None]
    low = min([*ends, *edges[:1]])
    high = max([*ends, *edges[-1:]])
    return np.concatenate([[low], edges, [high]])


def wasserstein(c: Comparison) -> float:
    """Wasserstein-1 distance of the binned distributions, divided by the baseline's standard deviation."""
    p, q = c.current.shares, c.reference.shares
    if p is None or q is None:
        return NAN
    points = _support(c)
    gap = np.concatenate([[0.0], np.cumsum(p - q)])  # F - G at each boundary, linear in between
    widths = np.diff(points)
    left, right = gap[:-1], gap[1:]
    same_sign = left * right >= 0
    magnitude = np.abs(left) + np.abs(right)
    crossing = np.divide(left**2 + right**2, 2 * magnitude, out=np.zeros_like(magnitude), where=magnitude > 0)
    area = np.where(same_sign, magnitude / 2, crossing) * widths
    return _divide(float(np.sum(area)), c.reference.std)


def ks(c: Comparison) -> float:
    """Kolmogorov-Smirnov statistic of the binned CDFs (a lower bound of the exact one)."""
    p, q = c.current.shares, c.reference.shares
    if p is None or q is None:
        return NAN
    return float(np.max(np.abs(np.cumsum(p - q))))


def new_category_share(c: Comparison) -> float:
    """Share of the current values that the baseline never saw."""
    return _divide(c.current.unseen, c.current.count)


def cardinality_ratio(c: Comparison) -> float:
    """Distinct values seen (HyperLogLog) over those expected in as many draws from the baseline."""
    if c.current.hll is None:
        return NAN
    return _divide(hll_estimate(c.current.hll), expected_distinct(np.array(list(c.baseline.known.values())), c.current.count))


def expected_distinct(counts: np.ndarray, draws: int) -> float:
    """Expected distinct values in ``draws`` draws from the distribution ``counts`` was counted from.

    Values seen once stand in for those never seen (Good-Turing): that share of draws is new
    every time, the rest are drawn from the known values.
    """
    total = counts.sum()
    if not total or not draws:
        return 0.0
    unseen_mass = np.sum(counts == 1) / total
    p = counts / total * (1.0 - unseen_mass)
    return float(np.sum(-np.expm1(draws * np.log1p(-p))) + draws * unseen_mass)


def _share_below(profile: ColumnProfile, points: np.ndarray, value: float) -> float:
    """Share of a numeric profile below ``value``: exact at an edge, linear within a bucket."""
    shares = profile.shares
    bucket = int(np.searchsorted(points[1:-1], value, side="right"))  # the bucket holding value
    left, right = points[bucket], points[bucket + 1]
    inside = (value - left) / (right - left) if right > left else 0.0
    return float(shares[:bucket].sum() + shares[bucket] * min(max(inside, 0.0), 1.0))


def share_above_threshold(c: Comparison) -> float | None:
    """Share of scores at or above the version's threshold (below it: one minus this)."""
    if c.threshold is None:
        return None
    if c.current.shares is None:
        return NAN
    return 1.0 - _share_below(c.current, _support(c), c.threshold)


def share_above_threshold_delta(c: Comparison) -> float | None:
    """Change of the share at or above the version's threshold against the baseline's scores."""
    current = share_above_threshold(c)
    if current is None:
        return None
    if c.reference.shares is None:
        return NAN
    return current - (1.0 - _share_below(c.reference, _support(c), c.threshold))


def decision_rate(c: Comparison) -> float:
    """Share of positive decisions."""
    return c.current.mean


def decision_rate_ratio(c: Comparison) -> float:
    """Decision rate over the baseline's."""
    return _divide(c.current.mean, c.reference.mean)


MetricFunction = Callable[[Comparison], float | None]
ROLE_METRICS: dict[str, tuple[MetricFunction, ...]] = {
    "numeric": (mean_shift, std_shift, missing_rate_delta, psi, js_distance, wasserstein, ks),
    "categorical": (missing_rate_delta, psi, js_distance, new_category_share, cardinality_ratio),
    "score": (mean_shift, std_shift, psi, js_distance, wasserstein, ks, share_above_threshold, share_above_threshold_delta),
    "decision": (decision_rate, decision_rate_ratio),
}


# Every drift figure, as the metric catalog and the registry's drift limits know it.
DRIFT_METRICS = (
    Metric("mean_shift", "baseline std", "neither", description=mean_shift.__doc__),
    Metric("std_shift", "baseline std", "neither", description=std_shift.__doc__),
    Metric("missing_rate_delta", "share", "neither", description=missing_rate_delta.__doc__),
    Metric("psi", "psi", "lower", description=psi.__doc__),
    Metric("js_distance", "distance", "lower", description=js_distance.__doc__),
    Metric("wasserstein", "baseline std", "lower", description=wasserstein.__doc__),
    Metric("ks", "distance", "lower", description=ks.__doc__),
    Metric("new_category_share", "share", "lower", description=new_category_share.__doc__),
    Metric("cardinality_ratio", "ratio", "neither", description=cardinality_ratio.__doc__),
    Metric("share_above_threshold", "share", "neither", description=share_above_threshold.__doc__),
    Metric("share_above_threshold_delta", "share", "neither", description=share_above_threshold_delta.__doc__),
    Metric("decision_rate", "share", "neither", description=decision_rate.__doc__),
    Metric("decision_rate_ratio", "ratio", "neither", description=decision_rate_ratio.__doc__),
    Metric("domain_classifier_auc", "auc", "lower", description="How well a classifier tells the inputs from the baseline's."),
)
DRIFTING_INPUTS = Metric(
    "drifting_inputs", "columns", "lower", description="Feature and segment columns with a figure past its error limit."
)


def drift_report(
    model: ModelSpec,
    baseline: Baseline,
    profiles_for_day: pa.Table,
    profiles_for_window: pa.Table,
    *,
    window: str = "7d",
    day: dt.date | None = None,
    domain_auc: Mapping[str, float] | None = None,
    reference_profile: pa.Table | None = None,
) -> pa.Table:
    """Every drift metric of the day and of the window, per version and for all versions together.

    ``profiles_for_day`` holds the day's profile rows, ``profiles_for_window`` the daily rows of
    the window ending that day (``window`` labels it). ``day`` defaults to the day of the rows.
    ``domain_auc`` maps a window label to the domain classifier's ROC AUC for it. A version or
    window with fewer than ``drift.min_rows`` rows, or a metric the data leaves undefined, is
    ``not_enough_data`` and never alerts. ``reference_profile`` (rows merged across versions)
    replaces the baseline's own profile as the reference, for a trailing-window baseline; the
    bins and values stay the baseline's, so every day is still measured the same way.
    """
    baseline.require_model(model)
    days = profiles_for_day.column("day").to_pylist() + profiles_for_window.column("day").to_pylist()
    day = day or max(days, default=None)
    if day is None:
        raise ValueError("no profile rows to take the day from; pass day=")
    reference_rows = (baseline.profile if reference_profile is None else reference_profile).to_pylist()
    reference = {row["column"]: ColumnProfile.from_row(row) for row in reference_rows}
    kinds = {row["column"]: row["kind"] for row in baseline.profile.to_pylist()}
    rows = []
    for label, profiles in ((DAY_WINDOW, profiles_for_day), (window, profiles_for_window)):
        if set(profiles.column("baseline_hash").to_pylist()) - {baseline.hash}:
            raise ValueError(f"profiles of the {label} window were not made on baseline {baseline.name!r} ({baseline.hash})")
        merged = merge_profiles([profiles]).to_pylist()
        everything = {row["column"]: row for row in merge_profiles([profiles], across_versions=True).to_pylist()}
        for column, ref in reference.items():
            current = ColumnProfile.from_row(everything[column]) if column in everything else ColumnProfile.empty(ref)
            rows += _column_rows(model, baseline, column, kinds[column], ALL, label, current, ref)
        for row in merged:
            if row["column"] in reference:
                current = ColumnProfile.from_row(row)
                rows += _column_rows(model, baseline, row["column"], row["kind"], row["model_version"], label, current, reference[row["column"]])
        if domain_auc and label in domain_auc:
            window_rows = max((r["rows"] for r in everything.values()), default=0)
            enough = window_rows >= model.drift.min_rows
            rows.append(_judged(model.drift, ALL_INPUTS, ALL, label, "domain_classifier_auc", domain_auc[label], window_rows, enough))
    table = pa.Table.from_pylist(rows, schema=REPORT_SCHEMA.remove(0))
    return table.add_column(0, "day", pa.array([day] * table.num_rows, pa.date32()))


def _column_rows(
    model: ModelSpec, baseline: Baseline, column: str, kind: str, version: str, window: str, current: ColumnProfile, reference: ColumnProfile
) -> list[dict]:
    role = column if column in DRIFT_OUTPUT_COLUMNS else kind
    spec = baseline.numeric.get(column) or baseline.categorical.get(column)
    threshold = model.threshold(version) if version != ALL else None
    comparison = Comparison(column, current, reference, spec, threshold)
    enough = min(current.rows, reference.rows) >= model.drift.min_rows
    rows = []
    for metric in ROLE_METRICS[role]:
        value = metric(comparison)
        if value is not None:
            rows.append(_judged(model.drift, column, version, window, metric.__name__, value, current.rows, enough))
    return rows


def _judged(spec: DriftSpec, column: str, version: str, window: str, metric: str, value: float, rows: int, enough: bool) -> dict:
    limit = spec.limit(metric, column)
    row = {"column": column, "version": version, "window": window, "metric": metric, "rows": rows}
    if not enough or math.isnan(value):
        value = None if math.isnan(value) else value
        return {**row, "value": value, "threshold": limit.limit("ok") if limit else None, "severity": None, "status": "not_enough_data"}
    if limit is None:
        return {**row, "value": value, "threshold": None, "severity": None, "status": "ok"}
    level = limit.level(value)
    return {**row, "value": value, "threshold": limit.limit(level), "severity": limit.severity(value), "status": level}


def judged_rows(report: pa.Table) -> pa.Table:
    """The day's figures, and the trailing week's where the day alone had too few rows (a small canary).

    A trailing window keeps an incident in view for a week after it ended; judging it every day
    would alert on clean days, so it stands in only where the day cannot speak for itself.
    """
    frame = report.to_pandas()
    day = frame[frame["window"] == "day"]
    thin = day[day["status"] == "not_enough_data"][["day", "column", "version", "metric"]]
    week = frame[frame["window"] != "day"].merge(thin, on=["day", "column", "version", "metric"])
    judged = day[day["status"] != "not_enough_data"]
    return pa.Table.from_pandas(pd.concat([judged, week], ignore_index=True), schema=report.schema, preserve_index=False)


FIGURE_GROUPS = ("features", "score", "decision", "inputs_together")


def figures_of(report: pa.Table, group: str) -> pa.Table:
    """The rows of one group of figures: the features and segments, the score, the decision, or
    the inputs taken together (the domain classifier)."""
    column = report.column("column")
    if group == "score":
        return report.filter(pc.equal(column, "score"))
    if group == "decision":
        return report.filter(pc.equal(column, "decision"))
    if group == "inputs_together":
        return report.filter(pc.equal(column, ALL_INPUTS))
    if group != "features":
        raise ValueError(f"unknown group of drift figures {group!r}; groups are {list(FIGURE_GROUPS)}")
    return report.filter(pc.invert(pc.is_in(column, pa.array([*DRIFT_OUTPUT_COLUMNS, ALL_INPUTS]))))


@dataclass(frozen=True)
class DriftingInputs:
    """For one version (or ALL): the feature and segment columns with a figure past its error limit."""

    version: str
    count: int | None  # None: no input figure could be judged (not enough data)
    rows: int | None = None
    detail: str | None = None  # each drifting column with its worst figure and limit


def drifting_inputs(report: pa.Table) -> list[DriftingInputs]:
    """Per version of one window's drift report: how many input columns drift past an error limit, and which."""
    outputs = pa.array([*DRIFT_OUTPUT_COLUMNS, ALL_INPUTS])
    inputs = report.filter(pc.invert(pc.is_in(report["column"], outputs))).to_pylist()
    found = []
    for version in sorted({r["version"] for r in inputs}):
        mine = [r for r in inputs if r["version"] == version]
        judged = [r for r in mine if r["status"] != "not_enough_data"]
        if not judged:
            found.append(DriftingInputs(version, None))
            continue
        worst: dict[str, dict] = {}
        for r in sorted((r for r in judged if r["status"] == "error"), key=lambda r: -(r["severity"] or 0)):
            worst.setdefault(r["column"], r)
        detail = ", ".join(f"{c} ({r['metric']} {r['value']:.3g}, limit {r['threshold']:.3g})" for c, r in worst.items())
        found.append(DriftingInputs(version, len(worst), max(r["rows"] for r in judged), detail or None))
    return found
