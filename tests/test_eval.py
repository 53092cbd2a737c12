"""Outcomes, evaluation statistics, rolling windows, performance estimation and figures.

Hand-made lakes check the rules (latest label wins, late labels, maturity, merging, version
rollouts, tiny segments); a simulated production run checks that the incidents show up where
a model owner would look for them.
"""

import datetime as dt
import json
import shutil
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bench.estimation
from bench.estimation import clean_comparisons, daily_counts
from closedloop.core.lake import Lake, LakeError
from closedloop.core.specs import EvaluationSpec
from closedloop.evaluation import metrics
from closedloop.evaluation.estimation import (
    ESTIMATED_METRICS,
    MIN_REFERENCE_LABELS,
    estimate_performance,
    estimate_vs_realised,
    estimate_window,
)
from closedloop.evaluation.eval_stats import EVAL_STATS_SCHEMA, eval_stats, merge_eval_stats, score_counts
from closedloop.evaluation.figures import eval_figures, write_eval_figures
from closedloop.evaluation.outcomes import outcomes_for_day
from closedloop.evaluation.rolling_eval import daily_decision_rates, rolling_eval, window_stats
from closedloop.evaluation.score_bins import BINS, ScoreCounts
from closedloop.inputs.ingest import ingest_labels, ingest_predictions
from closedloop.registry import load_registry
from closedloop.simulator import DEFAULT_START, simulate
from tests.helpers import FRAUD, TEST_REGISTRY, at, binned, fraud_rows, label_rows, land, outcomes_table

DAY = "2026-09-03"


def day(offset: int, start: str | dt.date = DEFAULT_START) -> dt.date:
    return dt.date.fromisoformat(str(start)) + dt.timedelta(days=offset)


# Outcomes


def test_latest_label_wins_and_a_later_label_partition_changes_the_day(registry, lake):
    fraud = registry.model("fraud")
    land(lake, "fraud", "predictions", DAY, fraud_rows(DAY, ["a", "b", "c"]))
    ingest_predictions(lake, fraud, DAY)
    land(
        lake,
        "fraud",
        "labels",
        day(2, DAY).isoformat(),
        label_rows(["a", "b"], [0, 1], at(day(2, DAY).isoformat(), 12)),
    )
    ingest_labels(lake, fraud, day(2, DAY))

    before = outcomes_for_day(lake, fraud, DAY, day(5, DAY))
    land(lake, "fraud", "labels", day(5, DAY).isoformat(), label_rows(["a"], [1], at(day(5, DAY).isoformat(), 9)))
    ingest_labels(lake, fraud, day(5, DAY))
    after = outcomes_for_day(lake, fraud, DAY, day(5, DAY))

    labels = lambda o: dict(zip(o.table["prediction_id"].to_pylist(), o.table["label"].to_pylist(), strict=False))  # noqa: E731
    assert labels(before) == {"a": 0, "b": 1, "c": None}
    assert labels(after) == {"a": 1, "b": 1, "c": None}  # the correction that arrived later wins
    assert before.summary.n_labeled == after.summary.n_labeled == 2
    assert before.summary.coverage == pytest.approx(2 / 3)
    assert (after.summary.n_positive, before.summary.n_positive) == (2, 1)
    a = after.table.filter(pa.compute.equal(after.table["prediction_id"], "a")).to_pylist()[0]
    assert a["label_delay_hours"] == pytest.approx((at(day(5, DAY).isoformat(), 9) - a["ts"]).total_seconds() / 3600)
    assert not after.summary.mature and after.summary.maturity_date == day(45, DAY)
    assert json.loads(json.dumps(after.summary.as_dict()))["as_of"] == day(5, DAY).isoformat()
    assert outcomes_for_day(lake, fraud, DAY, day(1, DAY)).summary.n_labeled == 0  # as seen before any label


def test_labels_are_matured_only_if_known_at_the_horizon(registry, lake):
    fraud = registry.model("fraud").model_copy(
        update={"labels": registry.model("fraud").labels.model_copy(update={"maturity_days": 3})}
    )
    land(lake, "fraud", "predictions", DAY, fraud_rows(DAY, ["a", "b", "c"]))
    ingest_predictions(lake, fraud, DAY)
    for offset, ids in ((1, ["a"]), (3, ["b"]), (4, ["c"])):
        arrival = day(offset, DAY).isoformat()
        land(lake, "fraud", "labels", arrival, label_rows(ids, [1], at(arrival, 23, 59)))
        ingest_labels(lake, fraud, arrival)

    early = outcomes_for_day(lake, fraud, DAY, day(2, DAY))
    late = outcomes_for_day(lake, fraud, DAY, day(4, DAY))

    assert not early.summary.mature and early.summary.n_matured == 0  # the horizon has not passed yet
    assert late.summary.mature
    matured = dict(zip(late.table["prediction_id"].to_pylist(), late.table["label_matured"].to_pylist(), strict=False))
    assert matured == {"a": True, "b": True, "c": False}  # c arrived after the horizon (day + 3)


def test_labels_that_arrive_before_their_prediction_is_ingested_still_join(registry, lake):
    fraud = registry.model("fraud")
    land(lake, "fraud", "predictions", DAY, fraud_rows(DAY, ["a", "b"]))
    land(lake, "fraud", "labels", DAY, label_rows(["a"], [1], at(DAY, 23)))
    assert ingest_labels(lake, fraud, DAY).unknown_predictions == 1  # prediction not in the lake yet
    ingest_predictions(lake, fraud, DAY)
    assert outcomes_for_day(lake, fraud, DAY, DAY).table["label"].to_pylist() == [1, None]


def test_outcomes_refuse_an_as_of_before_the_day_and_a_missing_day(registry, lake):
    fraud = registry.model("fraud")
    with pytest.raises(ValueError, match="before the prediction day"):
        outcomes_for_day(lake, fraud, DAY, "2026-09-02")
    with pytest.raises(LakeError, match="ingest the day first"):
        outcomes_for_day(lake, fraud, DAY, DAY)


# Evaluation statistics

SEGMENT_VALUES = st.sampled_from(["DE", "US", None])


@settings(max_examples=20, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 1),
            st.sampled_from([0, 1, None]),
            st.booleans(),
            st.sampled_from(["v11", "v12"]),
            SEGMENT_VALUES,
            st.booleans(),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_stats_of_two_days_merge_into_the_stats_of_all_their_rows(rows):
    def stats(part, when):
        scores, labels, matured, versions, country, _ = zip(*part, strict=False) if part else ([],) * 6
        table = outcomes_table(
            scores,
            labels,
            versions=list(versions),
            matured=[m and label is not None for m, label in zip(matured, labels, strict=False)],
            segments={"country": list(country)},
        )
        return eval_stats(table, FRAUD, when)

    first = [r for r in rows if r[5]]
    second = [r for r in rows if not r[5]]
    whole = merge_eval_stats([stats(rows, day(0))])
    assert merge_eval_stats([stats(first, day(0)), stats(second, day(1))]).equals(whole)

    frame = whole.to_pandas()
    assert frame.groupby("segment").n.sum().to_dict() == {"all": len(rows), "country": len(rows), "channel": len(rows)}
    assert frame.bin.between(0, BINS - 1).all() and (frame.n > 0).all()
    unlabeled = frame[frame.label_state == "unlabeled"]
    assert not unlabeled.matured.any()


def test_eval_stats_have_the_documented_schema():
    stats = eval_stats(outcomes_table([0.2, 0.9], [1, None]), FRAUD, day(0))
    assert stats.schema == EVAL_STATS_SCHEMA
    assert set(stats["segment"].to_pylist()) == {"all", "country", "channel"}


# Rolling windows


def write_stats(lake, model, when, **rows):
    lake.write_partition(model.name, "eval_stats", when, eval_stats(outcomes_table(**rows), model, when))


def test_windows_cross_a_version_rollout_and_tiny_segments_give_nulls(registry, lake):
    fraud = registry.model("fraud")
    rng = np.random.default_rng(0)
    for offset in range(10):
        n = 200
        labels = (rng.random(n) < 0.2).astype(int)
        versions = ["v11"] * n if offset < 5 else ["v11", "v12"] * (n // 2)
        country = ["US"] * (n - 3) + ["DE"] * 3  # DE: 3 rows a day, no positives
        labels[-3:] = 0
        write_stats(
            lake,
            fraud,
            day(offset),
            scores=np.clip(rng.normal(0.3 + 0.4 * labels, 0.15), 0, 1),
            labels=labels,
            versions=versions,
            matured=[offset < 8] * n,  # the last two days are not mature yet
            segments={"country": country},
        )

    result = rolling_eval(lake, fraud, day(9))
    week = result.document(7)

    assert (week["window_start"], week["days_with_stats"]) == (day(3).isoformat(), 7)
    assert result.document(30)["days_with_stats"] == 10
    assert week["versions"]["v11"]["n"] == 2 * 200 + 5 * 100 and week["versions"]["v12"]["n"] == 5 * 100
    assert week["all_versions"]["n"] == 7 * 200
    v12 = week["versions"]["v12"]
    assert v12["n_labeled"] == 3 * 100 and v12["immature"]["n_labeled"] == 2 * 100  # days 8-9 are immature
    assert v12["roc_auc"] > 0.8 and v12["intervals"]["roc_auc"][0] < v12["roc_auc"] < v12["intervals"]["roc_auc"][1]
    promised = {"n", "n_labeled", "roc_auc", "pr_auc", "precision", "recall", "f1", "brier", "log_loss", "ece"}
    assert set(v12) >= promised | {"decision_rate", "positive_rate", "precision_at_100", "immature", "segments"}
    tiny = week["versions"]["v11"]["segments"]["country"]["DE"]
    assert tiny["n"] == 2 * 3 + 5 * 1 and tiny["n_positive"] == 0  # DE rows alternate versions from day 5
    assert tiny["roc_auc"] is None and tiny["recall"] is None and tiny["pr_auc"] is None
    assert tiny["brier"] is not None and tiny["positive_rate"] == 0

    table = result.table.to_pandas()
    assert set(table.labels) == {"matured", "immature"} and set(table.window_days) == {7, 30}
    n = table[(table.metric == "n") & (table.labels == "matured") & (table.window_days == 7) & (table.segment == "all")]
    assert n.set_index("model_version").value.to_dict() == {"all": 1400, "v11": 900, "v12": 500}


def test_a_window_without_statistics_is_empty_not_an_error(registry, lake):
    result = rolling_eval(lake, registry.model("fraud"), day(0))
    assert result.table.num_rows == 0
    with pytest.raises(ValueError, match="no 7-day window"):
        result.document(7)


def test_statistics_counted_on_other_score_bins_are_refused_until_re_materialized(registry, lake):
    """Partitions of a closedloop that binned scores differently (none stamped, or another grid)
    would misplace every count: the window refuses them, naming the days, until they are rewritten."""
    fraud = registry.model("fraud")
    rows = {"scores": [0.2, 0.7, 0.9], "labels": [0, 1, 1]}
    for offset in range(3):
        write_stats(lake, fraud, day(offset), **rows)
    old = lake.read_partition("fraud", "eval_stats", day(1)).drop_columns(["score_grid"])  # before grids were stamped
    lake.write_partition("fraud", "eval_stats", day(1), old)
    other = lake.read_partition("fraud", "eval_stats", day(2))
    other = other.set_column(
        other.schema.get_field_index("score_grid"), "score_grid", pa.array(["uniform1000"] * other.num_rows)
    )
    lake.write_partition("fraud", "eval_stats", day(2), other)

    with pytest.raises(
        LakeError, match=f"eval_stats of {day(1)}, {day(2)} .*re-materialize.*--start {day(1)} --end {day(2)}"
    ):
        rolling_eval(lake, fraud, day(2))
    with pytest.raises(LakeError, match=f"eval_stats of {day(1)} "):
        window_stats(lake, fraud, day(1), 2)  # the old partition alone: it has no score_grid column at all
    with pytest.raises(ValueError, match="other score bins \\(uniform1000\\)"):
        score_counts(other)
    assert daily_decision_rates(lake, fraud, day(2), 3)["n"].to_pylist() == [3, 3, 3]  # decisions do not depend on bins

    for offset in (1, 2):
        write_stats(lake, fraud, day(offset), **rows)
    assert rolling_eval(lake, fraud, day(2)).document(7)["versions"]["v11"]["n"] == 9


# Simulated production


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    """60 simulated days in a lake: fraud v12 rolls out from day 35, ticket_triage loses labels on days 26-30
    and drifts from day 35. Outcomes are seen from the last day (day 59)."""
    root = tmp_path_factory.mktemp("production")
    simulate(root / "landing", days=60, fraud_rows_per_day=1500, triage_rows_per_day=800)
    registry = load_registry(TEST_REGISTRY, landing=str(root / "landing"), lake=str(root / "lake"))
    lake = Lake(registry.lake, registry.landing)
    for offset in range(60):
        for model in registry.models.values():
            ingest_predictions(lake, model, day(offset))
            ingest_labels(lake, model, day(offset))
    for name, days in (("fraud", range(34, 45)), ("ticket_triage", range(60))):
        model = registry.model(name)
        for offset in days:
            outcomes = outcomes_for_day(lake, model, day(offset), day(59)).table
            lake.write_partition(name, "eval_stats", day(offset), eval_stats(outcomes, model, day(offset)))
    return registry, lake


@pytest.mark.slow
def test_fraud_v12_decision_rate_collapses_and_its_calibration_breaks_on_canary_days(production):
    registry, lake = production
    fraud = registry.model("fraud")
    week = rolling_eval(lake, fraud, day(41)).document(7)  # days 35-41: canary, then the first full day
    v11, v12 = week["versions"]["v11"], week["versions"]["v12"]

    assert v12["decision_rate"] < v11["decision_rate"] / 4
    assert v12["intervals"]["decision_rate"][1] < v11["intervals"]["decision_rate"][0]
    # No fraud label is mature (45 days) yet: the evidence is in the immature labels.
    assert v11["n_labeled"] == v12["n_labeled"] == 0 and v12["ece"] is None
    assert v12["immature"]["ece"] > 3 * v11["immature"]["ece"]
    assert v12["immature"]["roc_auc"] > 0.8  # it still ranks well: only calibration moved
    canary = daily_decision_rates(lake, fraud, day(40), 6).to_pandas()
    rates = canary.groupby("model_version").decided.sum() / canary.groupby("model_version").n.sum()
    assert rates["v12"] < rates["v11"] / 4


@pytest.mark.slow
def test_ticket_triage_label_coverage_falls_during_the_outage_as_seen_on_day_30(production):
    registry, lake = production
    triage = registry.model("ticket_triage")
    coverage = {
        offset: outcomes_for_day(lake, triage, day(offset), day(30)).summary.coverage for offset in range(15, 31)
    }
    assert min(coverage[d] for d in range(15, 22)) > 0.75
    assert max(coverage[d] for d in range(26, 31)) < 0.05
    # The backlog lands on day 31: the same prediction day, seen a day later, is labeled again.
    assert outcomes_for_day(lake, triage, day(26), day(31)).summary.coverage > 0.75


@pytest.mark.slow
def test_ticket_triage_30_day_auc_falls_during_concept_drift(production):
    registry, lake = production
    triage = registry.model("ticket_triage")
    before = rolling_eval(lake, triage, day(30)).document(30)["versions"]["v3"]
    during = rolling_eval(lake, triage, day(59)).document(30)["versions"]["v3"]
    assert during["roc_auc"] < before["roc_auc"] - 0.015
    assert during["intervals"]["roc_auc"][1] < before["intervals"]["roc_auc"][0]
    # Day 44's window holds only ten mildly drifted days: not yet visible.
    assert rolling_eval(lake, triage, day(44)).document(30)["versions"]["v3"]["roc_auc"] > before["roc_auc"] - 0.01


def hidden_labels(counts: ScoreCounts) -> ScoreCounts:
    rows = counts.positive + counts.negative + counts.unlabeled
    return ScoreCounts(np.zeros_like(rows), np.zeros_like(rows), rows)


@pytest.mark.slow
def test_estimated_performance_matches_matured_labels_on_a_clean_period_and_not_under_drift(production):
    registry, lake = production
    triage = registry.model("ticket_triage")
    reference = score_counts(window_stats(lake, triage, day(13), 14)[0])[("v3", "all", "all")]
    for end, clean in ((22, True), (56, False)):
        target = score_counts(window_stats(lake, triage, day(end), 7)[0])[("v3", "all", "all")]
        estimate = estimate_performance(reference, hidden_labels(target), triage.threshold("v3"))
        comparison = (
            estimate_vs_realised(estimate, metrics.evaluate(target, triage.threshold("v3")))
            .to_pandas()
            .set_index("metric")
        )
        assert comparison.loc["roc_auc", "standard_error"] < 0.02
        if clean:
            assert (comparison.error.abs() <= 3 * comparison.standard_error).all(), comparison
            expected = estimate.confusion
            assert sum(expected.values()) == pytest.approx(target.n)
        else:  # the truth moved away from what the scores say: the estimate is confidently wrong
            assert comparison.loc["roc_auc", "error"] > 5 * comparison.loc["roc_auc", "standard_error"]


def test_a_reference_with_too_few_labels_of_a_class_gets_no_estimate():
    rng = np.random.default_rng(0)
    scores = rng.random(20_000)
    target = hidden_labels(binned(scores, [None] * len(scores)))
    for positives, estimated in ((MIN_REFERENCE_LABELS - 1, False), (MIN_REFERENCE_LABELS, True)):
        labels = np.zeros(len(scores), dtype=int)
        labels[np.argsort(scores)[-positives:]] = 1  # the top scores are the positives
        estimate = estimate_performance(binned(scores, labels), target, 0.5, replicates=20)
        assert (estimate is not None) == estimated, positives


@pytest.mark.slow
def test_the_estimate_states_its_error_honestly_on_clean_simulated_windows(registry, tmp_path, monkeypatch):
    """Every ticket_triage window the pipeline estimates over 40 simulated days of three seeds,
    estimated as on its last day and compared with what its labels gave once they matured: on
    windows clear of incidents the realised value is nearly always inside the stated 95% interval,
    never 3 standard errors away. A seed has only seven clean 7-day windows, six of whose days
    overlap the next one's, so the coverage is pooled over seeds: one seed's is one or two misses."""
    # The benchmark counts on the demo registry; here it counts on the tests' own.
    monkeypatch.setattr(bench.estimation, "DEFAULT_CONFIG", TEST_REGISTRY)
    comparisons = defaultdict(list)
    for seed in (7, 8, 9):
        counts, truth = daily_counts(tmp_path / str(seed), seed=seed, days=40, fraud_rows=200, triage_rows=3000)
        for comparison in clean_comparisons(seed, registry.model("ticket_triage"), counts, truth, replicates=100):
            comparisons[comparison.metric, comparison.window_days].append(comparison)
    assert set(comparisons) == {(metric, days) for metric in ESTIMATED_METRICS for days in (7, 30)}
    for key, windows in comparisons.items():
        assert len(windows) >= 15, key
        assert np.mean([c.inside for c in windows]) >= 0.8, key
        assert max(abs(c.error_in_se) for c in windows) < 3, key
    assert np.mean([c.inside for windows in comparisons.values() for c in windows]) >= 0.9


@pytest.mark.slow
def test_a_new_version_without_matured_labels_gets_no_estimate(production):
    registry, lake = production
    estimates = estimate_window(lake, registry.model("fraud"), day(44), 7, reference_days=30)
    assert set(estimates) == {"v11", "v12"} and estimates["v12"] is None
    triage = estimate_window(lake, registry.model("ticket_triage"), day(40), 7)
    assert triage["v3"].metrics["roc_auc"].value > 0.8
    # Labels mature in 3 days: on day 9 the reference holds days 0-5, six days, no whole week.
    assert estimate_window(lake, registry.model("ticket_triage"), day(8), 7) == {"v3": None}
    assert estimate_window(lake, registry.model("ticket_triage"), day(9), 7)["v3"] is not None


@pytest.mark.slow
def test_figures_render_and_mark_the_threshold_that_keeps_the_approved_rate(production, tmp_path):
    registry, lake = production
    fraud = registry.model("fraud").model_copy(update={"evaluation": EvaluationSpec(windows_days=(7,))})
    figures = eval_figures(lake, fraud, day(44), approved_rate=0.017)
    assert set(figures) == {"reliability", "score_histogram", "decision_rate", "threshold_tradeoff"}
    assert all(png.startswith(b"\x89PNG") for png in figures.values())
    # Written figures go to a copy of the lake: the module's lake is shared with the other tests.
    shutil.copytree(lake.root, tmp_path / "lake")
    own = Lake(tmp_path / "lake", lake.landing)
    paths = write_eval_figures(own, registry.model("ticket_triage"), day(59))
    assert set(paths) == set(figures)
    assert all(path.is_relative_to(own.root) and path.stat().st_size > 1000 for path in paths.values())
    v12 = score_counts(window_stats(lake, fraud, day(44), 4)[0])[("v12", "all", "all")]  # full rollout days
    keeping = metrics.threshold_for_rate(v12, 0.017)
    assert keeping < 0.5 and metrics.above_threshold(v12, keeping).value <= 0.017
