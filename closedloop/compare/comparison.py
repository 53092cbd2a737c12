"""One comparison, end to end: gather, test, decide, and write it to the lake.

A comparison lives in ``<lake>/<model>/comparisons/<id>/``: ``comparison.json`` (every number the
report shows), ``report.html`` (self-contained) and the figures as PNG files.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow.compute as pc

from closedloop.compare.canary import canary_view
from closedloop.compare.estimated import estimated_rows
from closedloop.compare.evidence import Evidence, gather_evidence, served_daily_stats
from closedloop.compare.figures import comparison_figures
from closedloop.compare.paired import paired_daily_stats, paired_rows, paired_tests, with_paired_tests
from closedloop.compare.production import daily_values, operations, production_rows, serving
from closedloop.compare.quality import (
    calibration_rows,
    decision_rows,
    quality_rows,
    reliability_curves,
    score_histograms,
    score_rows,
    thresholds,
)
from closedloop.compare.report import comparison_html
from closedloop.compare.request import ACROSS_PERIODS, PAIRED, ComparisonRequest
from closedloop.compare.rows import Row, adjusted
from closedloop.compare.segments import segment_rows, worse_slices
from closedloop.compare.verdict import verdict
from closedloop.core.lake import Lake
from closedloop.core.names import ALL
from closedloop.core.specs import ModelSpec, Registry
from closedloop.drift.baseline import current_baseline
from closedloop.drift.profiles import merge_profiles
from closedloop.drift.report import drift_report

Progress = Callable[[str], None]
STEPS = 6  # calls of ``progress`` in a comparison
_INPUT_DRIFT_METRICS = ("psi", "js_distance", "new_category_share", "missing_rate_delta")


@dataclass(frozen=True)
class Comparison:
    request: ComparisonRequest
    document: dict
    figures: dict[str, bytes]

    @property
    def verdict(self) -> dict:
        return self.document["verdict"]


def _clean(value):
    """NaN and infinities as null, numpy numbers as Python ones: JSON any reader can load."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def input_drift(lake: Lake, model: ModelSpec, request: ComparisonRequest) -> list[dict]:
    """How the inputs of the candidate's period differ from those of the baseline's (across periods only)."""
    if request.population != ACROSS_PERIODS:
        return []
    reference = lake.read_range(model.name, "profiles", request.baseline_period.start, request.baseline_period.end)
    current = lake.read_range(model.name, "profiles", request.candidate_period.start, request.candidate_period.end)
    if reference is None or current is None:
        return []
    report = drift_report(
        model,
        current_baseline(lake, model),
        current.slice(0, 0),
        current,
        window="period",
        day=request.candidate_period.end,
        reference_profile=merge_profiles([reference], across_versions=True),
    )
    mask = pc.and_(pc.equal(report["window"], "period"), pc.equal(report["version"], ALL))
    rows = report.filter(mask).to_pylist()
    return [
        {k: r[k] for k in ("column", "metric", "value", "threshold", "status")}
        for r in rows
        if r["metric"] in _INPUT_DRIFT_METRICS
    ]


def _labels(evidence: Evidence) -> dict:
    out = {}
    for v in evidence.versions:
        n = v.known.n
        out[v.version] = {
            "rows": int(n),
            "labeled_so_far": int(v.known.n_labeled),
            "matured": int(v.matured.n_labeled),
            "coverage_so_far": v.known.n_labeled / n if n else None,
            "coverage_matured": v.matured.n_labeled / n if n else None,
            "positives": int(v.known.n_positive),
        }
    return {"label_set": evidence.label_set, "versions": out}


def compare_versions(
    lake: Lake, model: ModelSpec, request: ComparisonRequest, progress: Progress = lambda step: None
) -> Comparison:
    """Every section of the comparison, its verdict and its figures (nothing written yet)."""
    progress("reading the daily statistics" if request.population != PAIRED else "pairing the shadow rows")
    if request.population == PAIRED:
        rows = paired_rows(lake, model, request)
        evidence = gather_evidence(model, request, paired_daily_stats(model, request, rows))
    else:
        evidence = gather_evidence(model, request, served_daily_stats(lake, model, request))
    progress("comparing quality, calibration, scores and decisions")
    main: list[Row] = [
        *quality_rows(evidence, model.evaluation.precision_at_k),
        *calibration_rows(evidence),
        *score_rows(evidence),
        *decision_rows(evidence),
    ]
    if request.population == PAIRED:
        main = with_paired_tests(main, paired_tests(evidence, rows))
    estimated, no_estimate = estimated_rows(lake, model, evidence)
    main += estimated
    chosen = thresholds(evidence)
    progress("comparing the production metrics and operations")
    served = serving(lake, model, request)
    daily = daily_values(lake, model, request, served)
    production = production_rows(model, request, daily)
    ops, routes = operations(request, served)
    registry_metrics = {r.metric for r in production}
    main = adjusted([*production, *main, *(r for r in ops if r.metric not in registry_metrics)])
    progress("comparing segments")
    slices = segment_rows(evidence, request.segments)
    worse = worse_slices(slices)
    drift = input_drift(lake, model, request)
    progress("following the canary day by day")
    canary = canary_view(model, request, evidence, daily)
    document = {
        "headline": request.describe(),
        "comparison": request.as_dict(),
        "verdict": verdict(request, evidence, main, worse, chosen, canary, no_estimate),
        "labels": _labels(evidence),
        "metrics": [r.as_dict() for r in main],
        "thresholds": chosen,
        "reliability": reliability_curves(evidence),
        "score_histograms": score_histograms(evidence),
        "segments": {"rows": [r.as_dict() for r in slices], "worse": [r.as_dict() for r in worse]},
        "routes": routes,
        "input_drift": drift,
        "canary": canary,
    }
    progress("drawing the figures")
    figures = comparison_figures(request, evidence, document)
    document["figures"] = {name: f"{name}.png" for name in figures}
    return Comparison(request, _clean(document), figures)


def write_comparison(lake: Lake, comparison: Comparison) -> Path:
    """Write the JSON, the figures and the report (each atomically); returns the report's path."""
    folder = lake.comparison_dir(comparison.request.model, comparison.request.comparison_id)
    for name, png in comparison.figures.items():
        lake.write_file(folder / f"{name}.png", png)
    lake.write_file(folder / "comparison.json", json.dumps(comparison.document, indent=2).encode())
    return lake.write_file(folder / "report.html", comparison_html(comparison.document, comparison.figures).encode())


def run_comparison(
    lake: Lake, registry: Registry, request: ComparisonRequest, progress: Progress = lambda step: None
) -> tuple[Comparison, Path]:
    """Compute and write one planned comparison (what the CLI and the ``compare_versions`` job both run)."""
    comparison = compare_versions(lake, registry.model(request.model), request, progress)
    return comparison, write_comparison(lake, comparison)
