"""The canary view: a difference between versions that may be looked at every day, as often as a team likes.

A fixed-sample test checked daily on the growing data finds differences that are not there far
more often than its 5%: over 30 looks, one canary in four or five that changed nothing is
declared different at some point. A confidence sequence holds for every day at once: the chance
that it ever excludes the true difference, on any day, is at most ``alpha``, so a team may stop a
canary on the first day it is certain and still be wrong at most 5% of the time.

The boundary is the two-sided normal-mixture (Robbins) boundary of Howard, Ramdas, McAuliffe &
Sekhon (2021), "Time-uniform, nonparametric, nonasymptotic confidence sequences", Ann. Statist.
49(2): a standardized sum S_t with intrinsic time V_t stays within

    sqrt((V_t + rho) log((V_t + rho) / (rho alpha^2)))

at every t, with probability 1 - alpha. The sum here is the difference of the two versions'
running means, standardized by its variance estimated from the data so far: that makes these
asymptotic confidence sequences in the sense of Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas
(2021), "Time-uniform central limit theory and asymptotic confidence sequences" (valid as the
counts grow, as a z-interval is), not the nonasymptotic ones.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

PLANNED_DAYS = 30  # a canary is usually watched for about a month


@dataclass(frozen=True)
class ConfidenceSequence:
    """The running difference candidate - baseline after each day, with an interval valid on all days at once."""

    days: tuple[datetime.date, ...]
    estimate: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    def first_certain_day(self) -> datetime.date | None:
        """The first day the interval excludes no difference (None: not yet); stopping there is safe."""
        certain = np.flatnonzero((self.lower > 0) | (self.upper < 0))
        return self.days[certain[0]] if certain.size else None

    def as_dict(self) -> dict:
        """JSON-ready: ISO days, NaN (no estimate yet) becomes None."""

        def floats(values: np.ndarray) -> list[float | None]:
            return [None if math.isnan(v) else float(v) for v in values]

        first = self.first_certain_day()
        return {
            "days": [d.isoformat() for d in self.days],
            "estimate": floats(self.estimate),
            "lower": floats(self.lower),
            "upper": floats(self.upper),
            "first_certain_day": None if first is None else first.isoformat(),
        }


def normal_mixture_boundary(intrinsic_time: np.ndarray, rho: float, alpha: float) -> np.ndarray:
    """How far a standardized sum may wander from its mean, on every day at once, with probability 1 - alpha."""
    v = np.asarray(intrinsic_time, dtype=float) + rho
    return np.sqrt(v * np.log(v / (rho * alpha**2)))


def tightest_at(intrinsic_time: float, alpha: float) -> float:
    """The mixture's rho that makes the boundary (nearly) tightest at ``intrinsic_time`` (Howard et al. 2021)."""
    log_inverse = math.log(1 / alpha)
    return intrinsic_time / (2 * log_inverse + math.log(1 + 2 * log_inverse))


def _sequence(
    days: tuple[datetime.date, ...],
    means: tuple[np.ndarray, np.ndarray],
    variances: tuple[np.ndarray, np.ndarray],
    rows: tuple[np.ndarray, np.ndarray],
    alpha: float,
    planned_days: int,
) -> ConfidenceSequence:
    """The sequence from each day's running means, per-row variances and rows of both versions.

    Intrinsic time is the effective number of rows (1 / (1/n_b + 1/n_c)), in which the difference
    standardized by its per-row variance is a sum of unit-variance terms. rho is fixed before
    looking at any outcome: tightest after ``planned_days`` days of the first day's traffic (the
    first day both versions served), so the intervals of past days stay the same as days are added.
    """
    (mean_b, mean_c), (var_b, var_c), (n_b, n_c) = means, variances, rows
    with np.errstate(divide="ignore", invalid="ignore"):
        effective_rows = np.where((n_b > 0) & (n_c > 0), n_b * n_c / (n_b + n_c), 0.0)
        variance = var_b / n_b + var_c / n_c  # of the difference of the running means
        estimate = np.where(effective_rows > 0, mean_c - mean_b, np.nan)
    traffic = effective_rows > 0
    known = traffic & (variance > 0)
    half = np.full(len(days), np.nan)
    if known.any():
        rho = tightest_at(planned_days * effective_rows[traffic][0], alpha)
        half[known] = np.sqrt(variance[known] / effective_rows[known]) * normal_mixture_boundary(
            effective_rows[known], rho, alpha
        )
    return ConfidenceSequence(days, estimate, estimate - half, estimate + half)


def _per_day(days: Sequence[datetime.date], *values: ArrayLike) -> tuple[tuple[datetime.date, ...], list[np.ndarray]]:
    per_day = [np.asarray(v, dtype=float) for v in values]
    if any(v.shape != (len(days),) for v in per_day):
        raise ValueError("every per-day array needs one value per day")
    return tuple(days), per_day


def rate_difference_sequence(
    days: Sequence[datetime.date],
    successes_b: ArrayLike,
    trials_b: ArrayLike,
    successes_c: ArrayLike,
    trials_c: ArrayLike,
    alpha: float = 0.05,
    planned_days: int = PLANNED_DAYS,
) -> ConfidenceSequence:
    """Running difference of two rates (decision rate, error rate, ...) from each day's counts."""
    dates, (s_b, t_b, s_c, t_c) = _per_day(days, successes_b, trials_b, successes_c, trials_c)
    rows = np.cumsum(t_b), np.cumsum(t_c)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_b, rate_c = np.cumsum(s_b) / rows[0], np.cumsum(s_c) / rows[1]
    return _sequence(dates, (rate_b, rate_c), (rate_b * (1 - rate_b), rate_c * (1 - rate_c)), rows, alpha, planned_days)


def mean_difference_sequence(
    days: Sequence[datetime.date],
    sums_b: ArrayLike,
    sums_sq_b: ArrayLike,
    n_b: ArrayLike,
    sums_c: ArrayLike,
    sums_sq_c: ArrayLike,
    n_c: ArrayLike,
    alpha: float = 0.05,
    planned_days: int = PLANNED_DAYS,
) -> ConfidenceSequence:
    """Running difference of two means (latency, cost, per-request loss) from each day's sums and squares."""
    dates, (x_b, xx_b, m_b, x_c, xx_c, m_c) = _per_day(days, sums_b, sums_sq_b, n_b, sums_c, sums_sq_c, n_c)
    running = []
    for sums, squares, rows in ((x_b, xx_b, m_b), (x_c, xx_c, m_c)):
        total, total_sq, count = np.cumsum(sums), np.cumsum(squares), np.cumsum(rows)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = total / count
            variance = np.where(count >= 2, np.maximum(total_sq - total * mean, 0.0) / (count - 1), np.nan)
        running.append((mean, variance, count))
    (mean_b, var_b, count_b), (mean_c, var_c, count_c) = running
    return _sequence(dates, (mean_b, mean_c), (var_b, var_c), (count_b, count_c), alpha, planned_days)
