"""Drift metrics against independent references on the raw rows, and drift reports on simulated production.

Stated tolerances (binned metrics on the baseline's buckets, p/q = bucket shares):
- PSI, Jensen-Shannon, mean/std shift, missing-rate delta, new-category share: 1e-9.
- Wasserstein: |binned - scipy| <= 0.5 * sum_i width_i * (p_i + q_i) (before dividing by the baseline std).
- KS: binned <= scipy's ks_2samp <= binned + max_i max(p_i, q_i).
"""

import collections
import datetime as dt
import json
import shutil
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp, wasserstein_distance

from closedloop.core.lake import Lake, LakeError
from closedloop.core.names import ALL
from closedloop.core.specs import DriftSpec
from closedloop.drift import measures as drift
from closedloop.drift.baseline import freeze_baseline
from closedloop.drift.daily import drift_of_day
from closedloop.drift.domain_classifier import domain_classifier_auc, sample_day
from closedloop.drift.figures import decision_rate_figure, distribution_figure, psi_heatmap, score_distribution_figure
from closedloop.drift.measures import ColumnProfile, Comparison, expected_distinct
from closedloop.drift.profiles import PROFILE_SCHEMA, merge_profiles, profile_day, profile_table
from closedloop.drift.report import ALL_INPUTS, drift_report, unjudged_counts
from closedloop.inputs.ingest import ingest_predictions
from closedloop.registry import drift_limit_problems, load_registry
from closedloop.simulator import simulate
from tests.helpers import TEST_REGISTRY, hand_made_baseline

DAY = dt.date(2026, 9, 3)

# The `drift:` block proposed for the fraud model in the registry: merchant ids have a long
# tail, so ~4% of a clean day's ids are ones the 10-day baseline never saw.
FRAUD_DRIFT = """
min_rows: 500
columns:
  merchant_id:
    new_category_share: {type: upper, warn: 0.10, error: 0.20}
"""
# Truth-file signals -> the drift metric that should catch them.
SIGNAL_METRICS = {"drift.missing_rate": "missing_rate_delta", "drift.new_category_share": "new_category_share"}


def profile_of(values, baseline, column="x") -> ColumnProfile:
    table = pa.table({"model_version": ["v11"] * len(values), column: values})
    [row] = [r for r in merge_profiles([profile_table(table, baseline, DAY)]).to_pylist() if r["column"] == column]
    return ColumnProfile.from_row(row)


def direct_psi(p: np.ndarray, q: np.ndarray) -> float:
    """PSI as the module states it: empty buckets count as a share of 1e-4."""
    p, q = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
    return float(np.sum((p - q) * np.log(p / q)))


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    sizes=st.tuples(st.integers(20, 3_000), st.integers(20, 3_000)),
    shift=st.floats(-2.0, 2.0),
    scale=st.floats(0.3, 3.0),
    rounded=st.booleans(),
)
def test_numeric_metrics_match_references_on_raw_rows(seed, sizes, shift, scale, rounded):
    rng = np.random.default_rng(seed)
    a = rng.lognormal(0.0, 0.8, sizes[0])
    b = rng.lognormal(shift, scale, sizes[1])
    if rounded:  # ties, and values exactly on the edges
        a, b = np.round(a), np.round(b)
    edges = np.unique(np.quantile(a, np.arange(20) / 20, method="inverted_cdf"))
    baseline = hand_made_baseline({"x": list(edges)}, {})
    c = Comparison("x", profile_of(b, baseline), profile_of(a, baseline), baseline.numeric["x"], None)
    p = np.bincount(np.searchsorted(edges, b, side="right"), minlength=edges.size + 1) / b.size
    q = np.bincount(np.searchsorted(edges, a, side="right"), minlength=edges.size + 1) / a.size

    assert drift.psi(c) == pytest.approx(direct_psi(p, q), abs=1e-9)
    assert drift.js_distance(c) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-9)
    assert drift.mean_shift(c) == pytest.approx((b.mean() - a.mean()) / a.std(ddof=1), rel=1e-9, abs=1e-9)
    assert drift.std_shift(c) == pytest.approx((b.std(ddof=1) - a.std(ddof=1)) / a.std(ddof=1), rel=1e-9, abs=1e-9)

    support = np.concatenate([[min(a.min(), b.min(), edges[0])], edges, [max(a.max(), b.max(), edges[-1])]])
    bound = 0.5 * np.sum(np.diff(support) * (p + q))
    assert abs(drift.wasserstein(c) * a.std(ddof=1) - wasserstein_distance(a, b)) <= bound + 1e-9

    exact_ks = ks_2samp(a, b).statistic
    assert drift.ks(c) <= exact_ks + 1e-12
    assert exact_ks <= drift.ks(c) + max(p.max(), q.max()) + 1e-12


def test_binned_metrics_track_a_shift_of_the_mean():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 50_000), rng.normal(0.3, 1, 50_000)
    edges = [*np.unique(np.quantile(a, np.arange(20) / 20, method="inverted_cdf")), np.nextafter(a.max(), np.inf)]
    baseline = hand_made_baseline({"x": edges}, {})
    c = Comparison("x", profile_of(b, baseline), profile_of(a, baseline), baseline.numeric["x"], None)
    assert drift.mean_shift(c) == pytest.approx(0.3, abs=0.02)
    assert drift.ks(c) == pytest.approx(ks_2samp(a, b).statistic, abs=0.01)
    # The outer quantile bins stretch to the min and max, where spreading mass evenly overstates W.
    assert wasserstein_distance(a, b) == pytest.approx(0.3, abs=0.01)
    assert drift.wasserstein(c) == pytest.approx(0.3, abs=0.075)


@settings(max_examples=30, deadline=None)
@given(
    reference=st.lists(st.one_of(st.none(), st.sampled_from("abcdef")), min_size=5, max_size=400),
    current=st.lists(st.one_of(st.none(), st.sampled_from("abcdefxyz")), min_size=5, max_size=400),
    top_size=st.integers(1, 4),
)
def test_categorical_metrics_match_counting(reference, current, top_size):
    seen = collections.Counter(v for v in reference if v is not None)
    top = [v for v, _ in seen.most_common(top_size)]
    baseline = hand_made_baseline({}, {"c": (top, list(seen))})
    c = Comparison(
        "c", profile_of(current, baseline, "c"), profile_of(reference, baseline, "c"), baseline.categorical["c"], None
    )

    def shares(values):
        present = [v for v in values if v is not None]
        counts = np.array([present.count(v) for v in top] + [sum(v not in top for v in present)], dtype=float)
        return counts / counts.sum() if counts.sum() else None

    p, q = shares(current), shares(reference)
    if p is None or q is None:
        assert np.isnan(drift.psi(c)) and np.isnan(drift.js_distance(c))
    else:
        assert drift.psi(c) == pytest.approx(direct_psi(p, q), abs=1e-9)
        assert drift.js_distance(c) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-9)
    present = [v for v in current if v is not None]
    if present:
        assert drift.new_category_share(c) == pytest.approx(
            sum(v not in seen for v in present) / len(present), abs=1e-9
        )
    assert drift.missing_rate_delta(c) == pytest.approx(
        current.count(None) / len(current) - reference.count(None) / len(reference), abs=1e-9
    )


def test_expected_distinct_values_and_cardinality_ratio():
    counts = np.full(100, 10.0)  # no value seen once: nothing unseen expected
    assert expected_distinct(counts, 50) == pytest.approx(100 * (1 - (1 - 1 / 100) ** 50), rel=1e-12)

    rng = np.random.default_rng(2)
    ids = lambda n: [f"m{k}" for k in rng.zipf(1.2, n) % 3_000]  # noqa: E731
    reference = ids(30_000)
    known = collections.Counter(reference)
    baseline = hand_made_baseline({}, {"merchant_id": ([v for v, _ in known.most_common(50)], dict(known))})
    expected = expected_distinct(np.array(list(known.values()), dtype=float), 3_000)
    for day, ratio in ((ids(3_000), (0.9, 1.1)), (ids(1_800) + [f"T{i}" for i in range(1_200)], (1.5, np.inf))):
        c = Comparison(
            "merchant_id", profile_of(day, baseline, "merchant_id"), None, baseline.categorical["merchant_id"], None
        )
        assert drift.cardinality_ratio(c) == pytest.approx(len(set(day)) / expected, rel=0.05)  # HyperLogLog's error
        assert ratio[0] < drift.cardinality_ratio(c) < ratio[1]


def test_share_above_threshold_is_exact_at_an_edge():
    rng = np.random.default_rng(4)
    a, b = rng.beta(1, 20, 5_000), rng.beta(1, 10, 4_000)
    edges = sorted(set(np.quantile(a, np.arange(20) / 20, method="inverted_cdf")) | {0.1})
    baseline = hand_made_baseline({"score": edges}, {})
    c = Comparison(
        "score", profile_of(b, baseline, "score"), profile_of(a, baseline, "score"), baseline.numeric["score"], 0.1
    )
    assert drift.share_above_threshold(c) == pytest.approx(np.mean(b >= 0.1), abs=1e-12)
    assert drift.share_above_threshold_delta(c) == pytest.approx(np.mean(b >= 0.1) - np.mean(a >= 0.1), abs=1e-12)
    assert drift.share_above_threshold(Comparison("score", c.current, c.reference, c.baseline, None)) is None


def test_every_metric_is_one_function_the_registry_knows():
    computed = {m.__name__ for metrics in drift.ROLE_METRICS.values() for m in metrics}
    assert computed | {"domain_classifier_auc"} == {m.name for m in drift.DRIFT_METRICS}


def test_limits_are_data_a_column_wins_over_the_model_which_wins_over_the_defaults(registry):
    spec = DriftSpec.model_validate(
        {
            "thresholds": {"psi": {"type": "upper", "warn": 0.2, "error": 0.3}},
            "columns": {
                "amount": {"psi": {"type": "upper"}},
                "merchant_id": {"cardinality_ratio": {"type": "ratio", "warn": 3}},
            },
        }
    )
    assert spec.limit("psi", "country").level(0.25) == "warn"
    assert [DriftSpec().limit("psi", "country").level(v) for v in (0.1, 0.25, 0.26)] == [
        "ok",
        "warn",
        "error",
    ]  # beyond a limit
    assert spec.limit("psi", "amount").level(99.0) == "ok"  # no limits: reported, never alerts
    assert spec.limit("ks", "amount") is None
    ratio = spec.limit("cardinality_ratio", "merchant_id")
    assert [ratio.level(v) for v in (2.9, 3.1, 1 / 3.1, 0.0)] == ["ok", "warn", "warn", "warn"]
    absolute = DriftSpec().limit("missing_rate_delta", "x")
    assert [absolute.level(v) for v in (0.01, -0.03, 0.06)] == ["ok", "warn", "error"]
    assert absolute.severity(-0.05) == pytest.approx(1.0)
    typo = registry.model("fraud").model_copy(
        update={"drift": DriftSpec.model_validate({"thresholds": {"psy": {"type": "upper", "warn": 0.1}}})}
    )
    [problem] = drift_limit_problems(typo)  # load_registry refuses the registry with this message
    assert "models.fraud.drift.thresholds: unknown drift metric(s) ['psy']" in problem and "'psi'" in problem
    with pytest.raises(ValueError, match="warn 0.3 is above error 0.2"):
        DriftSpec.model_validate({"thresholds": {"psi": {"type": "upper", "warn": 0.3, "error": 0.2}}})


def test_registry_refuses_drift_limits_for_unknown_columns(registry):
    fraud = registry.model("fraud").model_dump(by_alias=True)
    fraud["drift"] = {"columns": {"amout": {"psi": {"type": "upper", "warn": 0.1}}}}
    with pytest.raises(ValueError, match="drift.columns names"):
        type(registry.model("fraud")).model_validate(fraud)


# --- simulated production ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    """24 simulated days of the fraud model, ingested, profiled on the baseline, and judged day by day."""
    root = tmp_path_factory.mktemp("production")
    result = simulate(root / "landing", days=24, fraud_rows_per_day=3_000, triage_rows_per_day=100)
    registry = load_registry(TEST_REGISTRY, landing=str(root / "landing"), lake=str(root / "lake"))
    lake = Lake(registry.lake, registry.landing)
    fraud = registry.model("fraud").model_copy(update={"drift": DriftSpec.model_validate(yaml.safe_load(FRAUD_DRIFT))})
    days = [result.start + dt.timedelta(days=i) for i in range(result.days)]
    for day in days:
        ingest_predictions(lake, fraud, day)
    baseline = freeze_baseline(lake, fraud)
    profiles = [profile_day(lake, fraud, baseline, day) for day in days]
    for day, profile in zip(days, profiles, strict=False):
        lake.write_partition("fraud", "profiles", day, profile)
    reports = [
        drift_report(fraud, baseline, profiles[i], pa.concat_tables(profiles[max(0, i - 6) : i + 1])).to_pandas()
        for i in range(len(days))
    ]
    truth = [
        i
        for i in json.loads(result.truth_path.read_text())["incidents"]
        if i["model"] == "fraud" and i["signal"] in SIGNAL_METRICS
    ]
    return SimpleNamespace(
        lake=lake, fraud=fraud, days=days, baseline=baseline, profiles=profiles, reports=reports, truth=truth
    )


def status(report, column, metric, version=ALL, window="day"):
    [value] = report[
        (report["column"] == column)
        & (report["metric"] == metric)
        & (report["version"] == version)
        & (report["window"] == window)
    ]["status"]
    return value


def test_each_drift_incident_is_an_error_on_its_first_day_and_quiet_before(production):
    assert {i["column"] for i in production.truth} == {"avg_amount_30d", "ip_reputation", "merchant_id"}
    for incident in production.truth:
        metric, first = SIGNAL_METRICS[incident["signal"]], incident["start_day"]
        assert status(production.reports[first], incident["column"], metric) == "error", incident["id"]
        assert status(production.reports[first], incident["column"], metric, version="v11") == "error", incident["id"]
        after_baseline = range(10, first)
        assert [status(production.reports[d], incident["column"], metric) for d in after_baseline] == ["ok"] * len(
            after_baseline
        )


def clean(production, day: int, window: int) -> bool:
    """Whether the window ending on ``day`` (after the baseline's 10 days) touches no incident."""
    days = range(day - window + 1, day + 1)
    return day >= 10 and not any(i["start_day"] <= d <= i["end_day"] for i in production.truth for d in days)


def test_clean_days_raise_no_false_alerts(production):
    alerts = {}
    for window, days in (("day", 1), ("7d", 7)):
        for d, report in enumerate(production.reports):
            if clean(production, d, days):
                raised = report[(report["window"] == window) & report["status"].isin(["warn", "error"])]
                alerts[(window, d)] = sorted(zip(raised["column"], raised["metric"], raised["version"], strict=False))
    assert sorted(alerts) == [("7d", 10), ("7d", 11), *[("day", d) for d in (10, 11, 19, 23)]]
    assert {key: found for key, found in alerts.items() if found} == {}


def test_thin_traffic_is_not_enough_data_and_never_alerts(production):
    raw = production.lake.read_partition("fraud", "predictions", production.days[12]).slice(0, 300)
    canary = raw.set_column(
        raw.schema.get_field_index("model_version"), "model_version", pa.array(["v12"] * raw.num_rows)
    )
    day = pa.concat_tables([production.profiles[12], profile_table(canary, production.baseline, production.days[12])])
    report = drift_report(production.fraud, production.baseline, day, day).to_pandas()
    v12 = report[report["version"] == "v12"]
    assert set(v12["status"]) == {"not_enough_data"} and set(v12["rows"]) == {300}
    assert v12.loc[v12["column"] == "avg_amount_30d", "value"].notna().all()  # still measured, just not judged
    assert status(report, "avg_amount_30d", "missing_rate_delta", version="v11") == "error"


@pytest.mark.parametrize("extreme", [1e308, 1e200, -1e300])
def test_one_value_whose_square_leaves_float64_makes_the_moments_unknown_not_an_alert(production, extreme):
    raw = production.lake.read_partition("fraud", "predictions", production.days[12])
    amounts = raw.column("amount").to_pylist()
    amounts[0] = extreme
    day = raw.set_column(raw.schema.get_field_index("amount"), "amount", pa.array(amounts, pa.float64()))
    profile = profile_table(day, production.baseline, production.days[12])
    report = drift_report(production.fraud, production.baseline, profile, profile).to_pandas()
    for metric in ("mean_shift", "std_shift"):
        assert status(report, "amount", metric) == "moments_overflow"
        assert status(report, "amount", metric, version="v11") == "moments_overflow"
    assert status(report, "amount", "psi") == status(production.reports[12], "amount", "psi") == "ok"
    assert status(report, "account_age_days", "mean_shift") == "ok"
    counts = unjudged_counts(pa.Table.from_pandas(report, preserve_index=False))
    assert counts["moments_overflow"] == 8  # 2 measures x (all, v11) x (the day, its window)


def test_a_window_report_comes_from_stored_profiles_without_the_raw_predictions(production, tmp_path):
    raw = [production.lake.read_partition("fraud", "predictions", day) for day in production.days]
    last = production.days[-1]
    at_once = profile_table(pa.concat_tables(raw), production.baseline, last)
    expected = drift_report(
        production.fraud, production.baseline, production.profiles[-1], at_once, window="30d"
    ).to_pandas()

    shutil.copytree(production.lake.root, tmp_path / "lake")
    lake = Lake(tmp_path / "lake", production.lake.landing)
    shutil.rmtree(tmp_path / "lake" / "fraud" / "predictions")
    stored = [
        lake.read_partition("fraud", "profiles", day) for day in production.days if day > last - dt.timedelta(days=30)
    ]
    assert lake.partition_files("fraud", "predictions") == [] and len(stored) == 24
    report = drift_report(
        production.fraud, production.baseline, stored[-1], pa.concat_tables(stored), window="30d"
    ).to_pandas()

    floats = ["value", "severity"]  # sums of floats depend on the order of addition
    assert report.drop(columns=floats).equals(expected.drop(columns=floats))
    np.testing.assert_allclose(report[floats].to_numpy(float), expected[floats].to_numpy(float), rtol=1e-9, atol=1e-12)
    assert (report["window"] == "30d").sum() > 100 and report.loc[report["window"] == "30d", "rows"].max() > 60_000


def test_domain_classifier_tells_a_drifted_day_from_the_baseline(production):
    samples = [sample_day(production.lake, production.fraud, day) for day in production.days]
    assert samples[0].num_rows == 2_000 and samples[0].equals(
        sample_day(production.lake, production.fraud, production.days[0])
    )
    reference = pa.concat_tables(samples[:10])
    clean_day = domain_classifier_auc(production.fraud, production.baseline, reference, samples[11])
    exploded = domain_classifier_auc(production.fraud, production.baseline, reference, samples[20])
    assert clean_day.auc < 0.56 and exploded.auc > 0.65
    assert clean_day.folds == exploded.folds == 5
    # A first fold far below the limit settles a clean day; a drifted day still takes every fold.
    settled = domain_classifier_auc(production.fraud, production.baseline, reference, samples[11], settle_below=0.55)
    assert settled.folds == 1 and np.isnan(settled.auc_std) and abs(settled.auc - clean_day.auc) < 0.05
    assert (
        domain_classifier_auc(production.fraud, production.baseline, reference, samples[20], settle_below=0.55)
        == exploded
    )
    report = drift_report(
        production.fraud,
        production.baseline,
        production.profiles[20],
        production.profiles[20],
        domain_auc={"day": exploded.auc},
    )
    assert status(report.to_pandas(), ALL_INPUTS, "domain_classifier_auc") in {"warn", "error"}


def test_drift_figures_render(production):
    history = pa.concat_tables([pa.Table.from_pandas(r, preserve_index=False) for r in production.reports])
    figures = [
        psi_heatmap(history),
        distribution_figure(production.baseline, production.profiles[20], history),
        score_distribution_figure(production.fraud, production.baseline, production.profiles[20]),
        decision_rate_figure(production.fraud, production.baseline, history),
    ]
    assert all(png.startswith(b"\x89PNG") and len(png) > 10_000 for png in figures)


def test_v12s_score_shift_collapses_its_decision_rate_and_a_thin_canary_never_alerts(tmp_path):
    result = simulate(
        tmp_path / "landing", days=60, fraud_rows_per_day=1_500, triage_rows_per_day=20
    )  # the shift lasts to day 59
    registry = load_registry(TEST_REGISTRY, landing=str(tmp_path / "landing"), lake=str(tmp_path / "lake"))
    lake, fraud = Lake(registry.lake, registry.landing), registry.model("fraud")
    [shift] = [
        i for i in json.loads(result.truth_path.read_text())["incidents"] if i["id"] == "fraud_v12_calibration_shift"
    ]
    canary, full = shift["start_day"], 41  # v12 takes 10% of traffic, then all of it (simulator/fraud.py)
    for i in [*range(10), canary, full]:
        ingest_predictions(lake, fraud, result.start + dt.timedelta(days=i))
    baseline = freeze_baseline(lake, fraud)
    reports = {}
    for i in (canary, full):
        profile = profile_day(lake, fraud, baseline, result.start + dt.timedelta(days=i))
        reports[i] = drift_report(fraud, baseline, profile, profile).to_pandas()

    v12_canary = reports[canary][reports[canary]["version"] == "v12"]
    assert set(v12_canary["status"]) == {"not_enough_data"} and v12_canary["rows"].max() < fraud.drift.min_rows
    assert status(reports[full], "decision", "decision_rate_ratio", version="v12") == "error"
    assert status(reports[full], "score", "psi", version="v12") == "error"
    full_report = reports[full].set_index(["column", "version", "window", "metric"])["value"]
    assert full_report["score", "v12", "day", "share_above_threshold_delta"] < -0.01


def test_a_day_without_traffic_and_no_trailing_week_is_not_enough_data_and_a_missing_profile_says_what_to_do(
    production, tmp_path
):
    """A real log's quiet day crashed the drift asset: its trailing week had no profile rows at all."""
    lake = Lake(tmp_path / "lake", production.lake.landing)
    quiet = production.days[-1] + dt.timedelta(days=30)  # a week and more after the last traffic
    lake.write_partition("fraud", "profiles", quiet, PROFILE_SCHEMA.empty_table())
    report = drift_of_day(lake, production.fraud, production.baseline, None, quiet)
    assert report.num_rows > 0 and set(report.column("status").to_pylist()) == {"not_enough_data"}
    first = drift_of_day(production.lake, production.fraud, production.baseline, None, production.days[0])
    assert set(first.column("window").to_pylist()) == {"day", "7d"}  # a model's first day: a one-day window
    with pytest.raises(
        LakeError, match=r"fraud/drift 2026-10-25: the day has no profiles partition; materialize fraud/profiles"
    ):
        drift_of_day(lake, production.fraud, production.baseline, None, quiet + dt.timedelta(days=1))
