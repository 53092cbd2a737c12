"""Drift evidence: the p-value behind each figure, Benjamini-Hochberg across the day's tests, and a
figure past its limit by chance alone held back as ``not_significant``."""

import datetime as dt
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import chi2, hypergeom

from closedloop.core.names import ALL
from closedloop.core.specs import DriftSpec
from closedloop.drift.baseline import CategoricalBaseline
from closedloop.drift.evidence import bucket_p_value, decision_p_value, missing_p_value, q_values, unseen_p_value
from closedloop.drift.learned_limits import drift_limits, learn_drift_limits
from closedloop.drift.measures import ColumnProfile, Comparison
from closedloop.drift.profiles import merge_profiles
from closedloop.drift.report import drift_report
from tests.test_drift import SIGNAL_METRICS, production, status  # noqa: F401 (the module's simulated production)


def profile(counts, nulls=0, unseen=0) -> ColumnProfile:
    counts = np.asarray(counts, dtype=float)
    count = int(counts.sum())
    return ColumnProfile(count + nulls, count, nulls, 0.0, 0.0, None, None, counts, unseen, None)


def comparison(current: ColumnProfile, reference: ColumnProfile, known: dict[str, int] | None = None) -> Comparison:
    """The tests read only the counts (and, for unseen values, what the baseline held)."""
    return Comparison("x", current, reference, CategoricalBaseline((), known or {}, 0.0), None)


def pearson_p_value(table: np.ndarray) -> float:
    """The chi-square test of homogeneity by hand: sum (O - E)^2 / E on (rows - 1)(columns - 1) degrees."""
    table = table[:, table.sum(axis=0) > 0]
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = ((table - expected) ** 2 / expected).sum()
    return float(chi2.sf(statistic, (table.shape[0] - 1) * (table.shape[1] - 1)))


@given(
    st.lists(st.integers(0, 500), min_size=3, max_size=12).flatmap(
        lambda current: st.tuples(
            st.just(current), st.lists(st.integers(1, 5000), min_size=len(current), max_size=len(current))
        )
    )
)
def test_bucket_p_values_are_pearsons_test_of_homogeneity(counts):
    current, reference = counts
    p = bucket_p_value(comparison(profile(current), profile(reference)))
    if sum(current) == 0:
        assert p is None
    else:
        assert p == pytest.approx(pearson_p_value(np.array([current, reference], dtype=float)), rel=1e-9, abs=1e-12)


def test_missing_and_unseen_shares_are_tested_against_the_rest():
    same = missing_p_value(comparison(profile([900], nulls=100), profile([9000], nulls=1000)))
    moved = missing_p_value(comparison(profile([700], nulls=300), profile([9000], nulls=1000)))
    assert same == pytest.approx(1.0) and moved < 1e-20
    # The baseline's 10,000 rows hold 300 values once: its own novelty is 300 of 10,000.
    known = {f"once_{i}": 1 for i in range(300)} | {"common": 9_700}
    new = unseen_p_value(comparison(profile([1000], unseen=50), profile([10_000]), known))
    assert new == pytest.approx(pearson_p_value(np.array([[50, 950], [300, 9_700]], dtype=float)))
    assert missing_p_value(comparison(profile([10]), profile([10]))) is None  # no nulls on either side: no test


def decisions(decided: int, rows: int) -> ColumnProfile:
    """A decision column's profile: its sum is the number of positive decisions."""
    counts = np.array([rows], dtype=float)
    return ColumnProfile(rows, rows, 0, float(decided), float(decided), 0.0, 1.0, counts, 0, None)


def test_the_decision_rate_is_tested_exactly_on_decided_and_not_decided():
    # Two-sided Fisher by hand: the probability of every table at most as likely as the observed one.
    decided, rows, reference_decided, reference_rows = 5, 2_000, 13, 14_000
    null = hypergeom(rows + reference_rows, decided + reference_decided, rows)
    observed = null.pmf(decided)
    support = np.arange(0, decided + reference_decided + 1)
    by_hand = null.pmf(support)[null.pmf(support) <= observed * (1 + 1e-7)].sum()
    p = decision_p_value(comparison(decisions(decided, rows), decisions(reference_decided, reference_rows)))
    assert p == pytest.approx(by_hand, rel=1e-6)
    # A canary deciding 0.1% makes two decisions a day: twice its reference's rate is within the noise,
    # twenty times is not.
    assert decision_p_value(comparison(decisions(4, 2_000), decisions(14, 14_000))) > 0.05
    assert decision_p_value(comparison(decisions(40, 2_000), decisions(14, 14_000))) < 1e-12
    assert decision_p_value(comparison(decisions(0, 2_000), decisions(0, 14_000))) is None


@pytest.mark.parametrize("baseline_rows", [2_000, 20_000])
def test_a_clean_day_of_a_long_tailed_column_is_not_new_against_a_small_baseline(baseline_rows):
    """Ids drawn from one Zipf law: the day's unseen share depends on the baseline's size, not on a change;
    against the baseline's own novelty, the test rejects at about its level, and a day with 10% of
    brand-new ids is rejected every time."""
    rng = np.random.default_rng(11)
    popularity = 1.0 / np.arange(1, 5_001) ** 1.1
    popularity /= popularity.sum()
    clean, shifted = [], []
    for _ in range(200):
        values, counts = np.unique(rng.choice(popularity.size, baseline_rows, p=popularity), return_counts=True)
        known = {str(v): int(n) for v, n in zip(values, counts, strict=True)}
        day = rng.choice(popularity.size, 1_500, p=popularity)
        unseen = int(np.sum(~np.isin(day, values)))
        reference = profile([baseline_rows])
        clean.append(unseen_p_value(comparison(profile([1_500], unseen=unseen), reference, known)))
        brand_new = min(unseen + 150, 1_500)
        shifted.append(unseen_p_value(comparison(profile([1_500], unseen=brand_new), reference, known)))
    assert np.mean(np.array(clean) < 0.05) < 0.12
    assert np.mean(np.array(shifted) < 0.05) == 1.0


@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=40))
def test_q_values_are_benjamini_hochberg(p_values):
    m = len(p_values)
    ordered = sorted(range(m), key=lambda i: p_values[i])
    expected = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):  # q_(i) = min over j >= i of p_(j) m / j, at most 1
        index = ordered[rank - 1]
        running = min(running, p_values[index] * m / rank)
        expected[index] = running
    assert q_values(p_values) == pytest.approx(expected, abs=1e-12)


def test_figures_past_a_hair_trigger_limit_by_chance_are_held_back_and_real_drift_still_alerts(production):  # noqa: F811
    """With PSI and missing-rate limits far below a clean day's noise, the limits alone would alert
    on most columns; the tests hold back those whose change is within the noise."""
    hair_trigger = {
        "min_rows": 500,
        "thresholds": {
            "psi": {"type": "upper", "error": 0.0005},
            "missing_rate_delta": {"type": "absolute", "error": 0.0005},
        },
        "columns": production.fraud.drift.model_dump()["columns"],
    }
    fraud = production.fraud.model_copy(update={"drift": DriftSpec.model_validate(hair_trigger)})
    clean_day = 12
    report = drift_report(
        fraud, production.baseline, production.profiles[clean_day], production.profiles[clean_day]
    ).to_pandas()
    day = report[(report["window"] == "day") & report["metric"].isin(["psi", "missing_rate_delta"])]
    past_the_limit = day[day["status"].isin(["error", "not_significant"])]
    held_back = past_the_limit[past_the_limit["status"] == "not_significant"]
    assert len(past_the_limit) >= 10 and len(held_back) >= 0.8 * len(past_the_limit)
    assert (held_back["q_value"] > fraud.drift.false_alert_rate).all()
    tested = day.dropna(subset=["p_value"])
    assert len(tested) >= 10 and (tested["q_value"] >= tested["p_value"]).all()
    for incident in production.truth:  # the injected faults are errors on their first day all the same
        first = incident["start_day"]
        drifted = drift_report(
            fraud, production.baseline, production.profiles[first], production.profiles[first]
        ).to_pandas()
        metric = {"drift.missing_rate": "missing_rate_delta", "drift.new_category_share": "new_category_share"}[
            incident["signal"]
        ]
        assert status(drifted, incident["column"], metric) == "error", incident["id"]


def _learned(production, **limits):  # noqa: F811
    """The fraud model with hair-trigger written limits, the day's tests all but off, and limits learned."""
    drift = production.fraud.drift.model_dump()
    drift |= {
        "false_alert_rate": 0.999,
        "thresholds": {
            "psi": {"type": "upper", "error": 0.0005},
            "missing_rate_delta": {"type": "absolute", "error": 0.0005},
            "mean_shift": {"type": "absolute", "error": 0.001},
        },
        "learned": limits or None,
    }
    return production.fraud.model_copy(update={"drift": DriftSpec.model_validate(drift)})


def test_learned_drift_limits_are_the_baseline_days_own_spread(production):  # noqa: F811
    fraud = _learned(production, reference="first", periods=7, method="sd", k=3)
    limits = drift_limits(production.lake, fraud, production.baseline, production.days[12])
    baseline_days = range((fraud.baseline.end - fraud.baseline.start).days + 1)

    # Each baseline day's figures against the other baseline days, by the report itself.
    def held_out(d):
        others = [production.profiles[o] for o in baseline_days if o != d]
        return merge_profiles(others, across_versions=True)

    reports = [
        drift_report(
            fraud, production.baseline, production.profiles[d], production.profiles[d], reference_profile=held_out(d)
        ).to_pandas()
        for d in baseline_days
    ]

    def figures(column, metric):
        def value(report):
            chosen = report[(report["column"] == column) & (report["metric"] == metric)]
            [figure] = chosen[(chosen["version"] == ALL) & (chosen["window"] == "day")]["value"]
            return figure

        return np.array([value(report) for report in reports])

    psi = figures("amount", "psi")
    assert limits["amount", "psi"].type == "upper"
    assert limits["amount", "psi"].error == pytest.approx(psi.mean() + 3 * psi.std(ddof=1))
    shift = figures("amount", "mean_shift")
    widest = max(abs(shift.mean() - 3 * shift.std(ddof=1)), abs(shift.mean() + 3 * shift.std(ddof=1)))
    assert limits["amount", "mean_shift"].type == "absolute"
    assert limits["amount", "mean_shift"].error == pytest.approx(widest)
    # merchant_id's own written limit wins; the document is frozen and read back the same.
    assert ("merchant_id", "new_category_share") not in limits
    assert drift_limits(production.lake, fraud, production.baseline, production.days[12]) == limits
    document = production.lake.document_path("fraud", "baselines", f"{production.baseline.name}_limits")
    assert json.loads(document.read_text())["days"][0] == fraud.baseline.start.isoformat()


def test_learned_drift_limits_keep_clean_days_quiet_and_still_catch_the_faults(production):  # noqa: F811
    written = _learned(production)
    learned = _learned(production, reference="first", periods=7, method="sd", k=3)
    limits = drift_limits(production.lake, learned, production.baseline, production.days[12])
    faulty = {i["start_day"] for i in production.truth} | {
        d for i in production.truth for d in range(i["start_day"], i["end_day"] + 1)
    }
    clean_days = [d for d in range(10, len(production.days)) if d not in faulty]
    assert len(clean_days) >= 4

    def errors(model, d, **kwargs):
        report = drift_report(
            model, production.baseline, production.profiles[d], production.profiles[d], **kwargs
        ).to_pandas()
        return report[(report["window"] == "day") & (report["status"] == "error") & (report["version"] == ALL)]

    noise = sum(len(errors(written, d)) for d in clean_days)
    assert noise >= 10 * len(clean_days)  # the written limits alone: dozens of errors a clean day
    # The limits alone (the day's tests all but off): about one figure in a hundred, the tail of ten days' spread.
    assert sum(len(errors(learned, d, learned_limits=limits)) for d in clean_days) <= noise / 8
    # With the day's tests on, as a model runs: not one.
    tested = learned.model_copy(update={"drift": learned.drift.model_copy(update={"false_alert_rate": 0.01})})
    assert sum(len(errors(tested, d, learned_limits=limits)) for d in clean_days) == 0
    for incident in production.truth:
        first = errors(learned, incident["start_day"], learned_limits=limits)
        metric = SIGNAL_METRICS[incident["signal"]]
        assert ((first["column"] == incident["column"]) & (first["metric"] == metric)).any(), incident["id"]


def test_seasonal_drift_limits_sit_around_the_judged_weekday(production):  # noqa: F811
    """Fourteen baseline days whose PSI runs higher on weekends: a Saturday's limit is the Saturdays'
    mean + 3 sd of every day's distance to its own weekday's mean; a Tuesday's sits lower."""
    learned = {"reference": "first", "periods": 14, "method": "sd", "k": 3, "seasonal": "weekday"}
    drift = production.fraud.drift.model_dump() | {"learned": learned}
    window = {"start": production.fraud.baseline.start, "end": production.fraud.baseline.start + dt.timedelta(days=13)}
    fraud = production.fraud.model_copy(
        update={
            "drift": DriftSpec.model_validate(drift),
            "baseline": production.fraud.baseline.model_copy(update=window),
        }
    )
    weekdays = [d % 7 for d in range(14)]
    values = [0.02 if w >= 5 else 0.01 for w in weekdays]
    values = [v + (0.001 if d < 7 else -0.001) for d, v in enumerate(values)]  # each weekday: mean +- 0.001
    figures = {("amount", "psi"): list(zip(weekdays, values, strict=True))}
    residual_sd = np.sqrt(14 * 0.001**2 / (14 - 7))
    saturday = learn_drift_limits(fraud, figures, 5)["amount", "psi"]
    tuesday = learn_drift_limits(fraud, figures, 1)["amount", "psi"]
    assert saturday.error == pytest.approx(0.02 + 3 * residual_sd)
    assert tuesday.error == pytest.approx(0.01 + 3 * residual_sd)
