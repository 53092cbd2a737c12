"""Intervals for the metrics with no closed-form variance (PR AUC, F1, ECE, precision@K, ...).

Each cell of the score-bin counts is redrawn as a Poisson count of its own size (the Poisson
bootstrap: the same as resampling rows, without the rows), every metric of a family is
recomputed on the same draws of both versions, and each difference's percentile interval and
two-sided p-value are read off the draws. The draws are shared by the metrics, so a family
costs one set of redraws however many metrics it has.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from closedloop.compare.significance import Difference
from closedloop.evaluation.score_bins import ScoreCounts

DRAWS = 400
Statistic = Callable[[ScoreCounts], float | None]


def _redraws(rng: np.random.Generator, c: ScoreCounts, draws: int) -> list[ScoreCounts]:
    positive, negative, unlabeled = (
        rng.poisson(a, size=(draws, *a.shape)) for a in (c.positive, c.negative, c.unlabeled)
    )
    return [ScoreCounts(positive[i], negative[i], unlabeled[i]) for i in range(draws)]


def _difference(b: float, c: float, spread: np.ndarray, draws: int) -> Difference:
    lower, upper = np.quantile(spread, [0.025, 0.975])
    # Two-sided: how often the redrawn difference falls on the other side of zero (+1 keeps it above 0).
    tail = min((spread <= 0).sum(), (spread >= 0).sum())
    p_value = min(1.0, 2 * (tail + 1) / (spread.size + 1))
    return Difference(b, c, c - b, float(lower), float(upper), p_value, f"bootstrap of the score bins ({draws} draws)")


def bootstrap_differences(
    baseline: ScoreCounts,
    candidate: ScoreCounts,
    statistics: Mapping[str, tuple[Statistic, Statistic]],
    seed: int = 0,
    draws: int = DRAWS,
) -> dict[str, Difference | None]:
    """candidate - baseline of each named (baseline statistic, candidate statistic) pair, e.g. a
    threshold metric at each version's own threshold; None where a version has no value."""
    rng = np.random.default_rng(seed)
    redrawn = list(zip(_redraws(rng, baseline, draws), _redraws(rng, candidate, draws), strict=True))
    out: dict[str, Difference | None] = {}
    for name, (of_baseline, of_candidate) in statistics.items():
        b, c = of_baseline(baseline), of_candidate(candidate)
        pairs = ((of_baseline(x), of_candidate(y)) for x, y in redrawn)
        spread = np.array([y - x for x, y in pairs if x is not None and y is not None])
        enough = b is not None and c is not None and spread.size >= draws // 2
        out[name] = _difference(b, c, spread, draws) if enough else None  # type: ignore[arg-type]
    return out
