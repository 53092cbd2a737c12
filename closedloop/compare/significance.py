"""Is a version's change real? One test per kind of metric, each answering with the same ``Difference``.

A comparison report prints many differences at once (AUC, rates, losses, latency); each comes with
its 95% interval and two-sided p-value, and ``adjust_p_values`` keeps the share of false alarms
among the reported ones near 5% (Benjamini-Hochberg). Paired tests are for shadow traffic, where
both versions scored the same requests: pairing removes the requests' own variation and detects
smaller changes. Degenerate input (no rows, one class only, no variance) gives NaN and a ``test``
that says why, so a report can print it instead of failing.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import binomtest, chi2, false_discovery_control, norm, rankdata, ttest_ind_from_stats, ttest_rel
from scipy.stats import t as student_t

from closedloop.evaluation.metrics import Z95, roc_auc_with_variance, wilson
from closedloop.evaluation.score_bins import ScoreCounts

NAN = math.nan
# Below this many discordant rows McNemar's normal approximation is poor; count them exactly.
EXACT_MCNEMAR_BELOW = 25


@dataclass(frozen=True)
class Difference:
    """candidate - baseline, with a 95% interval and a two-sided p-value."""

    baseline: float
    candidate: float
    difference: float
    lower: float
    upper: float
    p_value: float  # H0: no difference
    test: str  # plain words a report can print, e.g. "DeLong, paired"

    def significant(self, alpha: float = 0.05) -> bool:
        """Whether the change is unlikely under no change (never, when there is no p-value)."""
        return bool(self.p_value < alpha)

    def as_dict(self) -> dict[str, float | str | None]:
        """JSON-ready: NaN becomes None."""
        return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in asdict(self).items()}


def _undefined(test: str, why: str, baseline: float = NAN, candidate: float = NAN) -> Difference:
    return Difference(baseline, candidate, candidate - baseline, NAN, NAN, NAN, f"{test}: {why}")


def _normal(baseline: float, candidate: float, variance: float, test: str) -> Difference:
    """A difference whose estimate is approximately normal with a known variance (Wald interval, z-test)."""
    if not variance > 0:
        return _undefined(test, "no variance in the difference", baseline, candidate)
    difference, se = candidate - baseline, math.sqrt(variance)
    p_value = float(2 * norm.sf(abs(difference) / se))
    return Difference(baseline, candidate, difference, difference - Z95 * se, difference + Z95 * se, p_value, test)


def estimate_difference(baseline: float, se_baseline: float, candidate: float, se_candidate: float) -> Difference:
    """Two independent estimates with their standard errors (e.g. performance estimated before labels)."""
    return _normal(baseline, candidate, se_baseline**2 + se_candidate**2, "two estimates, normal approximation")


# Ranking quality


def _placements(positives: np.ndarray, negatives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's structural components, from midranks as in Sun & Xu (2014).

    For each positive, the share of negatives it outranks; for each negative, the share of
    positives that outrank it (ties count 1/2).
    """
    m, n = len(positives), len(negatives)
    ranks = rankdata(np.concatenate([positives, negatives]))
    beats = (ranks[:m] - rankdata(positives)) / n
    beaten_by = 1 - (ranks[m:] - rankdata(negatives)) / m
    return beats, beaten_by


def auc_difference_paired(scores_baseline: np.ndarray, scores_candidate: np.ndarray, labels: np.ndarray) -> Difference:
    """ROC AUC of two versions scored on the same labeled rows: DeLong et al. (1988), paired.

    The two AUCs are correlated (same positives, same negatives), so the variance of their
    difference comes from the per-row differences of the structural components.
    """
    test = "DeLong, paired"
    scores_baseline, scores_candidate = np.asarray(scores_baseline, float), np.asarray(scores_candidate, float)
    labels = np.asarray(labels).astype(bool)
    if not len(scores_baseline) == len(scores_candidate) == len(labels):
        raise ValueError("both versions' scores and the labels must describe the same rows")
    m, n = int(labels.sum()), int((~labels).sum())
    if m == 0 or n == 0:
        return _undefined(test, "needs both positives and negatives")
    beats_b, beaten_by_b = _placements(scores_baseline[labels], scores_baseline[~labels])
    beats_c, beaten_by_c = _placements(scores_candidate[labels], scores_candidate[~labels])
    baseline, candidate = float(beats_b.mean()), float(beats_c.mean())
    if m < 2 or n < 2:
        return _undefined(test, "needs at least two positives and two negatives", baseline, candidate)
    variance = np.var(beats_c - beats_b, ddof=1) / m + np.var(beaten_by_c - beaten_by_b, ddof=1) / n
    return _normal(baseline, candidate, float(variance), test)


def auc_difference_unpaired(baseline: ScoreCounts, candidate: ScoreCounts) -> Difference:
    """ROC AUC of two versions on different rows (e.g. a traffic split), from their binned counts.

    The samples are independent, so the difference's variance is the sum of each AUC's DeLong
    variance on the bins.
    """
    test = "DeLong, unpaired"
    estimate_b, estimate_c = roc_auc_with_variance(baseline), roc_auc_with_variance(candidate)
    if estimate_b is None or estimate_c is None:
        return _undefined(test, "each version needs both positives and negatives")
    (auc_b, var_b), (auc_c, var_c) = estimate_b, estimate_c
    if math.isnan(var_b) or math.isnan(var_c):
        return _undefined(test, "each version needs at least two positives and two negatives", auc_b, auc_c)
    return _normal(auc_b, auc_c, var_b + var_c, test)


# Rates


def _wilson(successes: float, trials: float) -> tuple[float, float, float]:
    """A rate and its Wilson interval, for trials > 0."""
    rate = wilson(successes, trials)
    assert rate.value is not None and rate.lower is not None and rate.upper is not None
    return rate.value, rate.lower, rate.upper


def proportion_difference(successes_b: float, n_b: float, successes_c: float, n_c: float) -> Difference:
    """Two rates on different rows (decision rate, precision, recall, error rate, ...).

    The p-value is the pooled two-proportion z-test; the interval is Newcombe's hybrid score
    interval (his method 10), built from each rate's Wilson interval: unlike the Wald interval it
    stays sensible for rates near 0 or 1, which is where decision and error rates live.
    """
    test = "two-proportion z, Newcombe interval"
    if n_b <= 0 or n_c <= 0:
        return _undefined(test, "each version needs at least one row")
    (rate_b, lower_b, upper_b), (rate_c, lower_c, upper_c) = _wilson(successes_b, n_b), _wilson(successes_c, n_c)
    difference = rate_c - rate_b
    lower = difference - math.hypot(rate_c - lower_c, upper_b - rate_b)
    upper = difference + math.hypot(upper_c - rate_c, rate_b - lower_b)
    pooled = (successes_b + successes_c) / (n_b + n_c)
    variance = pooled * (1 - pooled) * (1 / n_b + 1 / n_c)
    if variance > 0:
        p_value = float(2 * norm.sf(abs(difference) / math.sqrt(variance)))
    else:
        p_value, test = NAN, f"{test}: no p-value, both versions have only successes or only failures"
    return Difference(rate_b, rate_c, difference, lower, upper, p_value, test)


def paired_proportion_difference(baseline: np.ndarray, candidate: np.ndarray) -> Difference:
    """Two rates on the same rows, e.g. each version's decision on shadow traffic: McNemar's test.

    Only rows the versions decide differently carry information. Under few of them (fewer than
    ``EXACT_MCNEMAR_BELOW``) the p-value is the exact binomial test on them, otherwise the
    chi-square test; the interval is the Wald interval of the paired difference.
    """
    baseline, candidate = np.asarray(baseline).astype(bool), np.asarray(candidate).astype(bool)
    if len(baseline) != len(candidate):
        raise ValueError("both versions' outcomes must describe the same rows")
    n = len(baseline)
    if n == 0:
        return _undefined("McNemar", "no rows")
    rate_b, rate_c = float(baseline.mean()), float(candidate.mean())
    only_baseline, only_candidate = int((baseline & ~candidate).sum()), int((~baseline & candidate).sum())
    discordant = only_baseline + only_candidate
    if discordant == 0:
        return _undefined("McNemar", "the versions agree on every row", rate_b, rate_c)
    imbalance = only_candidate - only_baseline
    if discordant < EXACT_MCNEMAR_BELOW:
        test, p_value = "McNemar, exact binomial; Wald interval", binomtest(only_candidate, discordant).pvalue
    else:
        test, p_value = "McNemar, chi-square; Wald interval", chi2.sf(imbalance**2 / discordant, 1)
    difference = imbalance / n
    half = Z95 * math.sqrt(max(discordant / n - difference**2, 0.0) / n)
    return Difference(rate_b, rate_c, difference, difference - half, difference + half, float(p_value), test)


# Means


def mean_difference(mean_b: float, var_b: float, n_b: float, mean_c: float, var_c: float, n_c: float) -> Difference:
    """Two means on different rows from summary statistics (Brier, log loss, latency, cost): Welch's t-test.

    ``var_b`` and ``var_c`` are sample variances (ddof 1); the versions need not share one.
    """
    test = "Welch"
    if n_b < 2 or n_c < 2:
        return _undefined(test, "each version needs at least two rows", mean_b, mean_c)
    share_b, share_c = var_b / n_b, var_c / n_c
    variance = share_b + share_c
    if not variance > 0:
        return _undefined(test, "no variance in the difference", mean_b, mean_c)
    degrees = variance**2 / (share_b**2 / (n_b - 1) + share_c**2 / (n_c - 1))  # Welch-Satterthwaite
    p_value = ttest_ind_from_stats(mean_c, math.sqrt(var_c), n_c, mean_b, math.sqrt(var_b), n_b, equal_var=False).pvalue
    difference, half = mean_c - mean_b, float(student_t.ppf(0.975, degrees)) * math.sqrt(variance)
    return Difference(mean_b, mean_c, difference, difference - half, difference + half, float(p_value), test)


def paired_mean_difference(x_b: np.ndarray, x_c: np.ndarray) -> Difference:
    """Two means on the same rows (e.g. each request's Brier loss under both versions): paired t-test."""
    test = "paired t"
    x_b, x_c = np.asarray(x_b, float), np.asarray(x_c, float)
    if len(x_b) != len(x_c):
        raise ValueError("both versions' values must describe the same rows")
    if len(x_b) < 2:
        only_row = (float(x_b[0]), float(x_c[0])) if len(x_b) else (NAN, NAN)
        return _undefined(test, "needs at least two rows", *only_row)
    baseline, candidate = float(x_b.mean()), float(x_c.mean())
    if np.ptp(x_c - x_b) == 0:
        return _undefined(test, "no variance in the per-row differences", baseline, candidate)
    result = ttest_rel(x_c, x_b)
    interval = result.confidence_interval(0.95)
    return Difference(
        baseline, candidate, candidate - baseline, float(interval.low), float(interval.high), float(result.pvalue), test
    )


# Many differences at once


def adjust_p_values(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values, so a report's significant rows hold about 5% false alarms.

    NaN (no test) stays NaN and does not count among the tests.
    """
    p_values = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p_values, NAN)
    tested = ~np.isnan(p_values)
    if tested.any():
        adjusted[tested] = false_discovery_control(p_values[tested])
    return adjusted
