"""Drift measures: one function per metric of one column's current profile against its reference.

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

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from closedloop.core.metric import Metric
from closedloop.drift.baseline import CategoricalBaseline, NumericBaseline
from closedloop.drift.profiles import hll_estimate

PSI_FLOOR = 1e-4  # empty buckets count as this share in PSI, so it stays finite
NAN = float("nan")


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
    def moments_finite(self) -> bool:
        """Whether the sums behind the mean and the standard deviation stayed within float64."""
        return math.isfinite(self.sum) and math.isfinite(self.sum_sq)

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

    @property
    def numeric(self) -> NumericBaseline:
        """The baseline of a numeric column (the score and the decision are numeric too)."""
        if not isinstance(self.baseline, NumericBaseline):
            raise TypeError(f"{self.column} is categorical: a numeric measure does not apply")
        return self.baseline

    @property
    def categorical(self) -> CategoricalBaseline:
        """The baseline of a categorical feature or segment."""
        if not isinstance(self.baseline, CategoricalBaseline):
            raise TypeError(f"{self.column} is numeric: a categorical measure does not apply")
        return self.baseline


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


# The measures built on the mean and the standard deviation: unknown when a window's sums overflow.
MOMENT_MEASURES = (mean_shift, std_shift)


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
    edges = np.asarray(c.numeric.edges, dtype=np.float64)
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
    return _divide(hll_estimate(c.current.hll), expected_distinct(c.categorical.counts, c.current.count))


def expected_distinct(counts: np.ndarray, draws: int) -> float:
    """Expected distinct values in ``draws`` draws from the distribution ``counts`` was counted from.

    Values seen once stand in for those never seen (Good-Turing): that share of draws is new
    every time, the rest are drawn from the known values.
    """
    total = counts.sum()
    if not total or not draws:
        return 0.0
    unseen_mass = seen_once(counts) / total
    p = counts / total * (1.0 - unseen_mass)
    return float(np.sum(-np.expm1(draws * np.log1p(-p))) + draws * unseen_mass)


def seen_once(counts: np.ndarray) -> int:
    """Draws whose value was drawn once: Good-Turing's count of the draws that brought a value never seen."""
    return int(np.sum(counts == 1))


def _share_below(profile: ColumnProfile, points: np.ndarray, value: float) -> float:
    """Share of a numeric profile below ``value``: exact at an edge, linear within a bucket."""
    shares = profile.shares
    assert shares is not None  # callers check that the profile has rows
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
    if current is None or c.threshold is None:
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
    "score": (
        mean_shift,
        std_shift,
        psi,
        js_distance,
        wasserstein,
        ks,
        share_above_threshold,
        share_above_threshold_delta,
    ),
    "decision": (decision_rate, decision_rate_ratio),
}


def _described(measure: MetricFunction) -> str:
    return (measure.__doc__ or measure.__name__).strip()


# Every drift figure, as the metric catalog and the registry's drift limits know it.
DRIFT_METRICS = (
    Metric("mean_shift", "baseline std", "neither", description=_described(mean_shift)),
    Metric("std_shift", "baseline std", "neither", description=_described(std_shift)),
    Metric("missing_rate_delta", "share", "neither", description=_described(missing_rate_delta)),
    Metric("psi", "psi", "lower", description=_described(psi)),
    Metric("js_distance", "distance", "lower", description=_described(js_distance)),
    Metric("wasserstein", "baseline std", "lower", description=_described(wasserstein)),
    Metric("ks", "distance", "lower", description=_described(ks)),
    Metric("new_category_share", "share", "lower", description=_described(new_category_share)),
    Metric("cardinality_ratio", "ratio", "neither", description=_described(cardinality_ratio)),
    Metric("share_above_threshold", "share", "neither", description=_described(share_above_threshold)),
    Metric("share_above_threshold_delta", "share", "neither", description=_described(share_above_threshold_delta)),
    Metric("decision_rate", "share", "neither", description=_described(decision_rate)),
    Metric("decision_rate_ratio", "ratio", "neither", description=_described(decision_rate_ratio)),
    Metric(
        "domain_classifier_auc",
        "auc",
        "lower",
        description="How well a classifier tells the inputs from the baseline's.",
    ),
)

# What ``drift.report.drifting_inputs`` counts per version.
DRIFTING_INPUTS = Metric(
    "drifting_inputs", "columns", "lower", description="Feature and segment columns with a figure past its error limit."
)
