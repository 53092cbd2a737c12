"""Quality, calibration and threshold metrics computed from binned score counts (``evaluation.score_bins``).

Every metric here is one function of a ``ScoreCounts``; each returns a ``MetricValue`` with its
95% interval where one is defined (Wilson for rates, DeLong for ROC AUC) and a bound on how far
binning can move it from the same metric computed by scikit-learn on the raw rows:

- ROC AUC: 0.5 x (share of positive/negative pairs that share a bin); only same-bin pairs are
  treated as ties. On simulated windows (fraud v11; fraud v12 under its calibration shift, which
  puts nearly all scores below 0.01; ticket triage) the bound is 5e-4 to 2.4e-3 and the actual
  gap to sklearn 1e-6 to 1.2e-4, well within 0.002 (on the former 1/1000 bins v12 was 0.018 off).
  Scores squeezed into [0, 0.01] or [0.99, 1] keep a bound of about 1.3e-3 (gap 3e-6); only
  scores piled into a handful of bins (e.g. rounded to 2 decimals) make the bound large, and
  then it says so.
- PR AUC (average precision): sum over bins of (positives in the bin / positives) x
  (labeled rows in the bin - 1) / (labeled rows at or above the bin).
- precision, recall, F1 and the shares above/below a threshold: exact at thresholds on an edge
  (any multiple of 0.001, like the registry's 0.5); otherwise the rows of the one bin that
  straddles the threshold bound the error (and precision is None when only that bin's rows
  could pass the threshold).
- precision@K: the rows of the bin that straddles the K-th row (ties are split pro rata).
- Brier score and log loss use bin midpoints: Brier is within 0.001 (the widest bin; the stated
  bound is data-dependent, 1e-5 to 2e-4 on simulated windows); log loss within the mean of
  log(midpoint/edge) over the labeled rows, which is large only for positives scored below 1e-7
  (or negatives above 1 - 1e-7), where sklearn clips to machine epsilon.
- ECE and MCE: within 0.0005 (half the widest bin: bin midpoints stand in for each bin's mean
  score); calibration bins are [lo, hi) here and (lo, hi] in sklearn's ``calibration_curve``, so
  only scores lying exactly on a calibration-bin edge are grouped differently.

Metrics that need labels are None (not an error) when the population has none of a class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from closedloop.core.metric import Metric
from closedloop.evaluation.score_bins import BINS, EDGES, HALF_WIDTHS, MIDPOINTS, ScoreCounts, coarsen

if TYPE_CHECKING:
    import pandas as pd

CALIBRATION_BINS = 10
# scipy.stats.norm.ppf(0.975), written out: importing scipy would cost every CLI command 1-2 s.
Z95 = 1.959963984540054
_EPS = float(np.finfo(np.float64).eps)  # sklearn's log_loss clips probabilities to [eps, 1 - eps]


@dataclass(frozen=True)
class MetricValue:
    """A metric's value, its 95% interval, and the most binning can have moved it (None: unknown)."""

    value: float | None
    lower: float | None = None
    upper: float | None = None
    binning_error: float | None = None


NOTHING = MetricValue(None)


def wilson(successes: float, trials: float) -> MetricValue:
    """A rate with its Wilson score interval (good at rates near 0 or 1 and for small counts).

    Written out rather than scipy's ``binomtest(...).proportion_ci``: that needs integer counts,
    and expected counts are fractional (the tests check both agree).
    """
    if trials <= 0:
        return NOTHING
    rate = successes / trials
    z2 = Z95**2
    centre = (successes + z2 / 2) / (trials + z2)
    half = Z95 / (trials + z2) * math.sqrt(max(successes * (trials - successes) / trials, 0.0) + z2 / 4)
    # At 0 or 1 the bound equals the rate up to rounding (e.g. 0 of 3 gave lower 5.6e-17 > 0): keep the rate inside.
    return MetricValue(rate, max(0.0, min(rate, centre - half)), min(1.0, max(rate, centre + half)), 0.0)


def threshold_bin(threshold: float) -> int:
    """The first bin counted as "at or above" ``threshold``: the first b with EDGES[b] >= threshold (BINS: none)."""
    return min(int(np.searchsorted(EDGES, threshold, side="left")), BINS)


def _straddled(threshold: float) -> int | None:
    """The bin that holds rows on both sides of ``threshold``, or None when it lies on the grid."""
    b = threshold_bin(threshold)
    if b == 0 or threshold > 1 or (b < BINS and EDGES[b] == threshold):
        return None
    return b - 1  # includes threshold 1.0: the last bin is closed, so a score of exactly 1.0 sits in it


# Counts and rates


def coverage(c: ScoreCounts) -> MetricValue:
    """Share of rows with a label in the evaluated set: low coverage makes every quality metric fragile."""
    return wilson(c.n_labeled, c.n)


def positive_rate(c: ScoreCounts) -> MetricValue:
    """Share of labeled rows that are positive (observed prevalence)."""
    return wilson(c.n_positive, c.n_labeled)


def decision_rate(c: ScoreCounts) -> MetricValue:
    """Share of rows the service acted on (decision 1): what operations staff for."""
    return wilson(c.n_decided, c.n)


def above_threshold(c: ScoreCounts, threshold: float) -> MetricValue:
    """Share of rows scored at or above ``threshold`` (differs from the decision rate when a fallback decides)."""
    rows = c.rows
    result = wilson(float(rows[threshold_bin(threshold) :].sum()), c.n)
    straddled = _straddled(threshold)
    if result.value is None or straddled is None:
        return result
    return MetricValue(result.value, result.lower, result.upper, float(rows[straddled]) / c.n)


def below_threshold(c: ScoreCounts, threshold: float) -> MetricValue:
    """Share of rows scored below ``threshold``."""
    above = above_threshold(c, threshold)
    if above.value is None:
        return above
    lower = None if above.upper is None else 1.0 - above.upper
    upper = None if above.lower is None else 1.0 - above.lower
    return MetricValue(1.0 - above.value, lower, upper, above.binning_error)


# Ranking quality


def roc_auc_with_variance(c: ScoreCounts) -> tuple[float, float] | None:
    """ROC AUC and its DeLong variance on the bins, so two versions' AUCs can be compared.

    The variance is NaN with fewer than two positives or negatives; None without both classes.
    """
    p, q = c.pos, c.neg
    n_pos, n_neg = p.sum(), q.sum()
    if n_pos == 0 or n_neg == 0:
        return None
    negatives_below = np.cumsum(q) - q
    positives_above = n_pos - np.cumsum(p)
    placement_pos = (negatives_below + q / 2) / n_neg  # for each positive: share of negatives it beats
    placement_neg = (positives_above + p / 2) / n_pos  # for each negative: share of positives beating it
    auc = float((p * placement_pos).sum() / n_pos)
    if n_pos < 2 or n_neg < 2:
        return auc, math.nan
    variance = (p * (placement_pos - auc) ** 2).sum() / (n_pos - 1) / n_pos + (q * (placement_neg - auc) ** 2).sum() / (
        n_neg - 1
    ) / n_neg
    return auc, max(float(variance), 0.0)


def roc_auc(c: ScoreCounts) -> MetricValue:
    """Probability that a positive outranks a negative, with a DeLong interval computed on the bins."""
    estimate = roc_auc_with_variance(c)
    if estimate is None:
        return NOTHING
    auc, variance = estimate
    p, q = c.pos, c.neg
    bound = float(0.5 * (p * q).sum() / (p.sum() * q.sum()))
    if math.isnan(variance):
        return MetricValue(auc, binning_error=bound)
    half = Z95 * math.sqrt(variance)
    return MetricValue(auc, max(0.0, auc - half), min(1.0, auc + half), bound)


def pr_auc(c: ScoreCounts) -> MetricValue:
    """Average precision (sklearn's step-wise PR AUC): ranking quality that weighs the rare positives."""
    p, q = c.pos[::-1], c.neg[::-1]
    n_pos = p.sum()
    if n_pos == 0:
        return NOTHING
    flagged = np.cumsum(p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(flagged > 0, np.cumsum(p) / flagged, 0.0)
        slack = np.where(flagged > 0, np.maximum(p + q - 1, 0) / flagged, 0.0)
    return MetricValue(float((p * precision).sum() / n_pos), binning_error=float((p * slack).sum() / n_pos))


# Threshold metrics


def _confusion(c: ScoreCounts, threshold: float) -> tuple[float, float, float]:
    """True positives, false positives and false negatives when scores >= ``threshold`` are flagged."""
    b = threshold_bin(threshold)
    tp, fp = float(c.pos[b:].sum()), float(c.neg[b:].sum())
    return tp, fp, c.n_positive - tp


def precision(c: ScoreCounts, threshold: float) -> MetricValue:
    """Share of flagged labeled rows that are positive."""
    tp, fp, _ = _confusion(c, threshold)
    result = wilson(tp, tp + fp)
    straddled = _straddled(threshold)
    if result.value is None or straddled is None:
        return result
    extra = float(c.pos[straddled] + c.neg[straddled])
    return MetricValue(result.value, result.lower, result.upper, extra / (tp + fp + extra))


def recall(c: ScoreCounts, threshold: float) -> MetricValue:
    """Share of positives that are flagged."""
    tp, _, fn = _confusion(c, threshold)
    result = wilson(tp, tp + fn)
    straddled = _straddled(threshold)
    if result.value is None or straddled is None:
        return result
    return MetricValue(result.value, result.lower, result.upper, float(c.pos[straddled]) / (tp + fn))


def f1(c: ScoreCounts, threshold: float) -> MetricValue:
    """Harmonic mean of precision and recall (None when there is neither a positive nor a flagged row)."""
    tp, fp, fn = _confusion(c, threshold)
    denominator = 2 * tp + fp + fn
    if denominator == 0:
        return NOTHING
    straddled = _straddled(threshold)
    bound = 0.0
    if straddled is not None:
        extra = float(c.pos[straddled] + c.neg[straddled])
        bound = 2 * extra / (denominator + extra)
    return MetricValue(2 * tp / denominator, binning_error=bound)


def precision_at_k(c: ScoreCounts, k: int) -> MetricValue:
    """Share of positives among the ``k`` highest-scored labeled rows (a reviewer queue of size k)."""
    p, q = c.pos[::-1], c.neg[::-1]
    labeled = p + q
    if k < 1 or labeled.sum() < k:
        return NOTHING
    reached = np.cumsum(labeled)
    cut = int(np.searchsorted(reached, k - 1e-9))  # first bin where the k-th row falls
    taken = k - (reached[cut] - labeled[cut])
    share = taken * p[cut] / labeled[cut]
    positives = p[:cut].sum() + share
    fewest, most = max(0.0, taken - q[cut]), min(taken, p[cut])
    result = wilson(float(positives), float(k))
    return MetricValue(result.value, result.lower, result.upper, float(max(share - fewest, most - share) / k))


# Probability quality


def brier(c: ScoreCounts) -> MetricValue:
    """Mean squared gap between score and label (lower is better), from bin midpoints."""
    p, q = c.pos, c.neg
    n = p.sum() + q.sum()
    if n == 0:
        return NOTHING
    value = float((p * (1 - MIDPOINTS) ** 2 + q * MIDPOINTS**2).sum() / n)
    # |s - midpoint| <= half a bin, times |2 - s - midpoint| (positives) or s + midpoint (negatives)
    half, lo, hi = HALF_WIDTHS, EDGES[:-1], EDGES[1:]
    bound = float((half * (p * (2 - 2 * lo - half) + q * (2 * hi - half))).sum() / n)
    return MetricValue(value, binning_error=bound)


def log_loss(c: ScoreCounts) -> MetricValue:
    """Mean negative log-likelihood of the labels under the scores (lower is better), from bin midpoints."""
    p, q = c.pos, c.neg
    n = p.sum() + q.sum()
    if n == 0:
        return NOTHING
    value = float(-(p * np.log(MIDPOINTS) + q * np.log1p(-MIDPOINTS)).sum() / n)
    lo, hi = EDGES[:-1], EDGES[1:]
    gap_pos = np.log(MIDPOINTS / np.maximum(lo, _EPS))
    gap_neg = np.log((1 - MIDPOINTS) / np.maximum(1 - hi, _EPS))
    return MetricValue(value, binning_error=float((p * gap_pos + q * gap_neg).sum() / n))


def _reliability(c: ScoreCounts, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Index, labeled rows, mean score and positives of every non-empty calibration bin."""
    labeled = c.pos + c.neg
    n = coarsen(labeled, n_bins)
    used = np.flatnonzero(n > 0)
    mean_score = coarsen(labeled * MIDPOINTS, n_bins)[used] / n[used]
    return used, n[used], mean_score, coarsen(c.pos, n_bins)[used]


def reliability_curve(c: ScoreCounts, n_bins: int = CALIBRATION_BINS) -> pd.DataFrame:
    """Mean score against observed positive share on ``n_bins`` equal-width bins (empty bins dropped).

    The ``lower``/``upper`` columns are the Wilson interval of the observed share. pandas is
    imported here, for the figures and comparisons, so that the metrics themselves do not need it.
    """
    import pandas as pd

    used, n, mean_score, positives = _reliability(c, n_bins)
    intervals = [wilson(float(k), float(m)) for k, m in zip(positives, n, strict=True)]
    return pd.DataFrame(
        {
            "bin_lower": used / n_bins,
            "bin_upper": (used + 1) / n_bins,
            "n": n,
            "mean_score": mean_score,
            "positive_share": positives / n,
            "lower": [i.lower for i in intervals],
            "upper": [i.upper for i in intervals],
        }
    )


def _calibration_gaps(c: ScoreCounts, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    _, n, mean_score, positives = _reliability(c, n_bins)
    return np.abs(mean_score - positives / n), n


def ece(c: ScoreCounts, n_bins: int = CALIBRATION_BINS) -> MetricValue:
    """Expected calibration error: mean |score - observed positive share|, weighted by rows per bin."""
    gaps, n = _calibration_gaps(c, n_bins)
    if n.sum() == 0:
        return NOTHING
    return MetricValue(float((gaps * n).sum() / n.sum()), binning_error=float(HALF_WIDTHS.max()))


def mce(c: ScoreCounts, n_bins: int = CALIBRATION_BINS) -> MetricValue:
    """Maximum calibration error: the worst bin's |score - observed positive share|."""
    gaps, n = _calibration_gaps(c, n_bins)
    if n.sum() == 0:
        return NOTHING
    return MetricValue(float(gaps.max()), binning_error=float(HALF_WIDTHS.max()))


def brier_decomposition(c: ScoreCounts, n_bins: int = CALIBRATION_BINS) -> dict[str, MetricValue]:
    """Murphy's decomposition, Brier ~ reliability - resolution + uncertainty, on ``n_bins`` calibration bins.

    Reliability (lower is better) is the calibration part; resolution (higher is better) is how far
    the bins' positive shares spread from the base rate, the part a recalibration cannot add.
    """
    _, n, mean_score, positives = _reliability(c, n_bins)
    total = n.sum()
    if total == 0:
        return dict.fromkeys(("reliability", "resolution", "uncertainty"), NOTHING)
    observed = positives / n
    base_rate = positives.sum() / total
    return {
        "reliability": MetricValue(float((n * (mean_score - observed) ** 2).sum() / total)),
        "resolution": MetricValue(float((n * (observed - base_rate) ** 2).sum() / total)),
        "uncertainty": MetricValue(float(base_rate * (1 - base_rate))),
    }


# Threshold choice


def threshold_curve(c: ScoreCounts) -> pd.DataFrame:
    """Share above, precision, recall and F1 at every threshold on the bin grid (for choosing one)."""
    import pandas as pd

    above = np.cumsum(c.rows[::-1])[::-1]
    tp = np.cumsum(c.pos[::-1])[::-1]
    fp = np.cumsum(c.neg[::-1])[::-1]
    n_pos = c.n_positive
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.DataFrame(
            {
                "threshold": EDGES[:-1],
                "above": above / c.n if c.n else np.nan,
                "precision": np.where(tp + fp > 0, tp / (tp + fp), np.nan),
                "recall": tp / n_pos if n_pos else np.nan,
                "f1": np.where(n_pos + tp + fp > 0, 2 * tp / (n_pos + tp + fp), np.nan),
            }
        )


def threshold_for_rate(c: ScoreCounts, rate: float) -> float | None:
    """The lowest grid threshold whose share of rows at or above it does not exceed ``rate``.

    This is the threshold that keeps an approved decision (review) rate on this population.
    1.0 when even the top bin holds more than ``rate`` (then only scores of exactly 1.0 would
    be flagged, which bins cannot tell apart); None when the population is empty.
    """
    if c.n == 0:
        return None
    above = np.cumsum(c.rows[::-1])[::-1] / c.n
    allowed = np.flatnonzero(above <= rate + 1e-12)
    return float(EDGES[allowed[0]]) if allowed.size else 1.0


# Everything at once


# What ``evaluate`` reports for every population, as the metric catalog knows it.
WINDOW_METRICS = (
    Metric("n", "rows", "neither", description="Predictions in the window."),
    Metric("n_labeled", "rows", "higher", needs_labels=True, description="Predictions whose label has arrived."),
    Metric("n_positive", "rows", "neither", needs_labels=True, description="Labeled predictions that were positive."),
    Metric("coverage", "share", "higher", needs_labels=True, description="Share of predictions with a label."),
    Metric(
        "positive_rate",
        "share",
        "neither",
        needs_labels=True,
        description="Share of labeled predictions that were positive.",
    ),
    Metric("decision_rate", "share", "neither", description="Share of predictions decided positive."),
    Metric("above_threshold", "share", "neither", description="Share of scores at or above the version's threshold."),
    Metric("below_threshold", "share", "neither", description="Share of scores below the version's threshold."),
    Metric("roc_auc", "auc", "higher", needs_labels=True, description="Area under the ROC curve."),
    Metric("pr_auc", "auc", "higher", needs_labels=True, description="Area under the precision-recall curve."),
    Metric("precision", "share", "higher", needs_labels=True, description="Precision at the version's threshold."),
    Metric("recall", "share", "higher", needs_labels=True, description="Recall at the version's threshold."),
    Metric("f1", "share", "higher", needs_labels=True, description="F1 at the version's threshold."),
    Metric("brier", "score", "lower", needs_labels=True, description="Brier score (binned)."),
    Metric("log_loss", "nats", "lower", needs_labels=True, description="Log loss (binned)."),
    Metric("ece", "share", "lower", needs_labels=True, description="Expected calibration error."),
    Metric("mce", "share", "lower", needs_labels=True, description="Maximum calibration error."),
)


def precision_at_k_metric(k: int) -> Metric:
    """Precision among the K top-scored predictions (a review queue of K)."""
    return Metric(
        f"precision_at_{k}", "share", "higher", needs_labels=True, description=f"Precision of the {k} top scores."
    )


def evaluate(c: ScoreCounts, threshold: float | None, ks: tuple[int, ...] = ()) -> dict[str, MetricValue]:
    """Every metric of one population: counts, rates, quality and calibration.

    Threshold metrics are None when ``threshold`` is None (e.g. versions with different
    thresholds pooled together).
    """

    def at(metric) -> MetricValue:
        return NOTHING if threshold is None else metric(c, threshold)

    values = {
        "n": MetricValue(c.n),
        "n_labeled": MetricValue(c.n_labeled),
        "n_positive": MetricValue(c.n_positive),
        "coverage": coverage(c),
        "positive_rate": positive_rate(c),
        "decision_rate": decision_rate(c),
        "above_threshold": at(above_threshold),
        "below_threshold": at(below_threshold),
        "roc_auc": roc_auc(c),
        "pr_auc": pr_auc(c),
        "precision": at(precision),
        "recall": at(recall),
        "f1": at(f1),
        "brier": brier(c),
        "log_loss": log_loss(c),
        "ece": ece(c),
        "mce": mce(c),
    }
    values.update({precision_at_k_metric(k).name: precision_at_k(c, k) for k in ks})
    return values
