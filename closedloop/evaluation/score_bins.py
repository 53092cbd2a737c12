"""The score grid: fixed bins every score is counted on, so any window is a sum of daily counts.

A window's scores are not kept row by row but counted on ``BINS`` fixed bins (bin ``b`` holds
``EDGES[b] <= score < EDGES[b + 1]``; the last bin also holds 1.0), split by label and decision,
so any window is a sum of daily counts (see ``closedloop.evaluation.eval_stats``). The edges are every
multiple of 0.001 (so thresholds like the registry's 0.5 and 0.6 split the bins exactly) and, in
the tails below 0.01 and above 0.99, 50 edges per decade of the score (of 1 - score) down to
1e-7, rounded to 3 significant digits: a logit step of about 0.046 where scores squeezed by a
calibration shift pile up, and decimal numbers that are the same on every machine. The edges
depend on nothing else (no data, no registry), so days always add up; ``SCORE_GRID`` names them,
and statistics counted on other edges are refused rather than misread.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

GRID = 1000  # every multiple of 1/GRID is an edge
TAIL_EDGES_PER_DECADE = 50
TAIL_DECADES = (2, 7)  # the tails are resolved from 1e-2 to 1e-7 away from 0 and from 1


def _score_edges() -> np.ndarray:
    """The uniform grid and both tails' decimal edges, computed exactly (no platform-dependent rounding)."""
    first, last = (decades * TAIL_EDGES_PER_DECADE for decades in TAIL_DECADES)
    tail = [Decimal(f"{10.0 ** (-k / TAIL_EDGES_PER_DECADE):.3g}") for k in range(first, last + 1)]
    edges = [*(Decimal(k) / GRID for k in range(GRID + 1)), *tail, *(1 - d for d in tail)]
    return np.unique(np.array([float(d) for d in edges]))


EDGES = _score_edges()
BINS = len(EDGES) - 1
MIDPOINTS = (EDGES[:-1] + EDGES[1:]) / 2
HALF_WIDTHS = np.diff(EDGES) / 2
SCORE_GRID = hashlib.sha256(EDGES.astype("<f8").tobytes()).hexdigest()[:16]


LOGIT_CLIP = 1e-7


def logit(scores: np.ndarray) -> np.ndarray:
    """Scores on the logit scale, clipped at the grid's finest tail (1e-7) so 0 and 1 stay finite."""
    clipped = np.clip(scores, LOGIT_CLIP, 1 - LOGIT_CLIP)
    return np.log(clipped / (1 - clipped))


MIDPOINT_LOGITS = logit(MIDPOINTS)


def score_bins(scores: np.ndarray) -> np.ndarray:
    """The bin of each score in [0, 1]: the b with EDGES[b] <= score < EDGES[b + 1], 1.0 in the last bin."""
    return np.minimum(np.searchsorted(EDGES, scores, side="right") - 1, BINS - 1).astype(np.int16)


def coarsen(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Per-bin values (last axis) summed onto ``n_bins`` equal-width bins, for calibration and histograms.

    ``n_bins`` must divide ``GRID``: then every coarse edge is an edge, and no bin straddles two.
    """
    if n_bins < 1 or GRID % n_bins:
        raise ValueError(f"n_bins must divide {GRID}, got {n_bins}")
    return np.add.reduceat(values, np.searchsorted(EDGES, np.arange(n_bins) / n_bins), axis=-1)


@dataclass(frozen=True)
class ScoreCounts:
    """Rows of one population counted per decision (axis 0: 0/1) and score bin (axis 1).

    ``positive`` and ``negative`` hold rows whose label belongs to the label set being evaluated
    (e.g. matured labels); ``unlabeled`` holds every other row. Counts may be expected (float)
    counts, as in performance estimation.
    """

    positive: np.ndarray
    negative: np.ndarray
    unlabeled: np.ndarray

    @classmethod
    def empty(cls) -> ScoreCounts:
        return cls(*(np.zeros((2, BINS)) for _ in range(3)))

    @property
    def pos(self) -> np.ndarray:
        """Positives per bin, whatever the decision."""
        return self.positive.sum(axis=0)

    @property
    def neg(self) -> np.ndarray:
        return self.negative.sum(axis=0)

    @property
    def rows(self) -> np.ndarray:
        """All rows per bin (labeled or not)."""
        return (self.positive + self.negative + self.unlabeled).sum(axis=0)

    @property
    def n(self) -> float:
        return float(self.rows.sum())

    @property
    def n_positive(self) -> float:
        return float(self.positive.sum())

    @property
    def n_negative(self) -> float:
        return float(self.negative.sum())

    @property
    def n_labeled(self) -> float:
        return self.n_positive + self.n_negative

    @property
    def n_decided(self) -> float:
        """Rows whose decision was 1 (held for review, sent to on-call, ...)."""
        return float((self.positive[1] + self.negative[1] + self.unlabeled[1]).sum())
