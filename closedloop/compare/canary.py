"""The canary, day by day: which differences are already certain, valid however often it is looked at.

For two versions on the same days, each difference is followed as a confidence sequence over
the days so far (``closedloop.compare.sequential``): the decision rate, the registry's
production metrics (one value a day), and, as labels arrive, precision and the Brier score. The
first day each became certain is the answer to a post-incident review's "when could we have known?".
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from closedloop.compare.evidence import KNOWN_SO_FAR, LABEL_SETS, Evidence
from closedloop.compare.production import DailyValues
from closedloop.compare.quality import confusion, loss_sums
from closedloop.compare.request import ACROSS_PERIODS, ComparisonRequest
from closedloop.compare.sequential import ConfidenceSequence, mean_difference_sequence, rate_difference_sequence
from closedloop.control.metric_catalog import metric_definition
from closedloop.core.names import ALL
from closedloop.core.specs import ModelSpec
from closedloop.evaluation.eval_stats import score_counts
from closedloop.evaluation.score_bins import ScoreCounts


def _daily_counts(evidence: Evidence, labels: str) -> dict:
    """(day, version) -> the day's whole-population counts."""
    stats = pa.concat_tables(evidence.daily.values())
    stats = stats.filter(pc.equal(stats["segment"], ALL))
    out = {}
    for day in sorted(set(stats["prediction_date"].to_pylist())):
        of_day = stats.filter(pc.equal(stats["prediction_date"], day))
        for (version, _, _), counts in score_counts(of_day, labels, pool_versions=False).items():
            out[(day, version)] = counts
    return out


def _sums(values: dict[dt.date, float], days: list[dt.date]) -> tuple[list[float], list[float], list[float]]:
    """One observation a day: the day's value, its square, and whether there was one."""
    present = [values.get(day) for day in days]
    return [v or 0.0 for v in present], [(v or 0.0) ** 2 for v in present], [float(v is not None) for v in present]


def _entry(metric: str, unit: str, sequence: ConfidenceSequence) -> dict:
    return {"metric": metric, "unit": unit, **sequence.as_dict()}


def canary_view(
    model: ModelSpec, request: ComparisonRequest, evidence: Evidence, daily: dict[str, DailyValues]
) -> list[dict]:
    """One confidence sequence per followed difference; empty when the versions ran on different days."""
    if request.population == ACROSS_PERIODS:
        return []
    labels = LABEL_SETS.get(evidence.label_set or "", LABEL_SETS[KNOWN_SO_FAR])
    counts = _daily_counts(evidence, labels)
    days = sorted({day for day, _ in counts})
    empty = ScoreCounts.empty()
    base, cand = evidence.baseline, evidence.candidate

    def per_day(version: str) -> list[ScoreCounts]:
        return [counts.get((day, version), empty) for day in days]

    b, c = per_day(base.version), per_day(cand.version)
    out = [
        _entry(
            "decision_rate",
            "share",
            rate_difference_sequence(
                days, [x.n_decided for x in b], [x.n for x in b], [x.n_decided for x in c], [x.n for x in c]
            ),
        )
    ]
    units = {m.name: metric_definition(model, m).unit for m in model.metrics}
    for name, values in daily.items():
        unit = units[name]
        shared = [day for day in days if day in values.baseline or day in values.candidate]
        if len(shared) < 2:
            continue

        sequence = mean_difference_sequence(shared, *_sums(values.baseline, shared), *_sums(values.candidate, shared))
        out.append(_entry(name, unit, sequence))
    if evidence.label_set is not None:
        flagged_b = [confusion(x, base.threshold) for x in b]
        flagged_c = [confusion(x, cand.threshold) for x in c]
        out.append(
            _entry(
                "precision",
                "share",
                rate_difference_sequence(
                    days,
                    [tp for tp, _ in flagged_b],
                    [tp + fp for tp, fp in flagged_b],
                    [tp for tp, _ in flagged_c],
                    [tp + fp for tp, fp in flagged_c],
                ),
            )
        )
        brier_b = np.array([loss_sums(x, "brier") for x in b]).T
        brier_c = np.array([loss_sums(x, "brier") for x in c]).T
        out.append(_entry("brier", "score", mean_difference_sequence(days, *brier_b, *brier_c)))
    return out
