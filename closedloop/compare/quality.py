"""Quality, calibration, scores and decisions of two versions, from their score-bin counts (unpaired).

Each metric is computed by the one function closedloop has for it (``closedloop.evaluation.metrics``,
``closedloop.drift.measures``); this module only pairs the two versions' values with the test that
fits: DeLong for ROC AUC, two-proportion tests for rates, Welch for mean losses, and a Poisson
bootstrap of the bins for the rest.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from closedloop.compare import significance as sig
from closedloop.compare.bootstrap import Statistic, bootstrap_differences
from closedloop.compare.evidence import Evidence, VersionEvidence
from closedloop.compare.rows import Row, row
from closedloop.core.metric import Metric
from closedloop.drift.baseline import NumericBaseline
from closedloop.drift.measures import ColumnProfile, Comparison, js_distance, ks, psi
from closedloop.evaluation import metrics as m
from closedloop.evaluation.score_bins import EDGES, MIDPOINT_LOGITS, MIDPOINTS, ScoreCounts, coarsen

CATALOG = {metric.name: metric for metric in m.WINDOW_METRICS}
EXTRA = {
    metric.name: metric
    for metric in (
        Metric("reliability", "score", "lower", True, "Calibration part of the Brier score (Murphy)."),
        Metric("resolution", "score", "higher", True, "How far the bins' positive shares spread from the base rate."),
        Metric("mean_logit", "logit", "neither", description="Mean score on the logit scale."),
        Metric("score_psi", "psi", "lower", description="PSI of the candidate's scores on the baseline's deciles."),
        Metric("score_js", "distance", "lower", description="Jensen-Shannon distance of the score distributions."),
        Metric("score_ks", "share", "lower", description="Kolmogorov-Smirnov statistic of the score distributions."),
    )
}
_SCORE_BUCKETS = 10


def metric(name: str) -> Metric:
    if name.startswith("precision_at_"):
        return m.precision_at_k_metric(int(name.removeprefix("precision_at_")))
    return CATALOG.get(name) or EXTRA[name]


def _value(f: Callable[[ScoreCounts], m.MetricValue]) -> Callable[[ScoreCounts], float | None]:
    return lambda c: f(c).value


_LOSSES = {
    "brier": ((1 - MIDPOINTS) ** 2, MIDPOINTS**2),
    "log_loss": (-np.log(MIDPOINTS), -np.log1p(-MIDPOINTS)),
}


def loss_sums(c: ScoreCounts, name: str) -> tuple[float, float, float]:
    """Sum, sum of squares and count of a per-row loss over the labeled rows, each at its bin's midpoint."""
    loss_positive, loss_negative = _LOSSES[name]
    p, q = c.pos, c.neg
    total = float((p * loss_positive + q * loss_negative).sum())
    squares = float((p * loss_positive**2 + q * loss_negative**2).sum())
    return total, squares, float(p.sum() + q.sum())


def _loss_moments(c: ScoreCounts, name: str) -> tuple[float, float, float]:
    """Mean, variance and count of a per-row loss."""
    total, squares, n = loss_sums(c, name)
    if n < 2:
        return math.nan, math.nan, n
    mean = total / n
    return mean, max(squares / n - mean**2, 0.0) * n / (n - 1), n


def mean_loss_difference(name: str, b: ScoreCounts, c: ScoreCounts) -> sig.Difference:
    return sig.mean_difference(*_loss_moments(b, name), *_loss_moments(c, name))


def confusion(c: ScoreCounts, threshold: float) -> tuple[float, float]:
    """True and false positives at ``threshold``."""
    b = m.threshold_bin(threshold)
    return float(c.pos[b:].sum()), float(c.neg[b:].sum())


def quality_rows(evidence: Evidence, ks_: tuple[int, ...] = ()) -> list[Row]:
    """Ranking, threshold and probability quality on the comparison's labels (none without labels)."""
    if evidence.label_set is None:
        return []
    base, cand = evidence.baseline, evidence.candidate
    b, c = base.whole, cand.whole
    labels = evidence.label_set
    tp_b, fp_b = confusion(b, base.threshold)
    tp_c, fp_c = confusion(c, cand.threshold)
    drawn = _bootstrapped_quality(base, cand, ks_)
    tests: list[tuple[str, sig.Difference | None]] = [
        ("roc_auc", sig.auc_difference_unpaired(b, c)),
        ("pr_auc", drawn["pr_auc"]),
        ("precision", sig.proportion_difference(tp_b, tp_b + fp_b, tp_c, tp_c + fp_c)),
        ("recall", sig.proportion_difference(tp_b, b.n_positive, tp_c, c.n_positive)),
        ("f1", drawn["f1"]),
        *((f"precision_at_{k}", drawn[f"precision_at_{k}"]) for k in ks_),
        ("brier", mean_loss_difference("brier", b, c)),
        ("log_loss", mean_loss_difference("log_loss", b, c)),
    ]  # fmt: skip
    note = "at each version's own threshold"
    # The values shown are closedloop's own metric functions'; a test may lack one side (nothing flagged).
    values_b, values_c = m.evaluate(b, base.threshold, ks_), m.evaluate(c, cand.threshold, ks_)
    return [
        row(
            "quality",
            metric(name),
            d,
            baseline=values_b[name].value,
            candidate=values_c[name].value,
            labels=labels,
            note=note if name in ("precision", "recall", "f1") else None,
        )
        for name, d in tests
    ]


def _same(f: Statistic) -> tuple[Statistic, Statistic]:
    return f, f


def _at_k(k: int) -> Statistic:
    return lambda x: m.precision_at_k(x, k).value


def _bootstrapped_quality(base: VersionEvidence, cand: VersionEvidence, ks: tuple[int, ...]) -> dict:
    """PR AUC, F1 (at each version's own threshold) and precision@K, on one set of draws."""
    statistics = {
        "pr_auc": _same(_value(m.pr_auc)),
        "f1": (lambda x: m.f1(x, base.threshold).value, lambda x: m.f1(x, cand.threshold).value),
        **{f"precision_at_{k}": _same(_at_k(k)) for k in ks},
    }
    return bootstrap_differences(base.whole, cand.whole, statistics, seed=1)


def calibration_rows(evidence: Evidence) -> list[Row]:
    """ECE, MCE and the Brier decomposition (reliability, resolution) of both versions."""
    if evidence.label_set is None:
        return []
    b, c = evidence.baseline.whole, evidence.candidate.whole

    def part(name: str) -> Callable[[ScoreCounts], float | None]:
        return lambda x: m.brier_decomposition(x)[name].value

    statistics = {
        "ece": _same(_value(m.ece)),
        "mce": _same(_value(m.mce)),
        "reliability": _same(part("reliability")),
        "resolution": _same(part("resolution")),
    }
    drawn = bootstrap_differences(b, c, statistics, seed=2)
    return [row("calibration", metric(name), d, labels=evidence.label_set) for name, d in drawn.items()]


def reliability_curves(evidence: Evidence) -> dict[str, list[dict]]:
    """Each version's reliability curve (mean score against observed share per calibration bin)."""
    return {v.version: m.reliability_curve(v.whole).to_dict("records") for v in evidence.versions}


def _logit_moments(c: ScoreCounts) -> tuple[float, float, float]:
    rows = c.rows
    n = float(rows.sum())
    if n < 2:
        return math.nan, math.nan, n
    mean = float((rows * MIDPOINT_LOGITS).sum() / n)
    return mean, float((rows * (MIDPOINT_LOGITS - mean) ** 2).sum() / (n - 1)), n


def _profile(counts: np.ndarray, rows: np.ndarray) -> ColumnProfile:
    n = int(rows.sum())
    return ColumnProfile(n, n, 0, 0.0, 0.0, None, None, counts.astype(np.float64), 0, None)


def score_rows(evidence: Evidence) -> list[Row]:
    """How the score distribution moved: PSI, JS and KS between the versions, and the mean shift in logit."""
    b, c = evidence.baseline.whole.rows, evidence.candidate.whole.rows
    if not b.sum() or not c.sum():
        return []
    # PSI and JS on the baseline version's deciles, as the drift report buckets the score; KS on every bin.
    shares = np.cumsum(b) / b.sum()
    cuts = np.unique(np.searchsorted(shares, np.arange(1, _SCORE_BUCKETS) / _SCORE_BUCKETS))
    starts = np.concatenate([[0], cuts + 1])
    starts = starts[starts < b.size]
    baseline = NumericBaseline(tuple(EDGES[starts[1:]]), None, None, 0.0)

    def comparison(coarse: bool) -> Comparison:
        def counts(x: np.ndarray) -> np.ndarray:
            return np.add.reduceat(x, starts) if coarse else x

        return Comparison("score", _profile(counts(c), c), _profile(counts(b), b), baseline, None)

    distances = [
        ("score_psi", psi(comparison(coarse=True))),
        ("score_js", js_distance(comparison(coarse=True))),
        ("score_ks", ks(comparison(coarse=False))),
    ]
    shift = sig.mean_difference(*_logit_moments(evidence.baseline.whole), *_logit_moments(evidence.candidate.whole))
    rows = [row("scores", metric("mean_logit"), shift)]
    distance = "distance of the candidate's scores from the baseline's"
    rows += [row("scores", metric(name), None, baseline=0.0, candidate=v, note=distance) for name, v in distances]
    return rows


def score_histograms(evidence: Evidence, bins: int = 50) -> dict[str, list[float]]:
    """Each version's share of scores per equal-width bin, for the overlaid distributions."""
    out = {}
    for v in evidence.versions:
        rows = v.whole.rows
        out[v.version] = (coarsen(rows, bins) / rows.sum()).tolist() if rows.sum() else []
    return out


def decision_rows(evidence: Evidence) -> list[Row]:
    """The decision rate each version's service applied, compared as two proportions."""
    b, c = evidence.baseline.whole, evidence.candidate.whole
    rate = sig.proportion_difference(b.n_decided, b.n, c.n_decided, c.n)
    return [row("decisions", metric("decision_rate"), rate, rows=int(min(b.n, c.n)))]


def thresholds(evidence: Evidence) -> dict:
    """The candidate thresholds that keep the baseline's decision rate and its precision, and what each gives."""
    base, cand = evidence.baseline, evidence.candidate
    b, c = base.whole, cand.whole
    rate = m.decision_rate(b).value
    keeps_rate = None if rate is None else m.threshold_for_rate(c, rate)
    keeps_precision = None
    labeled = evidence.label_set is not None
    baseline_precision = m.precision(b, base.threshold).value if labeled else None
    if baseline_precision is not None:
        curve = m.threshold_curve(c)
        reaching = curve[(curve["precision"] >= baseline_precision) & (curve["above"] > 0)]
        keeps_precision = float(reaching["threshold"].iloc[0]) if len(reaching) else None

    def at(counts: ScoreCounts, threshold: float | None) -> dict | None:
        if threshold is None:
            return None
        return {
            "threshold": threshold,
            "decision_rate": m.above_threshold(counts, threshold).value,
            "precision": m.precision(counts, threshold).value if labeled else None,
            "recall": m.recall(counts, threshold).value if labeled else None,
        }

    return {
        "baseline": at(b, base.threshold),
        "candidate": at(c, cand.threshold),
        "candidate_keeping_baseline_rate": at(c, keeps_rate),
        "candidate_keeping_baseline_precision": at(c, keeps_precision),
    }
