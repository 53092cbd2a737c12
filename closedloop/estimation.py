"""Performance estimation before labels arrive (confidence-based, as NannyML's CBPE).

Fraud labels take up to 45 days: without an estimate, the last six weeks of a model's quality
are unknown. If a version's scores, once calibrated on a matured reference period, still mean
what they meant there, each unlabeled row is a positive with its calibrated probability, so the
confusion matrix and the metrics the window will show once its labels mature can be expected
now. The calibration map is fitted with scikit-learn's isotonic regression on the reference's
binned matured labels. The stated error is a parametric bootstrap of both uncertainties: the
map (reference labels resampled) and the labels still to come (each unlabeled row labeled with
the reference's label coverage, positive with its calibrated probability). It does not cover a
broken assumption: under concept drift or a calibration shift the estimate is biased, which is
what comparing it with the realised value (``estimate_vs_realised``) shows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from sklearn.isotonic import IsotonicRegression

from closedloop.eval_stats import ALL, score_counts
from closedloop.lake import Lake
from closedloop.metrics import (
    MIDPOINTS,
    MetricValue,
    ScoreCounts,
    f1,
    positive_rate,
    precision,
    recall,
    roc_auc,
    threshold_bin,
)
from closedloop.names import checked_day
from closedloop.registry import ModelSpec
from closedloop.rolling_eval import window_stats

ESTIMATED_METRICS = {"roc_auc": roc_auc, "precision": precision, "recall": recall, "f1": f1, "positive_rate": positive_rate}
_THRESHOLD_FREE = {"roc_auc", "positive_rate"}


@dataclass(frozen=True)
class Calibration:
    """Probability of a positive per score bin (non-decreasing in the score), from matured labels."""

    probability: np.ndarray
    coverage: float
    reference: ScoreCounts


def fit_calibration(reference: ScoreCounts) -> Calibration | None:
    """Isotonic map from score to positive rate on ``reference``'s labels; None without both classes."""
    probability = _isotonic(reference.pos, reference.neg)
    if probability is None:
        return None
    return Calibration(probability, reference.n_labeled / reference.n, reference)


def _isotonic(positives: np.ndarray, negatives: np.ndarray) -> np.ndarray | None:
    if positives.sum() == 0 or negatives.sum() == 0:
        return None
    labeled = positives + negatives
    keep = labeled > 0
    isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    isotonic.fit(MIDPOINTS[keep], positives[keep] / labeled[keep], sample_weight=labeled[keep])
    return isotonic.predict(MIDPOINTS)


def expected_counts(calibration: Calibration, target: ScoreCounts) -> ScoreCounts:
    """``target`` with every unlabeled row split into expected positives and negatives."""
    unlabeled = target.unlabeled
    return ScoreCounts(
        target.positive + unlabeled * calibration.probability,
        target.negative + unlabeled * (1 - calibration.probability),
        np.zeros_like(unlabeled),
    )


@dataclass(frozen=True)
class EstimatedMetric:
    """An expected metric and its stated error: bootstrap standard error and 95% interval."""

    value: float | None
    standard_error: float | None
    lower: float | None
    upper: float | None


@dataclass(frozen=True)
class PerformanceEstimate:
    threshold: float | None
    confusion: dict[str, float]
    """Expected true/false positives/negatives among all target rows when scores >= threshold are flagged."""
    metrics: dict[str, EstimatedMetric]


def _metric_values(counts: ScoreCounts, threshold: float | None) -> dict[str, float | None]:
    values = {}
    for name, metric in ESTIMATED_METRICS.items():
        if name in _THRESHOLD_FREE:
            values[name] = metric(counts).value
        else:
            values[name] = None if threshold is None else metric(counts, threshold).value
    return values


def estimate_performance(
    reference: ScoreCounts, target: ScoreCounts, threshold: float | None, replicates: int = 200, seed: int = 0
) -> PerformanceEstimate | None:
    """Expected confusion matrix and metrics of ``target`` once its unlabeled rows get labels.

    ``reference`` holds matured labels of the same version; ``target`` the rows to estimate for
    (labels it already has are used as they are). None when the reference lacks either class.
    """
    calibration = fit_calibration(reference)
    if calibration is None:
        return None
    expected = expected_counts(calibration, target)
    confusion = {}
    if threshold is not None:
        b = threshold_bin(threshold)
        tp, fp = float(expected.pos[b:].sum()), float(expected.neg[b:].sum())
        confusion = {"tp": tp, "fp": fp, "fn": expected.n_positive - tp, "tn": expected.n_negative - fp}
    point = _metric_values(expected, threshold)
    draws = _bootstrap(calibration, target, threshold, replicates, np.random.default_rng(seed))
    metrics = {}
    for name, value in point.items():
        sample = np.array([d[name] for d in draws if d[name] is not None])
        if value is None or sample.size < 2:
            metrics[name] = EstimatedMetric(value, None, None, None)
        else:
            lower, upper = np.percentile(sample, [2.5, 97.5])
            metrics[name] = EstimatedMetric(value, float(sample.std(ddof=1)), float(lower), float(upper))
    return PerformanceEstimate(threshold, confusion, metrics)


def _bootstrap(
    calibration: Calibration, target: ScoreCounts, threshold: float | None, replicates: int, rng: np.random.Generator
) -> list[dict[str, float | None]]:
    """Metric values when both the calibration map and the labels still to come are redrawn."""
    reference = calibration.reference
    labeled_cells = np.concatenate([reference.pos, reference.neg])
    total = int(round(labeled_cells.sum()))
    unlabeled = np.rint(target.unlabeled).astype(np.int64)
    draws = []
    for _ in range(replicates):
        positives_ref, negatives_ref = np.split(rng.multinomial(total, labeled_cells / total), 2)
        probability = _isotonic(positives_ref, negatives_ref)
        if probability is None:
            continue
        labeled = rng.binomial(unlabeled, calibration.coverage)
        positives = rng.binomial(labeled, probability)
        counts = ScoreCounts(target.positive + positives, target.negative + labeled - positives, unlabeled - labeled)
        draws.append(_metric_values(counts, threshold))
    return draws


def estimate_window(
    lake: Lake, model: ModelSpec, day: str | dt.date, window_days: int, reference_days: int | None = None
) -> dict[str, PerformanceEstimate | None]:
    """Per version: the expected metrics of the window ending on ``day`` once its labels mature.

    The reference is the ``reference_days`` (default: the window's length) ending on the last
    mature day (``day - maturity_days``); a version without matured labels there (a new
    release) gets None: its scores cannot be assumed to mean what an older version's did.
    """
    day = checked_day(day)
    mature_through = day - dt.timedelta(days=model.labels.maturity_days)
    reference_stats, _ = window_stats(lake, model, mature_through, reference_days or window_days)
    target_stats, _ = window_stats(lake, model, day, window_days)
    references = score_counts(reference_stats, "matured", pool_versions=False)
    targets = score_counts(target_stats, "matured", pool_versions=False)
    estimates = {}
    for (version, segment, _), target in sorted(targets.items(), key=lambda kv: str(kv[0])):
        if segment != ALL:
            continue
        reference = references.get((version, ALL, ALL))
        estimates[version] = None if reference is None else estimate_performance(reference, target, model.threshold(version))
    return estimates


def estimate_vs_realised(estimate: PerformanceEstimate, realised: dict[str, MetricValue]) -> pa.Table:
    """The estimate beside the value the labels gave once they matured, one row per metric."""
    rows = []
    for name, expected in estimate.metrics.items():
        actual = realised.get(name, MetricValue(None)).value
        error = None if actual is None or expected.value is None else expected.value - actual
        rows.append(
            {
                "metric": name,
                "estimated": expected.value,
                "standard_error": expected.standard_error,
                "lower": expected.lower,
                "upper": expected.upper,
                "realised": actual,
                "error": error,
                "within_interval": None if error is None or expected.lower is None else expected.lower <= actual <= expected.upper,
            }
        )
    return pa.Table.from_pylist(rows)
