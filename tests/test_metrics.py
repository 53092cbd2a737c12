"""Metrics from binned statistics agree with scikit-learn on the raw rows, within the stated bounds.

Every comparison runs the real path: raw rows -> an outcomes table -> the eval_stats SQL ->
dense counts -> the metric; the reference is scikit-learn (or scipy) on the same raw rows.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest, rankdata
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
)

from closedloop.evaluation import metrics
from closedloop.evaluation.score_bins import BINS, EDGES, GRID, HALF_WIDTHS, MIDPOINTS
from tests.helpers import binned

SLACK = 1e-9  # float summation order


@st.composite
def rows(draw, continuous: bool = False):
    """Scores and labels: model-like logistic scores of any separation and prevalence, or raw floats.

    Unless ``continuous``, scores may be rounded (ties, values exactly on bin edges) or drawn by
    Hypothesis directly (0, 1, 0.5, subnormals...).
    """
    if not continuous and draw(st.booleans()):
        pairs = draw(st.lists(st.tuples(st.floats(0, 1), st.integers(0, 1)), min_size=1, max_size=40))
        return np.array([s for s, _ in pairs]), np.array([y for _, y in pairs])
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(1, 3000))
    labels = (rng.random(n) < draw(st.floats(0, 1))).astype(int)
    logits = rng.normal(draw(st.floats(-4, 1)) + draw(st.floats(0, 4)) * labels, draw(st.floats(0.2, 3)))
    scores = 1 / (1 + np.exp(-logits))
    if not continuous:
        decimals = draw(st.sampled_from([None, 1, 2, 3]))
        if decimals is not None:
            scores = np.round(scores, decimals)
    return scores, labels


def both_classes(labels) -> bool:
    return 0 < np.sum(labels) < len(labels)


@settings(max_examples=60, deadline=None)
@given(rows())
def test_roc_auc_matches_sklearn_within_its_bound(data):
    scores, labels = data
    result = metrics.roc_auc(binned(scores, labels))
    if not both_classes(labels):
        assert result.value is None
        return
    exact = roc_auc_score(labels, scores)
    assert abs(result.value - exact) <= result.binning_error + SLACK
    if min(np.sum(labels), len(labels) - np.sum(labels)) >= 2:
        assert result.lower <= result.value <= result.upper


@settings(max_examples=60, deadline=None)
@given(rows())
def test_average_precision_matches_sklearn_within_its_bound(data):
    scores, labels = data
    result = metrics.pr_auc(binned(scores, labels))
    if np.sum(labels) == 0:
        assert result.value is None
        return
    exact = average_precision_score(labels, scores)
    assert abs(result.value - exact) <= result.binning_error + SLACK


ON_AN_EDGE = st.one_of(st.integers(0, GRID).map(lambda k: k / GRID), st.sampled_from(list(EDGES)))


@settings(max_examples=60, deadline=None)
@given(rows(), st.one_of(ON_AN_EDGE, st.floats(0, 1)))
def test_threshold_metrics_match_sklearn_within_their_bound(data, threshold):
    scores, labels = data
    counts = binned(scores, labels)
    flagged = scores >= threshold
    exact = precision_recall_fscore_support(labels, flagged, average="binary", zero_division=np.nan)[:3]
    above = metrics.above_threshold(counts, threshold)
    for name, reference in zip(("precision", "recall", "f1"), exact, strict=False):
        result = getattr(metrics, name)(counts, threshold)
        if np.isnan(reference):
            assert result.value is None, name
        elif result.value is None:  # the bins flag nothing; only rows of the straddled bin pass the threshold
            assert name in ("precision", "f1") and above.value == 0 and above.binning_error > 0, name
        else:
            assert abs(result.value - reference) <= result.binning_error + SLACK, name
    below = metrics.below_threshold(counts, threshold)
    assert abs(above.value - flagged.mean()) <= above.binning_error + SLACK
    assert below.value == pytest.approx(1 - above.value)
    # On an edge the split is exact, except at 1.0: the last bin is closed, so it holds scores on both sides.
    if threshold < 1 and threshold in EDGES:
        assert above.binning_error == 0 and above.value == pytest.approx(flagged.mean())


@settings(max_examples=60, deadline=None)
@given(rows())
def test_brier_and_log_loss_match_sklearn_within_their_bound(data):
    scores, labels = data
    counts = binned(scores, labels)
    result = metrics.brier(counts)
    assert abs(result.value - brier_score_loss(labels, scores, labels=[0, 1])) <= result.binning_error + SLACK
    assert result.binning_error <= 2 * HALF_WIDTHS.max()
    result = metrics.log_loss(counts)
    assert abs(result.value - log_loss(labels, scores, labels=[0, 1])) <= result.binning_error + SLACK


@settings(max_examples=60, deadline=None)
@given(rows(continuous=True), st.sampled_from([5, 10, 20]))
def test_reliability_curve_ece_and_mce_match_sklearn_calibration_curve(data, n_bins):
    scores, labels = data
    counts = binned(scores, labels)
    curve = metrics.reliability_curve(counts, n_bins)
    positive_share, mean_score = calibration_curve(labels, scores, n_bins=n_bins)
    np.testing.assert_allclose(curve["positive_share"], positive_share, atol=1e-12)
    np.testing.assert_allclose(curve["mean_score"], mean_score, atol=HALF_WIDTHS.max() + SLACK)
    edges = np.linspace(0, 1, n_bins + 1)
    rows_per_bin = np.bincount(np.searchsorted(edges[1:-1], scores), minlength=n_bins)
    rows_per_bin = rows_per_bin[rows_per_bin > 0]
    gaps = np.abs(mean_score - positive_share)
    ece, mce = metrics.ece(counts, n_bins), metrics.mce(counts, n_bins)
    assert abs(ece.value - (gaps * rows_per_bin).sum() / len(scores)) <= ece.binning_error + SLACK
    assert abs(mce.value - gaps.max()) <= mce.binning_error + SLACK


@settings(max_examples=60, deadline=None)
@given(rows(), st.integers(1, 500))
def test_precision_at_k_matches_the_top_k_raw_rows_whatever_the_tie_order(data, k):
    scores, labels = data
    result = metrics.precision_at_k(binned(scores, labels), k)
    if k > len(scores):
        assert result.value is None
        return
    for tie_break in (labels, -labels):  # ties resolved against and in favour of positives
        top = np.lexsort((tie_break, -scores))[:k]
        assert abs(result.value - labels[top].mean()) <= result.binning_error + SLACK


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 5000), st.integers(1, 5000))
def test_wilson_interval_matches_scipy(successes, trials):
    successes = min(successes, trials)
    result = metrics.wilson(successes, trials)
    reference = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    assert result.value == successes / trials
    assert result.lower == pytest.approx(reference.low, abs=1e-12)
    assert result.upper == pytest.approx(reference.high, abs=1e-12)


def delong_variance(scores, labels) -> float:
    """DeLong's variance of the AUC on raw rows, from midranks (the textbook formulation)."""
    positives, negatives = scores[labels == 1], scores[labels == 0]
    m, n = len(positives), len(negatives)
    combined = rankdata(np.concatenate([positives, negatives]))
    v10 = (combined[:m] - rankdata(positives)) / n
    v01 = 1 - (combined[m:] - rankdata(negatives)) / m
    return v10.var(ddof=1) / m + v01.var(ddof=1) / n


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(4, 2000), st.floats(0.05, 0.95), st.floats(0, 3))
def test_auc_interval_is_delong_on_the_binned_scores(seed, n, prevalence, separation):
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < prevalence).astype(int)
    if min(labels.sum(), n - labels.sum()) < 2:
        labels[:2], labels[2:4] = 1, 0
    # scores on bin midpoints: binning loses nothing, so binned and raw DeLong must agree exactly
    scores = MIDPOINTS[np.clip((rng.normal(separation * labels, 1) * BINS / 7 + BINS / 2).astype(int), 0, BINS - 1)]
    result = metrics.roc_auc(binned(scores, labels))
    assert result.value == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    half = metrics.Z95 * np.sqrt(delong_variance(scores, labels))
    assert result.lower == pytest.approx(max(0.0, result.value - half), abs=1e-9)
    assert result.upper == pytest.approx(min(1.0, result.value + half), abs=1e-9)


def test_the_edges_hold_every_thousandth_and_resolve_both_tails():
    assert EDGES[0] == 0 and EDGES[-1] == 1 and np.all(np.diff(EDGES) > 0)
    assert np.isin(np.arange(GRID + 1) / GRID, EDGES).all()  # thresholds such as 0.5 and 0.6 split bins exactly
    for distance in (EDGES[(EDGES > 0) & (EDGES <= 0.01)], 1 - EDGES[(EDGES < 1) & (EDGES >= 0.99)]):
        distance = np.sort(distance)
        assert distance[0] <= 1.0000001e-7 and np.all(distance[1:] / distance[:-1] < 1.06)  # a logit step under 0.06


def fraud_like(where: str, n: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    """2% positives ranked as fraud v11 ranks them; ``where`` puts every score in [0, 1] ("spread"),
    in [0, 0.01] ("low", as a calibration shift like v12's squeezes them) or in [0.99, 1] ("high")."""
    rng = np.random.default_rng(3)
    labels = (rng.random(n) < 0.02).astype(int)
    if where == "spread":
        return 1 / (1 + np.exp(-rng.normal(-4.5 + 2.6 * labels, 1.2))), labels
    logits = rng.normal(-8.5 + 2.6 * labels, 1.0)
    inside = logits <= np.log(0.01 / 0.99)
    logits, labels = logits[inside], labels[inside]
    if where == "low":
        return 1 / (1 + np.exp(-logits)), labels
    return 1 / (1 + np.exp(logits)), 1 - labels  # mirrored: the common class scores near 1


@pytest.mark.parametrize(
    ("where", "thresholds"), [("spread", (0.5, 0.1234)), ("low", (0.005, 0.00123)), ("high", (0.995, 0.99877))]
)
def test_squeezed_scores_match_sklearn_as_closely_as_spread_ones(where, thresholds):
    """The tails have bins of their own: squeezed into [0, 0.01] or [0.99, 1] (1/1000 bins put
    them in ten, and ROC AUC was 0.06 off), every metric stays within its bound, AUC within 0.002."""
    scores, labels = fraud_like(where)
    assert where == "spread" or np.all((scores <= 0.01) | (scores >= 0.99))
    counts = binned(scores, labels)

    auc = metrics.roc_auc(counts)
    gap = abs(auc.value - roc_auc_score(labels, scores))
    assert gap <= auc.binning_error < 0.002
    for name, reference in (
        ("pr_auc", average_precision_score(labels, scores)),
        ("brier", brier_score_loss(labels, scores)),
        ("log_loss", log_loss(labels, scores)),
    ):
        result = getattr(metrics, name)(counts)
        assert abs(result.value - reference) <= result.binning_error + SLACK, name
    for threshold in thresholds:
        exact = precision_recall_fscore_support(labels, scores >= threshold, average="binary")[:3]
        for name, reference in zip(("precision", "recall", "f1"), exact, strict=False):
            result = getattr(metrics, name)(counts, threshold)
            assert abs(result.value - reference) <= result.binning_error + SLACK, (name, threshold)
            if threshold in EDGES:
                assert result.binning_error == 0, (name, threshold)


@pytest.mark.parametrize(
    ("scores", "labels"),
    [
        ([], []),
        ([0.3, 0.7], [None, None]),
        ([0.3, 0.7, 0.9], [0, 0, 0]),
        ([0.3, 0.7, 0.9], [1, 1, 1]),
        ([0.6], [1]),
    ],
    ids=["empty", "unlabeled", "no-positives", "no-negatives", "one-row"],
)
def test_small_or_one_class_populations_give_none_not_errors(scores, labels):
    counts = binned(scores, labels)
    values = metrics.evaluate(counts, threshold=0.5, ks=(1, 10))
    assert values["n"].value == len(scores)
    assert values["roc_auc"].value is None and values["precision_at_10"].value is None
    if len(scores) == 0:
        assert all(v.value is None for name, v in values.items() if not name.startswith("n"))
    else:
        assert values["decision_rate"].value == np.mean(np.array(scores) >= 0.5)
    if not any(label == 1 for label in labels):
        assert values["pr_auc"].value is None and values["recall"].value is None


def test_scores_on_bin_edges_follow_score_at_or_above_threshold():
    scores = [0.0, 0.5, np.nextafter(0.5, 0), 0.117, np.nextafter(0.117, 0), 1.0]
    counts = binned(scores, [1, 0, 1, 0, 1, 0])
    edge = {value: int(np.flatnonzero(value == EDGES)[0]) for value in (0.117, 0.5)}
    assert list(np.flatnonzero(counts.rows)) == [0, edge[0.117] - 1, edge[0.117], edge[0.5] - 1, edge[0.5], BINS - 1]
    assert metrics.above_threshold(counts, 0.5).value == 2 / 6
    assert metrics.above_threshold(counts, 1.0).binning_error == 1 / 6  # 1.0 shares the last bin


@settings(max_examples=60, deadline=None)
@given(rows(), st.floats(0, 1))
def test_threshold_for_rate_is_the_lowest_grid_threshold_within_the_rate(data, rate):
    scores, labels = data
    threshold = metrics.threshold_for_rate(binned(scores, labels), rate)
    if threshold < 1:
        assert np.mean(scores >= threshold) <= rate + 1e-12
    if threshold > 0:
        assert np.mean(scores >= EDGES[metrics.threshold_bin(threshold) - 1]) > rate


def test_the_brier_decomposition_adds_up_when_scores_are_constant_within_calibration_bins():
    """Murphy: Brier = reliability - resolution + uncertainty, exactly when each bin holds one forecast value."""
    rng = np.random.default_rng(11)
    scores = rng.choice(np.arange(10) / 10 + 0.0505, 4000)  # one value per tenth, inside a single grid bin
    labels = (rng.random(4000) < np.clip(scores * 1.3 - 0.1, 0, 1)).astype(int)
    parts = {k: v.value for k, v in metrics.brier_decomposition(binned(scores, labels)).items()}
    observed = {s: labels[scores == s].mean() for s in np.unique(scores)}
    weights = {s: (scores == s).mean() for s in observed}
    base = labels.mean()
    assert parts["uncertainty"] == pytest.approx(base * (1 - base))
    assert parts["resolution"] == pytest.approx(sum(weights[s] * (observed[s] - base) ** 2 for s in observed))
    assert parts["reliability"] == pytest.approx(sum(weights[s] * (s - observed[s]) ** 2 for s in observed), abs=1e-5)
    total = parts["reliability"] - parts["resolution"] + parts["uncertainty"]
    assert total == pytest.approx(brier_score_loss(labels, scores), abs=1e-4)
