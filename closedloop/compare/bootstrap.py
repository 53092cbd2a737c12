"""Intervals for the metrics with no closed-form variance (PR AUC, F1, ECE, precision@K, ...).

Each cell of the score-bin counts is redrawn as a Poisson count of its own size (the Poisson
bootstrap: the same as resampling rows, without the rows), the metric is recomputed on both
versions, and the difference's percentile interval and two-sided p-value are read off the draws.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from closedloop.compare.significance import Difference
from closedloop.evaluation.score_bins import ScoreCounts

DRAWS = 400
Statistic = Callable[[ScoreCounts], float | None]


def _redrawn(rng: np.random.Generator, c: ScoreCounts) -> ScoreCounts:
    return ScoreCounts(rng.poisson(c.positive), rng.poisson(c.negative), rng.poisson(c.unlabeled))


def bootstrap_difference(
    baseline: ScoreCounts,
    candidate: ScoreCounts,
    statistic: Statistic,
    seed: int = 0,
    draws: int = DRAWS,
    candidate_statistic: Statistic | None = None,
) -> Difference | None:
    """candidate - baseline of ``statistic`` (``candidate_statistic`` on the candidate, e.g. at its own
    threshold); None when it has no value on either version."""
    of_candidate = candidate_statistic or statistic
    b, c = statistic(baseline), of_candidate(candidate)
    if b is None or c is None:
        return None
    rng = np.random.default_rng(seed)
    differences = []
    for _ in range(draws):
        redrawn_b, redrawn_c = statistic(_redrawn(rng, baseline)), of_candidate(_redrawn(rng, candidate))
        if redrawn_b is not None and redrawn_c is not None:
            differences.append(redrawn_c - redrawn_b)
    if len(differences) < draws // 2:
        return None
    spread = np.asarray(differences)
    lower, upper = np.quantile(spread, [0.025, 0.975])
    # Two-sided: how often the redrawn difference falls on the other side of zero (+1 keeps it above 0).
    tail = min((spread <= 0).sum(), (spread >= 0).sum())
    p_value = min(1.0, 2 * (tail + 1) / (spread.size + 1))
    return Difference(b, c, c - b, float(lower), float(upper), p_value, f"bootstrap of the score bins ({draws} draws)")
