"""The version comparison's statistics agree with independent references and keep their error rates.

DeLong is checked against the O(m n) Mann-Whitney definition written out here, rates against
scipy's contingency and binomial tests, means against scipy's t-tests; the canary view is
checked by simulation: among canaries that changed nothing, at most 5% are ever declared
different, however often they are looked at.
"""

import datetime
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar
from scipy.stats import binomtest, chi2_contingency, norm, ttest_ind, ttest_ind_from_stats
from scipy.stats import t as student_t
from sklearn.metrics import roc_auc_score

from closedloop.compare.sequential import (
    mean_difference_sequence,
    normal_mixture_boundary,
    rate_difference_sequence,
    tightest_at,
)
from closedloop.compare.significance import (
    Difference,
    adjust_p_values,
    auc_difference_paired,
    auc_difference_unpaired,
    mean_difference,
    paired_mean_difference,
    paired_proportion_difference,
    proportion_difference,
)
from closedloop.evaluation.metrics import Z95
from closedloop.evaluation.score_bins import MIDPOINTS, ScoreCounts, score_bins
from tests.helpers import binned


def reference_delong(scores: list[np.ndarray], labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs and their covariance from the placement values' definition: psi over every positive/negative pair."""
    labels = labels.astype(bool)
    m, n = labels.sum(), (~labels).sum()
    aucs, v10, v01 = [], [], []
    for s in scores:
        x, y = s[labels][:, None], s[~labels][None, :]
        psi = (x > y) + 0.5 * (x == y)
        aucs.append(psi.mean())
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
    covariance = np.atleast_2d(np.cov(np.vstack(v10))) / m + np.atleast_2d(np.cov(np.vstack(v01))) / n
    return np.array(aucs), covariance


def interval_variance(d: Difference) -> float:
    """The variance a symmetric normal interval was built from."""
    return ((d.upper - d.lower) / (2 * Z95)) ** 2


def two_versions(seed: int, positives: int = 30, negatives: int = 50, decimals: int = 1):
    """Correlated scores of two versions on the same rows, rounded so that many pairs tie."""
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(positives, bool), np.zeros(negatives, bool)]
    shared = rng.normal(size=labels.size) + labels
    baseline = 1 / (1 + np.exp(-(shared + 0.8 * rng.normal(size=labels.size))))
    candidate = 1 / (1 + np.exp(-(1.3 * shared + 0.8 * rng.normal(size=labels.size))))
    return np.round(baseline, decimals), np.round(candidate, decimals), labels


# ROC AUC


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_paired_delong_matches_the_placement_value_definition_and_sklearn(seed):
    baseline, candidate, labels = two_versions(seed)
    result = auc_difference_paired(baseline, candidate, labels)

    aucs, s = reference_delong([baseline, candidate], labels)
    variance = s[0, 0] + s[1, 1] - 2 * s[0, 1]
    assert (baseline == np.roll(baseline, 1)).any()  # the sample has ties
    assert result.baseline == pytest.approx(roc_auc_score(labels, baseline), abs=1e-12)
    assert result.candidate == pytest.approx(roc_auc_score(labels, candidate), abs=1e-12)
    assert result.difference == pytest.approx(aucs[1] - aucs[0], abs=1e-12)
    assert interval_variance(result) == pytest.approx(variance, rel=1e-9)
    assert result.p_value == pytest.approx(2 * norm.sf(abs(aucs[1] - aucs[0]) / math.sqrt(variance)), rel=1e-9)
    assert result.test == "DeLong, paired"


def test_pairing_detects_what_the_same_rows_share():
    """Strongly correlated versions: the paired variance is far below the sum of the two variances."""
    baseline, candidate, labels = two_versions(4, positives=300, negatives=500, decimals=3)
    aucs, s = reference_delong([baseline, candidate], labels)
    paired = auc_difference_paired(baseline, candidate, labels)
    assert interval_variance(paired) < 0.5 * (s[0, 0] + s[1, 1])


@pytest.mark.parametrize("seed", [5, 6])
def test_unpaired_delong_on_bins_matches_the_definition_on_bin_midpoints(seed):
    rng = np.random.default_rng(seed)
    samples = []
    for shift in (1.0, 1.6):
        labels = rng.random(400) < 0.2
        raw = 1 / (1 + np.exp(-(rng.normal(size=400) + shift * labels - 1.5)))
        samples.append((MIDPOINTS[score_bins(raw)], labels))
    (scores_b, labels_b), (scores_c, labels_c) = samples

    result = auc_difference_unpaired(binned(scores_b, labels_b), binned(scores_c, labels_c))

    (auc_b,), var_b = reference_delong([scores_b], labels_b)
    (auc_c,), var_c = reference_delong([scores_c], labels_c)
    variance = var_b[0, 0] + var_c[0, 0]
    assert result.baseline == pytest.approx(roc_auc_score(labels_b, scores_b), abs=1e-12)
    assert result.candidate == pytest.approx(roc_auc_score(labels_c, scores_c), abs=1e-12)
    assert interval_variance(result) == pytest.approx(variance, rel=1e-9)
    assert result.p_value == pytest.approx(2 * norm.sf(abs(auc_c - auc_b) / math.sqrt(variance)), rel=1e-9)


# Rates


def test_two_proportion_z_is_the_uncorrected_chi_square_and_the_interval_is_newcombes():
    result = proportion_difference(48, 80, 56, 70)
    table = [[56, 70 - 56], [48, 80 - 48]]
    statistic, p_value, _, _ = chi2_contingency(table, correction=False)
    assert result.p_value == pytest.approx(p_value, rel=1e-9)
    assert norm.isf(result.p_value / 2) ** 2 == pytest.approx(statistic, rel=1e-9)
    # Newcombe (1998), Table II, example (a): 56/70 - 48/80 by the hybrid score method (10)
    assert result.difference == pytest.approx(0.2)
    assert (result.lower, result.upper) == pytest.approx((0.0524, 0.3339), abs=5e-5)


def test_mcnemar_is_exact_on_few_discordant_rows_and_chi_square_on_many():
    # 3 rows decided only by the baseline, 9 only by the candidate, 88 alike
    baseline = np.r_[np.ones(3), np.zeros(9), np.ones(8), np.zeros(80)].astype(bool)
    candidate = np.r_[np.zeros(3), np.ones(9), np.ones(8), np.zeros(80)].astype(bool)
    few = paired_proportion_difference(baseline, candidate)
    assert few.p_value == pytest.approx(binomtest(9, 12, 0.5).pvalue, rel=1e-12)
    assert few.test.startswith("McNemar, exact")
    assert (few.baseline, few.candidate, few.difference) == pytest.approx((0.11, 0.17, 0.06))

    # Hand-computed: 10 and 20 discordant of 100: chi-square 100 / 30, Wald variance (0.3 - 0.1^2) / 100
    baseline = np.r_[np.ones(10), np.zeros(20), np.zeros(70)].astype(bool)
    candidate = np.r_[np.zeros(10), np.ones(20), np.zeros(70)].astype(bool)
    many = paired_proportion_difference(baseline, candidate)
    assert many.test.startswith("McNemar, chi-square")
    assert many.p_value == pytest.approx(0.067889154861829, rel=1e-9)
    assert (many.lower, many.upper) == pytest.approx((0.1 - Z95 * 0.0538516480713450, 0.1 + Z95 * 0.0538516480713450))
    # many discordant rows: the chi-square agrees with the exact test
    rng = np.random.default_rng(7)
    baseline, candidate = rng.random(20_000) < 0.1, rng.random(20_000) < 0.105
    large = paired_proportion_difference(baseline, candidate)
    only_c, discordant = int((candidate & ~baseline).sum()), int((candidate != baseline).sum())
    assert 0.001 < large.p_value < 0.2
    assert large.p_value == pytest.approx(binomtest(only_c, discordant).pvalue, rel=0.05)


# Means


def test_welch_matches_scipy_from_statistics_and_on_the_rows():
    rng = np.random.default_rng(8)
    x_b, x_c = rng.gamma(2.0, 1.0, 40), rng.gamma(2.0, 1.4, 25)
    result = mean_difference(x_b.mean(), x_b.var(ddof=1), len(x_b), x_c.mean(), x_c.var(ddof=1), len(x_c))
    from_stats = ttest_ind_from_stats(x_c.mean(), x_c.std(ddof=1), 25, x_b.mean(), x_b.std(ddof=1), 40, equal_var=False)
    on_rows = ttest_ind(x_c, x_b, equal_var=False)
    assert result.p_value == pytest.approx(from_stats.pvalue, rel=1e-9)
    assert result.p_value == pytest.approx(on_rows.pvalue, rel=1e-9)
    interval = on_rows.confidence_interval(0.95)
    assert (result.lower, result.upper) == pytest.approx((interval.low, interval.high), rel=1e-9)
    assert result.difference == pytest.approx(x_c.mean() - x_b.mean())


def test_paired_t_matches_the_t_distribution_of_the_per_row_differences():
    rng = np.random.default_rng(9)
    x_b = rng.random(60)
    x_c = x_b + rng.normal(0.02, 0.05, 60)
    result = paired_mean_difference(x_b, x_c)
    d = x_c - x_b
    se = d.std(ddof=1) / math.sqrt(60)
    assert result.p_value == pytest.approx(2 * student_t.sf(abs(d.mean()) / se, 59), rel=1e-9)
    half = student_t.ppf(0.975, 59) * se
    assert (result.lower, result.upper) == pytest.approx((d.mean() - half, d.mean() + half), rel=1e-9)


# Many differences


def test_benjamini_hochberg_by_hand_leaves_missing_tests_out():
    adjusted = adjust_p_values(np.array([0.01, 0.04, 0.03, 0.20, np.nan]))
    # sorted 0.01, 0.03, 0.04, 0.20 of 4 tests: min over j >= i of 4 p_(j) / j
    assert adjusted[:4] == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.20])
    assert np.isnan(adjusted[4])
    assert np.isnan(adjust_p_values(np.array([np.nan, np.nan]))).all()


# Properties


def check_interval_and_swap(forward: Difference, backward: Difference):
    if not math.isnan(forward.lower):
        assert forward.lower <= forward.difference <= forward.upper
    assert backward.difference == pytest.approx(-forward.difference, abs=1e-12)
    assert (backward.lower, backward.upper) == pytest.approx((-forward.upper, -forward.lower), abs=1e-12, nan_ok=True)
    assert backward.p_value == pytest.approx(forward.p_value, rel=1e-9, nan_ok=True)


counts = st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))


@settings(max_examples=200, deadline=None)
@given(counts, counts)
def test_rate_differences_contain_their_estimate_and_swap_sign(b, c):
    forward, backward = proportion_difference(*b, *c), proportion_difference(*c, *b)
    check_interval_and_swap(forward, backward)
    assert forward.lower >= -1 and forward.upper <= 1


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=300))
def test_paired_rate_differences_contain_their_estimate_and_swap_sign(pairs):
    baseline, candidate = np.array(pairs).T
    check_interval_and_swap(
        paired_proportion_difference(baseline, candidate), paired_proportion_difference(candidate, baseline)
    )


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 60), st.integers(2, 60), st.sampled_from([0, 1, 2]))
def test_auc_differences_contain_their_estimate_and_swap_sign(seed, positives, negatives, decimals):
    baseline, candidate, labels = two_versions(seed, positives, negatives, decimals)
    check_interval_and_swap(
        auc_difference_paired(baseline, candidate, labels), auc_difference_paired(candidate, baseline, labels)
    )


means = st.tuples(st.floats(-1e3, 1e3), st.floats(1e-6, 1e3), st.integers(2, 10_000))


@settings(max_examples=100, deadline=None)
@given(means, means)
def test_mean_differences_contain_their_estimate_and_swap_sign(b, c):
    check_interval_and_swap(mean_difference(*b, *c), mean_difference(*c, *b))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1)).map(np.array))
def test_adjusted_p_values_keep_the_order_and_never_fall_below_the_raw_ones(p_values):
    adjusted = adjust_p_values(p_values)
    assert (adjusted >= p_values - 1e-12).all() and (adjusted <= 1).all()
    order = np.argsort(p_values, kind="stable")
    assert (np.diff(adjusted[order]) >= -1e-12).all()


# Degenerate input


@pytest.mark.parametrize(
    ("difference", "why"),
    [
        (auc_difference_paired([0.1, 0.2], [0.3, 0.4], [0, 0]), "positives and negatives"),
        (auc_difference_paired([0.1, 0.9, 0.5], [0.3, 0.4, 0.5], [1, 0, 0]), "at least two"),
        (auc_difference_paired([0.2, 0.9, 0.1, 0.4], [0.2, 0.9, 0.1, 0.4], [1, 1, 0, 0]), "no variance"),
        (auc_difference_unpaired(ScoreCounts.empty(), ScoreCounts.empty()), "positives and negatives"),
        (auc_difference_unpaired(binned([0.9, 0.1], [1, 0]), binned([0.9, 0.1], [1, 0])), "at least two"),
        (proportion_difference(0, 0, 3, 10), "at least one row"),
        (paired_proportion_difference([], []), "no rows"),
        (paired_proportion_difference([True, False], [True, False]), "agree on every row"),
        (mean_difference(1.0, 0.5, 1, 2.0, 0.5, 10), "at least two rows"),
        (mean_difference(1.0, 0.0, 5, 1.0, 0.0, 10), "no variance"),
        (paired_mean_difference([], []), "at least two rows"),
        (paired_mean_difference([1.0, 2.0], [1.5, 2.5]), "no variance"),
    ],
)
def test_degenerate_input_says_why_there_is_no_test(difference, why):
    assert math.isnan(difference.p_value) and math.isnan(difference.lower) and math.isnan(difference.upper)
    assert why in difference.test
    assert not difference.significant()
    assert json.loads(json.dumps(difference.as_dict(), allow_nan=False))["p_value"] is None


def test_rates_without_any_success_keep_their_interval_but_have_no_p_value():
    result = proportion_difference(0, 1000, 0, 1000)
    assert result.difference == 0 and math.isnan(result.p_value) and "only failures" in result.test
    assert result.lower < 0 < result.upper < 0.01


def test_significant_follows_the_p_value():
    assert proportion_difference(20, 1000, 45, 1000).significant()
    assert not proportion_difference(20, 1000, 22, 1000).significant()
    assert proportion_difference(20, 1000, 45, 1000).as_dict()["test"] == "two-proportion z, Newcombe interval"


# The canary view

DAYS = tuple(datetime.date(2026, 3, 1) + datetime.timedelta(days=d) for d in range(30))
CANARIES = 1000
REQUESTS_PER_DAY = 3000  # per version


def daily_canaries(seed: int, rate_b: float, rate_c: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each canary's daily decisions under both versions (canary x day), and the requests per day."""
    rng = np.random.default_rng(seed)
    shape = (CANARIES, len(DAYS))
    trials = np.full(len(DAYS), REQUESTS_PER_DAY)
    return rng.binomial(REQUESTS_PER_DAY, rate_b, shape), rng.binomial(REQUESTS_PER_DAY, rate_c, shape), trials


def test_null_canaries_looked_at_daily_are_rarely_declared_different_unlike_a_daily_z_test():
    successes_b, successes_c, trials = daily_canaries(11, 0.02, 0.02)
    sequences = [
        rate_difference_sequence(DAYS, b, trials, c, trials) for b, c in zip(successes_b, successes_c, strict=True)
    ]
    ever_certain = np.mean([s.first_certain_day() is not None for s in sequences])
    # The mixture boundary is conservative over a finite horizon (0.8% with this seed, about 1.3%
    # over seeds: a binomial standard error of 0.4% over 1000 canaries), so 5% needs no Monte-Carlo slack.
    assert ever_certain <= 0.05

    rows = np.cumsum(trials)
    rate_b, rate_c = np.cumsum(successes_b, axis=1) / rows, np.cumsum(successes_c, axis=1) / rows
    pooled = (rate_b + rate_c) / 2
    z = (rate_c - rate_b) / np.sqrt(pooled * (1 - pooled) * 2 / rows)
    naive_ever = np.mean((np.abs(z) > norm.isf(0.025)).any(axis=1))
    assert naive_ever > 0.15  # 30% with this seed: 30 looks at a 5% test
    assert np.mean(np.abs(z[:, -1]) > norm.isf(0.025)) == pytest.approx(0.05, abs=0.02)  # one look: 5%


def test_canaries_with_a_real_change_are_declared_certain_and_cover_the_true_difference():
    successes_b, successes_c, trials = daily_canaries(12, 0.02, 0.03)
    sequences = [
        rate_difference_sequence(DAYS, b, trials, c, trials) for b, c in zip(successes_b, successes_c, strict=True)
    ]
    first_days = [s.first_certain_day() for s in sequences]
    assert np.mean([d is not None for d in first_days]) > 0.9
    assert all(d in DAYS for d in first_days if d is not None)
    assert all(s.lower[DAYS.index(d)] > 0 for s, d in zip(sequences, first_days, strict=True) if d is not None)
    missed = np.mean([((s.lower > 0.01) | (s.upper < 0.01)).any() for s in sequences])
    assert missed <= 0.05  # the true difference stays inside on every day


def test_null_canaries_on_a_skewed_mean_are_rarely_declared_different():
    rng = np.random.default_rng(13)
    canaries, per_day = 300, 300
    latencies = rng.gamma(2.0, 40.0, (2, canaries, len(DAYS), per_day))  # the same distribution for both
    sums, squares = latencies.sum(axis=-1), (latencies**2).sum(axis=-1)
    rows = np.full(len(DAYS), per_day)
    ever_certain = np.mean(
        [
            mean_difference_sequence(
                DAYS, sums[0, i], squares[0, i], rows, sums[1, i], squares[1, i], rows
            ).first_certain_day()
            is not None
            for i in range(canaries)
        ]
    )
    assert ever_certain <= 0.05  # 0.7% with this seed, about 1% over seeds (standard error 0.6%)


def test_the_mean_sequence_follows_the_running_means_of_the_rows():
    rng = np.random.default_rng(14)
    rows_b, rows_c = rng.integers(2, 50, len(DAYS)), rng.integers(2, 50, len(DAYS))
    values_b = [rng.normal(1.0, 1.0, k) for k in rows_b]
    values_c = [rng.normal(1.5, 2.0, k) for k in rows_c]
    cs = mean_difference_sequence(
        DAYS,
        [v.sum() for v in values_b],
        [(v**2).sum() for v in values_b],
        rows_b,
        [v.sum() for v in values_c],
        [(v**2).sum() for v in values_c],
        rows_c,
    )
    for day in (0, 9, 29):
        seen_b, seen_c = np.concatenate(values_b[: day + 1]), np.concatenate(values_c[: day + 1])
        assert cs.estimate[day] == pytest.approx(seen_c.mean() - seen_b.mean())
        se = math.sqrt(seen_b.var(ddof=1) / seen_b.size + seen_c.var(ddof=1) / seen_c.size)
        effective_rows = seen_b.size * seen_c.size / (seen_b.size + seen_c.size)
        rho = tightest_at(rows_b[0] * rows_c[0] / (rows_b[0] + rows_c[0]) * 30, 0.05)
        half = se * normal_mixture_boundary(np.array([effective_rows]), rho, 0.05)[0] / math.sqrt(effective_rows)
        assert (cs.lower[day], cs.upper[day]) == pytest.approx((cs.estimate[day] - half, cs.estimate[day] + half))
        assert half > Z95 * se  # the price of looking every day


def test_the_boundary_by_hand_and_rho_tuned_to_be_tightest_where_asked():
    # v = 100, rho = 10, alpha = 0.05: sqrt(110 log(110 / 0.025)) = sqrt(110 x 8.38936) = sqrt(922.83)
    assert normal_mixture_boundary(np.array([100.0]), 10.0, 0.05)[0] == pytest.approx(30.3781, abs=1e-4)
    for v_opt, alpha in [(1e3, 0.05), (4.5e4, 0.05), (1e5, 0.01)]:
        best = minimize_scalar(
            lambda log_rho, v=v_opt, a=alpha: normal_mixture_boundary(np.array([v]), math.exp(log_rho), a)[0],
            bounds=(0, 20),
            method="bounded",
        )
        assert normal_mixture_boundary(np.array([v_opt]), tightest_at(v_opt, alpha), alpha)[0] == pytest.approx(
            best.fun, rel=1e-3
        )


def test_days_without_traffic_or_variance_have_no_interval_and_are_never_certain():
    zeros = np.zeros(3)
    empty = rate_difference_sequence(DAYS[:3], zeros, zeros, zeros, zeros)
    assert np.isnan(empty.estimate).all() and np.isnan(empty.lower).all() and empty.first_certain_day() is None

    late = rate_difference_sequence(DAYS[:3], [0, 0, 40], [0, 100, 1000], [0, 0, 90], [0, 100, 1000])
    assert np.isnan(late.lower[:2]).all() and late.estimate[1] == 0  # day 2: traffic, but no decision yet
    assert late.first_certain_day() == DAYS[2]
    document = json.loads(json.dumps(late.as_dict(), allow_nan=False))
    assert document["lower"][:2] == [None, None] and document["first_certain_day"] == DAYS[2].isoformat()
    assert document["estimate"][2] == pytest.approx((90 - 40) / 1100)  # running: every row so far

    with pytest.raises(ValueError, match="one value per day"):
        rate_difference_sequence(DAYS[:3], [1, 2], [10, 10], [1, 2], [10, 10])
