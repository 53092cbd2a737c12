"""Performance estimation before labels arrive (confidence-based, as NannyML's CBPE).

Fraud labels take up to 45 days: without an estimate, the last six weeks of a model's quality
are unknown. If a version's scores, once calibrated on a matured reference period, still mean
what they meant there, each unlabeled row is a positive with its calibrated probability, so the
confusion matrix and the metrics the window will show once its labels mature can be expected
now. The calibration map is fitted with scikit-learn's isotonic regression on the reference's
binned matured labels. The stated error is a parametric bootstrap of both uncertainties: the
map (reference labels resampled, the map refitted) and the labels still to come (each unlabeled
row labeled with the reference's label coverage, positive with its calibrated probability).

Where the reference has few labels, above all in the top score bins where fraud's positives
are, isotonic regression overfits (its running maximum there is biased upward), so estimated
ROC AUC, precision and recall came out high: by about half a standard error with a few hundred
reference positives (simulated scores, logistic or bent calibration curves). The refitted maps
overfit the same way, so the bootstrap measures that bias; estimates are corrected by it, which
halves it, and intervals are basic bootstrap intervals around the corrected value. A reference
with fewer than ``MIN_REFERENCE_LABELS`` of either class gets no estimate: there the 95%
interval missed the realised value up to a quarter of the time. Reference days are not
resampled as units: simulated days vary no more than their rows do (daily ROC AUCs spread 0.9
to 1.15 times their DeLong error), so rows are the honest unit.

It does not cover a broken assumption: under concept drift or a calibration shift the estimate
is biased, which is what comparing it with the realised value (``estimate_vs_realised``) shows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from sklearn.isotonic import IsotonicRegression

from closedloop.core.lake import Lake
from closedloop.core.names import ALL, checked_day
from closedloop.core.specs import ModelSpec
from closedloop.evaluation.eval_stats import score_counts
from closedloop.evaluation.metrics import MetricValue, f1, positive_rate, precision, recall, roc_auc, threshold_bin
from closedloop.evaluation.rolling_eval import window_stats
from closedloop.evaluation.score_bins import MIDPOINTS, ScoreCounts

ESTIMATED_METRICS: dict[str, Callable[..., MetricValue]] = {
    "roc_auc": roc_auc,
    "precision": precision,
    "recall": recall,
    "f1": f1,
    "positive_rate": positive_rate,
}
_THRESHOLD_FREE = {"roc_auc", "positive_rate"}
MIN_REFERENCE_LABELS = 300
"""Matured labels of each class a reference needs before its calibration map is trusted."""
MIN_REFERENCE_DAYS = 7
"""Days with matured statistics a reference needs: a whole week, so a map fitted on weekdays alone does
not estimate a window with a weekend whose traffic, and labels, run differently."""


@dataclass(frozen=True)
class Calibration:
    """Probability of a positive per score bin (non-decreasing in the score), from matured labels."""

    probability: np.ndarray
    coverage: float
    reference: ScoreCounts


def fit_calibration(reference: ScoreCounts) -> Calibration | None:
    """Isotonic map from score to positive rate on ``reference``'s labels; None with too few of a class."""
    if min(reference.n_positive, reference.n_negative) < MIN_REFERENCE_LABELS:
        return None
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
    """An expected metric (corrected for the calibration map's bias) and its stated error: bootstrap standard
    error and 95% interval."""

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


def _confusion(expected: ScoreCounts, threshold: float | None) -> dict[str, float]:
    if threshold is None:
        return {}
    b = threshold_bin(threshold)
    tp, fp = float(expected.pos[b:].sum()), float(expected.neg[b:].sum())
    return {"tp": tp, "fp": fp, "fn": expected.n_positive - tp, "tn": expected.n_negative - fp}


def estimate_performance(
    reference: ScoreCounts, target: ScoreCounts, threshold: float | None, replicates: int = 200, seed: int = 0
) -> PerformanceEstimate | None:
    """Expected confusion matrix and metrics of ``target`` once its unlabeled rows get labels.

    ``reference`` holds matured labels of the same version; ``target`` the rows to estimate for
    (labels it already has are used as they are). None when the reference has fewer than
    ``MIN_REFERENCE_LABELS`` of either class. Metrics and confusion counts are corrected by the
    bias of the calibration map: the mean offset of the estimates the bootstrap's refitted maps
    give from the estimate the reference's own map gives.
    """
    calibration = fit_calibration(reference)
    if calibration is None:
        return None
    expected = expected_counts(calibration, target)
    point = _metric_values(expected, threshold)
    refitted, refitted_confusion, realised = [], [], []
    for refit, draw in _bootstrap(calibration, target, replicates, np.random.default_rng(seed)):
        refitted.append(_metric_values(refit, threshold))
        refitted_confusion.append(_confusion(refit, threshold))
        realised.append(_metric_values(draw, threshold))
    metrics = {}
    for name, value in point.items():
        sample = np.array([d[name] for d in realised if d[name] is not None])
        if value is None or sample.size < 2:
            metrics[name] = EstimatedMetric(value, None, None, None)
            continue
        refitted_mean = float(np.mean([d[name] for d in refitted if d[name] is not None]))
        corrected = float(np.clip(2 * value - refitted_mean, 0.0, 1.0))
        # basic bootstrap interval: the draws' percentiles mirrored around the estimate, so it moves with the correction
        upper, lower = (float(np.clip(2 * value - q, 0.0, 1.0)) for q in np.percentile(sample, [2.5, 97.5]))
        metrics[name] = EstimatedMetric(
            corrected, float(sample.std(ddof=1)), min(lower, corrected), max(upper, corrected)
        )
    confusion = {
        cell: 2 * count - float(np.mean([c[cell] for c in refitted_confusion]))
        for cell, count in _confusion(expected, threshold).items()
    }
    return PerformanceEstimate(threshold, confusion, metrics)


def _bootstrap(
    calibration: Calibration, target: ScoreCounts, replicates: int, rng: np.random.Generator
) -> Iterator[tuple[ScoreCounts, ScoreCounts]]:
    """Per redrawn calibration map (reference labels resampled, map refitted): the target's expected
    counts under it (the estimate that reference would have given), and one draw of the labels
    still to come (a value the window may realise)."""
    reference = calibration.reference
    labeled_cells = np.concatenate([reference.pos, reference.neg])
    total = int(round(labeled_cells.sum()))
    unlabeled = np.rint(target.unlabeled).astype(np.int64)
    for _ in range(replicates):
        positives_ref, negatives_ref = np.split(rng.multinomial(total, labeled_cells / total), 2)
        probability = _isotonic(positives_ref, negatives_ref)
        if probability is None:
            continue
        refit = expected_counts(Calibration(probability, calibration.coverage, reference), target)
        labeled = rng.binomial(unlabeled, calibration.coverage)
        positives = rng.binomial(labeled, probability)
        yield (
            refit,
            ScoreCounts(target.positive + positives, target.negative + labeled - positives, unlabeled - labeled),
        )


def estimate_window(
    lake: Lake, model: ModelSpec, day: str | dt.date, window_days: int, reference_days: int | None = None
) -> dict[str, PerformanceEstimate | None]:
    """Per version: the expected metrics of the window ending on ``day`` once its labels mature.

    The reference is the ``reference_days`` (default: the window's length) ending on the last
    mature day (``day - maturity_days``); a version without matured labels there (a new
    release) gets None: its scores cannot be assumed to mean what an older version's did. So does
    every version while the reference has fewer than ``MIN_REFERENCE_DAYS`` days (a model's first week).
    """
    day = checked_day(day)
    mature_through = day - dt.timedelta(days=model.labels.maturity_days)
    reference_stats, reference_days_with_stats = window_stats(
        lake, model, mature_through, reference_days or window_days
    )
    target_stats, _ = window_stats(lake, model, day, window_days)
    references = score_counts(reference_stats, "matured", pool_versions=False)
    targets = score_counts(target_stats, "matured", pool_versions=False)
    if reference_days_with_stats < MIN_REFERENCE_DAYS:
        references = {}
    estimates = {}
    for (version, segment, _), target in sorted(targets.items(), key=lambda kv: str(kv[0])):
        if segment != ALL:
            continue
        reference = references.get((version, ALL, ALL))
        estimates[version] = (
            None if reference is None else estimate_performance(reference, target, model.threshold(version))
        )
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
                "within_interval": None
                if actual is None or expected.lower is None or expected.upper is None
                else expected.lower <= actual <= expected.upper,
            }
        )
    return pa.Table.from_pylist(rows)
