"""One line of a comparison: a metric for each version, their difference, and whether it is real.

Every section (production metrics, quality, calibration, decisions, operations, segments) is a
list of these, so the verdict, the JSON and the report read one shape. Whether a difference is
real is decided on p-values adjusted across the whole family of tests (Benjamini-Hochberg), so
twenty metrics do not produce one false "worse" by chance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from closedloop.compare.significance import Difference, adjust_p_values
from closedloop.core.metric import Metric

ALPHA = 0.05
BETTER = "better"
WORSE = "worse"
CHANGED = "changed"  # a difference in a metric with no better direction (a decision rate)
NOT_DISTINGUISHABLE = "not distinguishable"
NO_TEST = "no test"


def _number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


@dataclass(frozen=True)
class Row:
    section: str
    metric: str
    unit: str
    better: str  # "higher", "lower" or "neither"
    baseline: float | None
    candidate: float | None
    difference: Difference | None  # None when the metric has no test here; ``note`` says why
    p_adjusted: float | None = None
    labels: str | None = None  # which labels a quality figure rests on ("matured", "known so far")
    note: str | None = None
    segment: str | None = None
    segment_value: str | None = None
    rows: int | None = None  # rows behind the smaller of the two values (segments: enough to matter)

    @property
    def verdict(self) -> str:
        if self.difference is None or self.p_adjusted is None:
            return NO_TEST
        if self.p_adjusted >= ALPHA:
            return NOT_DISTINGUISHABLE
        if self.better == "neither":
            return CHANGED
        up = self.difference.difference > 0
        return BETTER if up == (self.better == "higher") else WORSE

    @property
    def effect(self) -> float | None:
        """The difference in the direction of worse (positive = the candidate is worse), for ranking."""
        if self.difference is None or self.better == "neither":
            return None
        sign = -1.0 if self.better == "higher" else 1.0
        return sign * self.difference.difference

    def as_dict(self) -> dict:
        d = self.difference
        return {
            "section": self.section,
            "metric": self.metric,
            "segment": self.segment,
            "segment_value": self.segment_value,
            "unit": self.unit,
            "better": self.better,
            "baseline": _number(self.baseline),
            "candidate": _number(self.candidate),
            "difference": None if d is None else _number(d.difference),
            "lower": None if d is None else _number(d.lower),
            "upper": None if d is None else _number(d.upper),
            "p_value": None if d is None else _number(d.p_value),
            "p_adjusted": _number(self.p_adjusted),
            "test": None if d is None else d.test,
            "verdict": self.verdict,
            "labels": self.labels,
            "rows": self.rows,
            "note": self.note,
        }


def row(
    section: str,
    metric: Metric,
    difference: Difference | None,
    *,
    baseline: float | None = None,
    candidate: float | None = None,
    **extra,
) -> Row:
    """A row for a catalogued metric; the values default to the ones the test compared."""
    if difference is not None:
        baseline = difference.baseline if baseline is None else baseline
        candidate = difference.candidate if candidate is None else candidate
    return Row(section, metric.name, metric.unit, metric.better, baseline, candidate, difference, **extra)


def adjusted(rows: Sequence[Row]) -> list[Row]:
    """The rows with Benjamini-Hochberg p-values over every tested row among them (one family)."""
    tested = {
        i: r.difference.p_value for i, r in enumerate(rows) if r.difference and not math.isnan(r.difference.p_value)
    }
    p_adjusted = adjust_p_values(np.array(list(tested.values()), dtype=float))
    out = list(rows)
    for i, p in zip(tested, p_adjusted, strict=True):
        out[i] = replace(rows[i], p_adjusted=float(p))
    return out
