"""The metric catalog offers exactly the metrics the code computes, and every offered source parses."""

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from closedloop.control.metric_catalog import (
    FAMILY_TABLES,
    SourceError,
    eval_metrics,
    family,
    known_sources,
    metric_definition,
    metric_table,
    parse_source,
    rolling_eval_metrics,
)
from closedloop.core.specs import DRIFT_OUTPUT_COLUMNS, ProductionMetric
from closedloop.drift.measures import DRIFT_METRICS, ROLE_METRICS
from closedloop.evaluation.metrics import WINDOW_METRICS, evaluate
from closedloop.evaluation.rolling_eval import LABEL_FREE_METRICS
from closedloop.evaluation.score_bins import BINS, ScoreCounts, score_bins
from closedloop.ops.metrics import OPS_METRICS
from closedloop.ops.stats import compute_ops_stats, ops_metrics

UTC = dt.UTC


def _counts(seed: int = 3, n: int = 2_000) -> ScoreCounts:
    rng = np.random.default_rng(seed)
    scores, labels, decisions = rng.random(n), rng.random(n) < 0.3, rng.random(n) < 0.2
    arrays = [np.zeros((2, BINS)) for _ in range(3)]
    for array, rows in zip(arrays, (labels[:1500], ~labels[:1500], np.ones(n - 1500, bool)), strict=True):
        chosen = np.arange(len(rows))[rows] + (0 if array is not arrays[2] else 1500)
        np.add.at(array, (decisions[chosen].astype(int), score_bins(scores[chosen])), 1)
    return ScoreCounts(*arrays)


def test_every_window_metric_the_catalog_offers_is_what_evaluate_reports(registry):
    fraud = registry.model("fraud")
    ks = fraud.evaluation.precision_at_k
    reported = evaluate(_counts(), threshold=0.5, ks=ks)
    assert [m.name for m in rolling_eval_metrics(fraud)] == list(reported)
    assert {m.name for m in WINDOW_METRICS} | {f"precision_at_{k}" for k in ks} == set(reported)


def test_label_free_metrics_are_those_a_day_without_labels_still_reports():
    unlabeled = ScoreCounts(np.zeros((2, BINS)), np.zeros((2, BINS)), _counts().unlabeled)
    values = evaluate(unlabeled, threshold=0.5)
    assert {m.name for m in eval_metrics()} == set(LABEL_FREE_METRICS)
    assert all(values[name].value is not None for name in LABEL_FREE_METRICS)
    assert all(values[m.name].value in (None, 0) for m in WINDOW_METRICS if m.needs_labels and m.name != "n_labeled")


def test_every_ops_metric_the_catalog_offers_is_a_column_of_ops_metrics():
    n = 500
    start = dt.datetime(2026, 9, 1, tzinfo=UTC)
    table = pa.table(
        {
            "prediction_id": [f"p{i}" for i in range(n)],
            "model_version": ["v1"] * n,
            "ts": pa.array([start + dt.timedelta(seconds=60 * i) for i in range(n)], pa.timestamp("us", tz="UTC")),
            "score": np.linspace(0, 1, n),
            "decision": pa.array(np.arange(n) % 2, pa.int8()),
            "route": ["large"] * n,
            "latency_ms": np.linspace(1, 900, n),
            "cost_usd": np.full(n, 0.002),
            "is_fallback": [i % 9 == 0 for i in range(n)],
            "error": [None if i % 13 else "timeout" for i in range(n)],
        }
    )
    frame = ops_metrics(compute_ops_stats(table), by=("hour",))
    assert {m.name for m in OPS_METRICS} <= set(frame.columns)
    assert frame[[m.name for m in OPS_METRICS]].notna().all().all()


def test_every_drift_metric_the_catalog_offers_is_computed_by_a_measure():
    computed = {f.__name__ for functions in ROLE_METRICS.values() for f in functions} | {"domain_classifier_auc"}
    assert {m.name for m in DRIFT_METRICS} == computed


def test_every_metric_says_its_unit_and_which_way_is_better(registry):
    for kind in FAMILY_TABLES:
        for metric in family(registry.model("fraud"), kind):
            assert metric.unit and metric.better in ("higher", "lower", "neither") and metric.description, metric


def _offered_sources(model) -> list[str]:
    windows = model.evaluation.windows_days
    columns = model.features.all + model.segments + DRIFT_OUTPUT_COLUMNS
    sources = [f"rolling_eval.{m.name}[{w}d]" for m in rolling_eval_metrics(model) for w in windows]
    sources += [f"eval.{m.name}" for m in eval_metrics()]
    sources += [f"drift.{c}_{m.name}" for m in DRIFT_METRICS for c in columns] + ["drift.drifting_inputs[7d]"]
    sources += ["outcomes.label_coverage[3d]"] + [f"ops.{m.name}" for m in OPS_METRICS]
    return sources


def test_every_source_the_catalog_offers_parses_to_its_table(registry):
    fraud = registry.model("fraud")
    for source in _offered_sources(fraud):
        metric = ProductionMetric(name="m", kind="quality", source=source, cadence="daily", owner="team:x")
        parsed = parse_source(fraud, metric)
        assert source.startswith(parsed.kind) and parsed.kind in FAMILY_TABLES, source
        assert metric_definition(fraud, metric).name in (parsed.metric, source.split(".")[-1].split("[")[0])
    assert metric_table(fraud, "review_rate") == "predictions"


@pytest.mark.parametrize(
    "source", ["rolling_eval.roc_auc", "rolling_eval.roc_auc[90d]", "eval.roc_auc", "ops.p95", "drift.score"]
)
def test_a_source_the_catalog_does_not_offer_is_refused_by_name(registry, source):
    fraud = registry.model("fraud")
    metric = ProductionMetric(name="m", kind="quality", source=source, cadence="daily", owner="team:x")
    with pytest.raises(SourceError, match=source.replace("[", r"\[")):
        parse_source(fraud, metric)
    assert any("ops.<metric>" in line for line in known_sources(fraud))
