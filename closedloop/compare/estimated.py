"""Quality expected once the period's labels mature, for versions whose scores have a matured past.

Before labels mature, each version's metrics are estimated as the rolling evaluation estimates
them (``closedloop.evaluation.estimation``: scores calibrated on the version's own matured
labels of the 30 days before the period). A new release has no matured past of its own, and an
older version's calibration says nothing about its scores, so it gets no estimate, and the
report says so: its quality then rests on the labels known so far.
"""

from __future__ import annotations

import datetime as dt

import pyarrow.compute as pc

from closedloop.compare import significance as sig
from closedloop.compare.evidence import MATURED, Evidence, VersionEvidence
from closedloop.compare.quality import metric
from closedloop.compare.rows import Row, row
from closedloop.core.lake import Lake
from closedloop.core.names import ALL
from closedloop.core.specs import ModelSpec
from closedloop.evaluation.estimation import MIN_REFERENCE_LABELS, PerformanceEstimate, estimate_performance
from closedloop.evaluation.eval_stats import EVAL_STATS_SCHEMA, merge_eval_stats, score_counts

REFERENCE_DAYS = 30
ESTIMATED = ("roc_auc", "precision", "recall", "f1")


def _estimate(lake: Lake, model: ModelSpec, version: VersionEvidence) -> PerformanceEstimate | None:
    last = version.period.start - dt.timedelta(days=1)
    first = last - dt.timedelta(days=REFERENCE_DAYS - 1)
    daily = lake.read_range(model.name, "eval_stats", first, last, schema=EVAL_STATS_SCHEMA)
    stats = merge_eval_stats([daily.filter(pc.equal(daily["model_version"], version.version))])
    reference = score_counts(stats, "matured", pool_versions=False).get((version.version, ALL, ALL))
    return None if reference is None else estimate_performance(reference, version.matured, version.threshold)


def estimated_rows(lake: Lake, model: ModelSpec, evidence: Evidence) -> tuple[list[Row], list[str]]:
    """The estimated metrics of both versions with their difference, or why there are none."""
    if evidence.label_set == MATURED:
        return [], []
    estimates = {v.version: _estimate(lake, model, v) for v in evidence.versions}
    missing = [
        f"no performance estimate for {v.version}: fewer than {MIN_REFERENCE_LABELS} matured labels of each class in "
        f"the {REFERENCE_DAYS} days before {v.period.start} (labels mature after {model.labels.maturity_days} days; "
        "a new release has none of its own)"
        for v in evidence.versions
        if estimates[v.version] is None
    ]
    if missing:
        return [], missing
    b, c = (estimates[v.version] for v in evidence.versions)
    assert b is not None and c is not None
    rows = []
    for name in ESTIMATED:
        eb, ec = b.metrics[name], c.metrics[name]
        values = (eb.value, eb.standard_error, ec.value, ec.standard_error)
        difference = None if any(x is None for x in values) else sig.estimate_difference(*values)  # type: ignore[arg-type]
        rows.append(
            row("estimated", metric(name), difference, baseline=eb.value, candidate=ec.value, labels="estimated")
        )
    return rows, []
