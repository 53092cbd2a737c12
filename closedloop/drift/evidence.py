"""Evidence behind a drift figure: is the change bigger than sampling noise, across all the day's tests?

A drift figure past its limit says the change is large; it does not say the data shows it. A day
judges dozens of columns x metrics per version, so some figures cross their limits by chance
alone, the more so on small days. Each figure gets the p-value of a test on the mergeable counts
behind it (a chi-square test of homogeneity of the buckets, or of the missing or unseen share
against the rest; the baseline's own unseen share is its Good-Turing novelty, below), and the
day's p-values of one version and window are adjusted together with Benjamini-Hochberg: a figure
alerts only when it is past its limit *and* its adjusted p-value (``q_value``) is at most the
model's ``drift.false_alert_rate``, the share of false alerts among the day's alerts the owner
accepts.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import chi2_contingency, false_discovery_control, fisher_exact

from closedloop.drift.measures import Comparison, seen_once


def _homogeneity(current: np.ndarray, reference: np.ndarray) -> float | None:
    """Chi-square test that two rows of counts come from one distribution; None without two classes."""
    table = np.vstack([current, reference]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return None
    return float(chi2_contingency(table, correction=False).pvalue)


def bucket_p_value(c: Comparison) -> float | None:
    """Did the distribution over the baseline's buckets change?"""
    return _homogeneity(c.current.counts, c.reference.counts)


def _split(part: int, whole: int) -> np.ndarray:
    return np.array([part, whole - part])


def missing_p_value(c: Comparison) -> float | None:
    """Did the share of missing values change?"""
    return _homogeneity(_split(c.current.nulls, c.current.rows), _split(c.reference.nulls, c.reference.rows))


def unseen_p_value(c: Comparison) -> float | None:
    """Is the share of values the baseline never saw larger than the baseline's own novelty?

    Every value of the baseline is seen by definition, yet a clean day of a long-tailed column (ids)
    brings values the baseline missed, the more the smaller the baseline. The baseline's novelty is
    the share of its rows whose value it holds only once (Good-Turing: had that row been left out,
    its value would have been new), so a three-day baseline of ids, which leaves a fifth of a clean
    day unseen, is not taken for one that leaves 4% unseen.
    """
    counts = c.categorical.counts
    return _homogeneity(_split(c.current.unseen, c.current.count), _split(seen_once(counts), int(counts.sum())))


def decision_p_value(c: Comparison) -> float | None:
    """Did the share of positive decisions change? Fisher's exact test on decided and not decided: a
    version deciding 0.1% of 2,000 requests makes two decisions a day, too few for the chi-square,
    and the decision's baseline bins need not keep 0 and 1 apart."""
    decided = (round(c.current.sum), round(c.reference.sum))
    if not (c.current.count and c.reference.count) or decided == (0, 0):
        return None
    table = [[decided[0], c.current.count - decided[0]], [decided[1], c.reference.count - decided[1]]]
    return float(fisher_exact(table).pvalue)


# The test behind each drift figure; a figure without one (the domain classifier's AUC) is judged by its limit alone.
EVIDENCE: dict[str, Callable[[Comparison], float | None]] = {
    "missing_rate_delta": missing_p_value,
    "new_category_share": unseen_p_value,
    **dict.fromkeys(
        (
            "mean_shift", "std_shift", "psi", "js_distance", "wasserstein", "ks", "cardinality_ratio",
            "share_above_threshold", "share_above_threshold_delta",
        ),
        bucket_p_value,
    ),
    "decision_rate": decision_p_value,
    "decision_rate_ratio": decision_p_value,
}  # fmt: skip


def q_values(p_values: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values of one family of tests (scipy's ``false_discovery_control``)."""
    if not p_values:
        return []
    return [float(q) for q in false_discovery_control(np.asarray(p_values), method="bh")]
