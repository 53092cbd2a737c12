"""What each version's figures rest on, read from the lake's daily statistics.

The unpaired comparison never reads raw predictions: a version's scores over its period are the
sum of its daily ``eval_stats`` counts (score bins by label and decision, per segment), so a
comparison of 30 days of a million predictions a day answers in seconds.

Quality rests on matured labels when both versions have enough of them; otherwise on the labels
known so far, and the report says so beside every quality figure.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from closedloop.compare.request import ComparisonRequest, Period
from closedloop.core.lake import Lake
from closedloop.core.names import ALL
from closedloop.core.specs import ModelSpec
from closedloop.evaluation.eval_stats import EVAL_STATS_SCHEMA, merge_eval_stats, score_counts
from closedloop.evaluation.score_bins import ScoreCounts

MATURED = "matured"
KNOWN_SO_FAR = "known so far"
MIN_LABELS_PER_CLASS = 30  # positives and negatives each version needs before quality is compared
LABEL_SETS = {MATURED: "matured", KNOWN_SO_FAR: "known"}  # the comparison's names -> eval_stats' label sets

Slice = tuple[str, str | None]  # (segment, value); (ALL, ALL) is the whole population


@dataclass(frozen=True)
class VersionEvidence:
    version: str
    period: Period
    threshold: float
    counts: dict[Slice, ScoreCounts]  # on the comparison's label set
    matured: ScoreCounts  # the whole population on matured labels (for coverage)
    known: ScoreCounts  # ... and on every label known so far

    @property
    def whole(self) -> ScoreCounts:
        return self.counts.get((ALL, ALL), ScoreCounts.empty())


@dataclass(frozen=True)
class Evidence:
    baseline: VersionEvidence
    candidate: VersionEvidence
    label_set: str | None  # None: too few labels of either kind for quality
    daily: dict[str, pa.Table]  # each version's daily eval_stats, for the canary view

    @property
    def versions(self) -> tuple[VersionEvidence, VersionEvidence]:
        return self.baseline, self.candidate


def served_daily_stats(lake: Lake, model: ModelSpec, request: ComparisonRequest) -> dict[str, pa.Table]:
    """Each version's daily evaluation statistics over its own period, as the pipeline wrote them."""
    read: dict[Period, pa.Table] = {}  # the same days are read once for both versions
    out = {}
    for version, period in ((request.baseline, request.baseline_period), (request.candidate, request.candidate_period)):
        if period not in read:
            read[period] = lake.read_range(model.name, "eval_stats", period.start, period.end, schema=EVAL_STATS_SCHEMA)
        out[version] = read[period].filter(pc.equal(read[period]["model_version"], version))
    return out


def _enough(counts: ScoreCounts) -> bool:
    return min(counts.n_positive, counts.n_negative) >= MIN_LABELS_PER_CLASS


def _slices(stats: pa.Table, labels: str) -> dict[Slice, ScoreCounts]:
    return {(segment, value): c for (_, segment, value), c in score_counts(stats, labels, pool_versions=False).items()}


def gather_evidence(model: ModelSpec, request: ComparisonRequest, daily: dict[str, pa.Table]) -> Evidence:
    """Both versions' counts summed from their daily statistics (served, or built from paired rows)."""
    stats = {version: merge_eval_stats([table]) for version, table in daily.items()}
    by_labels = {name: {v: _slices(s, labels) for v, s in stats.items()} for name, labels in LABEL_SETS.items()}
    whole = {
        name: {v: c.get((ALL, ALL), ScoreCounts.empty()) for v, c in sets.items()} for name, sets in by_labels.items()
    }
    label_set = next((name for name in (MATURED, KNOWN_SO_FAR) if all(map(_enough, whole[name].values()))), None)
    chosen = by_labels[label_set or MATURED]

    def version(name: str, period: Period) -> VersionEvidence:
        threshold = model.versions[name].threshold
        return VersionEvidence(name, period, threshold, chosen[name], whole[MATURED][name], whole[KNOWN_SO_FAR][name])

    return Evidence(
        version(request.baseline, request.baseline_period),
        version(request.candidate, request.candidate_period),
        label_set,
        daily,
    )
