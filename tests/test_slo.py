"""SLOs: the metric catalog reads the right lake row, per version too, the state machine waits for
``for`` and recovery and marks its transitions, and the webhook retries then reports."""

import datetime as dt
import json
import statistics

import pyarrow as pa
import pytest
import yaml

from closedloop.control.metric_catalog import SourceError, validate_business_sql
from closedloop.control.readings import Reading, metric_readings
from closedloop.control.slo import (
    SLOState,
    latest_evaluations,
    next_state,
    read_evaluations,
    record_evaluations,
    transition,
)
from closedloop.control.slo_evaluation import evaluate_periods, evaluate_slos, subject_readings
from closedloop.control.webhook import incident_message, post_json, webhook_url
from closedloop.core.names import ALL
from closedloop.core.periods import PeriodError
from closedloop.core.specs import ProductionMetric, RegistryError, SLOSpec
from closedloop.drift.report import REPORT_SCHEMA
from closedloop.evaluation.rolling_eval import ROLLING_EVAL_SCHEMA
from closedloop.evaluation.score_bins import SCORE_GRID
from closedloop.ops.stats import compute_ops_stats
from closedloop.registry import load_registry
from tests.helpers import TEST_REGISTRY

UTC = dt.UTC
DAY = dt.date(2026, 10, 7)
NOW = dt.datetime(2026, 10, 8, 6, 0, tzinfo=UTC)


def _metric(model, name):
    return next(m for m in model.metrics if m.name == name)


def metric_value(lake, model, metric, period):
    """The pooled (all versions) reading's value, or None without data."""
    pooled = [r.value for r in metric_readings(lake, model, metric, period) if r.version == "all"]
    return pooled[0] if pooled else None


def write_rolling_eval(lake, day, auc30):
    base = {
        "window_start": day,
        "window_end": day,
        "days_with_stats": 30,
        "segment": "all",
        "segment_value": "all",
        "threshold": 0.5,
        "lower": None,
        "upper": None,
        "binning_error": None,
    }
    rows = [
        {**base, "window_days": 30, "model_version": "all", "labels": "matured", "metric": "roc_auc", "value": auc30},
        {**base, "window_days": 7, "model_version": "all", "labels": "matured", "metric": "roc_auc", "value": 0.99},
        {**base, "window_days": 30, "model_version": "v11", "labels": "matured", "metric": "roc_auc", "value": 0.98},
        {**base, "window_days": 30, "model_version": "all", "labels": "estimated", "metric": "roc_auc", "value": 0.97},
    ]
    lake.write_partition("fraud", "rolling_eval", day, pa.Table.from_pylist(rows, schema=ROLLING_EVAL_SCHEMA))


def write_drift(lake, day, psi):
    base = {
        "day": day,
        "column": "score",
        "metric": "psi",
        "threshold": 0.25,
        "severity": 0.1,
        "status": "ok",
        "rows": 1000,
    }
    rows = [
        {**base, "version": ALL, "window": "day", "value": psi},
        {**base, "version": "v11", "window": "day", "value": 0.001},
        {**base, "version": ALL, "window": "7d", "value": 0.002},
        {**base, "column": "amount", "version": ALL, "window": "day", "value": 0.003},
    ]
    lake.write_partition("fraud", "drift", day, pa.Table.from_pylist(rows, schema=REPORT_SCHEMA))


def write_predictions(lake, day, decisions, hour=10):
    n = len(decisions)
    ts = [dt.datetime.combine(day, dt.time(hour, i % 60), tzinfo=UTC) for i in range(n)]
    table = pa.table(
        {
            "prediction_id": [f"p{i}" for i in range(n)],
            "model_version": ["v11"] * n,
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "decision": pa.array(decisions, pa.int8()),
        }
    )
    lake.write_partition("fraud", "predictions", day, table)


def write_ops(lake, day, latencies_by_hour, cost=0.003, routes=("llm_large",)):
    """Requests of each hour with the given latencies, the routes taking turns."""
    rows = []
    for hour, latencies in latencies_by_hour.items():
        for i, latency in enumerate(latencies):
            ts = dt.datetime.combine(day, dt.time(hour, i % 60), tzinfo=UTC)
            rows.append(
                {
                    "ts": ts,
                    "model_version": "v3",
                    "route": routes[i % len(routes)],
                    "error": None,
                    "is_fallback": False,
                    "latency_ms": float(latency),
                    "cost_usd": cost,
                }
            )
    predictions = pa.Table.from_pylist(rows).cast(
        pa.schema(
            [
                ("ts", pa.timestamp("us", tz="UTC")),
                ("model_version", pa.string()),
                ("route", pa.string()),
                ("error", pa.string()),
                ("is_fallback", pa.bool_()),
                ("latency_ms", pa.float64()),
                ("cost_usd", pa.float64()),
            ]
        )
    )
    lake.write_partition("ticket_triage", "ops_stats", day, compute_ops_stats(predictions))


# The metric catalog


LAG = dt.timedelta(days=46)  # fraud's labels mature in 45 days: a day judges the window that had matured when it began


def test_catalog_reads_the_pooled_matured_window_and_the_all_versions_day_drift(registry, lake):
    fraud = registry.model("fraud")
    write_rolling_eval(lake, DAY - LAG, 0.71)
    write_drift(lake, DAY, 0.31)
    assert metric_value(lake, fraud, _metric(fraud, "auc_30d"), DAY) == pytest.approx(0.71)
    [reading] = [r for r in metric_readings(lake, fraud, _metric(fraud, "auc_30d"), DAY) if r.version == "all"]
    assert reading.detail == f"window ending {DAY - LAG}"
    assert metric_value(lake, fraud, _metric(fraud, "score_psi"), DAY) == pytest.approx(0.31)
    # A day whose matured window the pipeline has not materialized has no value (not zero).
    assert metric_value(lake, fraud, _metric(fraud, "auc_30d"), DAY + dt.timedelta(days=1)) is None


def test_business_sql_runs_over_the_periods_predictions(registry, lake):
    fraud = registry.model("fraud")
    write_predictions(lake, DAY, [1, 0, 0, 0])
    assert metric_value(lake, fraud, _metric(fraud, "review_rate"), DAY) == pytest.approx(0.25)
    hour = dt.datetime.combine(DAY, dt.time(10), tzinfo=UTC)
    assert metric_value(lake, fraud, _metric(fraud, "review_rate"), hour) == pytest.approx(0.25)
    assert metric_value(lake, fraud, _metric(fraud, "review_rate"), hour + dt.timedelta(hours=1)) is None


def test_ops_metrics_per_hour_and_per_day(registry, lake):
    triage = registry.model("ticket_triage")
    write_ops(lake, DAY, {9: [100] * 60, 10: [5000] * 60, 11: [9000] * 10})
    latency = _metric(triage, "latency_p95_ms")
    at = dt.datetime.combine(DAY, dt.time(9), tzinfo=UTC)
    assert metric_value(lake, triage, latency, at) == pytest.approx(100, rel=0.013)
    assert metric_value(lake, triage, latency, at + dt.timedelta(hours=1)) == pytest.approx(5000, rel=0.013)
    assert metric_value(lake, triage, latency, DAY) == pytest.approx(9000, rel=0.013)
    assert metric_value(lake, triage, latency, at + dt.timedelta(hours=2)) is None  # 10 requests: not enough data
    assert metric_value(lake, triage, _metric(triage, "cost_per_1k"), at) == pytest.approx(3.0)
    assert metric_value(lake, triage, latency, at + dt.timedelta(hours=5)) is None


def test_business_sql_is_validated_against_the_contract_columns(registry):
    fraud = registry.model("fraud")
    validate_business_sql(fraud, "avg(decision)")
    validate_business_sql(fraud, "count(*) FILTER (WHERE amount > 100) / count(*)")
    with pytest.raises(SourceError, match="nope"):
        validate_business_sql(fraud, "avg(nope)")
    with pytest.raises(SourceError, match="aggregate"):
        validate_business_sql(fraud, "decision")
    with pytest.raises(SourceError, match="single expression"):
        validate_business_sql(fraud, "avg(decision); DROP TABLE predictions")


def _registry_with(tmp_path, edit):
    raw = yaml.safe_load(TEST_REGISTRY.read_text())
    edit(raw["models"]["fraud"])
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_registry(path, landing=str(tmp_path / "landing"), lake=str(tmp_path / "lake"))


def test_the_projects_registry_passes_and_unknown_sources_are_rejected_naming_the_metric(tmp_path, registry):
    assert set(registry.models) == {"fraud", "ticket_triage"}  # the demo registry's own load is in test_registry

    def unknown(model):
        model["metrics"][2]["source"] = "drift.scores_psi"  # a typo of the column
        model["metrics"][1]["source"] = "rolling_eval.roc_auc[90d]"  # no 90-day window
        model["metrics"][0]["sql"] = "avg(decison)"

    with pytest.raises(RegistryError) as error:
        _registry_with(tmp_path, unknown)  # load_registry checks every metric's source itself
    message = str(error.value)
    assert "fraud.metrics.2: metric 'score_psi'" in message and "'drift.scores_psi'" in message
    assert "fraud.metrics.1: metric 'auc_30d'" in message and "with N in [7, 30]" in message
    assert "fraud.metrics.0: metric 'review_rate'" in message and "decison" in message
    assert "ops.<metric>" in message  # the known names are listed
    assert "ticket_triage" not in message


# The state machine


def test_breached_only_after_for_consecutive_breaches_and_ok_after_recovery_periods():
    slo = SLOSpec(
        name="s", metric="m", comparison=">=", threshold=0.8, severity="warn", **{"for": 3}, recovery_periods=2
    )
    values = [0.7, 0.7, 0.9, 0.7, 0.7, 0.7, 0.7, None, 0.9, 0.7, 0.9, 0.9, 0.9]
    state, states = SLOState(), []
    for value in values:
        state = next_state(slo, state, None if value is None else slo.bound.breaks(value))
        states.append(state.state)
    assert states == [
        "breaching",
        "breaching",
        "ok",  # two breaches then an ok: the count starts over
        "breaching",
        "breaching",
        "breached",
        "breached",
        "breached",  # no data changes nothing
        "breached",  # one ok period is not a recovery yet
        "breached",  # a breach while recovering keeps it breached and restarts the recovery
        "breached",
        "ok",
        "ok",
    ]


def test_bands_and_comparisons():
    band = SLOSpec(name="b", metric="m", band=(0.005, 0.06), severity="page")
    assert [band.bound.breaks(v) for v in (0.004, 0.005, 0.06, 0.061)] == [True, False, False, True]
    below = SLOSpec(name="c", metric="m", comparison="<", threshold=0.25, severity="page")
    assert [below.bound.breaks(v) for v in (0.2, 0.25)] == [False, True]


def test_transitions_mark_where_a_breach_begins_and_ends():
    slo = SLOSpec(
        name="s", metric="m", comparison=">=", threshold=0.8, severity="warn", **{"for": 2}, recovery_periods=2
    )
    state, marks = SLOState(), []
    for period, value in enumerate([0.7, 0.7, 0.7, 0.9, 0.7, 0.9, 0.9, 0.7]):
        before, state = state, next_state(slo, state, slo.bound.breaks(value), f"p{period}")
        marks.append((transition(before, state), state.breached_since))
    assert marks == [
        (None, None),
        ("breached", "p1"),
        (None, "p1"),  # the second bad period opens it
        (None, "p1"),
        (None, "p1"),
        (None, "p1"),  # a bad period while recovering restarts the recovery
        ("recovered", None),  # two ok periods in a row close it
        (None, None),
    ]


def test_evaluate_slos_carries_state_from_the_lake_record(registry, lake):
    fraud = registry.model("fraud")
    days = [DAY + dt.timedelta(days=i) for i in range(3)]
    for day, decisions in zip(days, ([1, 1, 0, 0], [1, 0, 0, 0], [0] * 50 + [1]), strict=False):
        write_predictions(lake, day, decisions * 100)  # 100 copies: each day has the 100 rows an SLO needs
        write_rolling_eval(lake, day - LAG, 0.9)
        write_drift(lake, day, 0.01)
    states = []
    for day in days:
        rows = evaluate_slos(lake, fraud, day, latest_evaluations(lake, "fraud", day), NOW)
        record_evaluations(lake, "fraud", rows)
        states.append({r["slo"]: (r["state"], r["transition"], r["breached_since"]) for r in rows.to_pylist()})
    assert [s["review_rate_in_band"] for s in states] == [
        ("breached", "breached", str(days[0])),
        ("breached", None, str(days[0])),
        ("ok", "recovered", str(days[0])),  # a recovery names the breach it ends
    ]
    assert {s["auc_30d_floor"] for s in states} == {("ok", None, None)}
    recorded = read_evaluations(lake, "fraud")
    assert recorded.num_rows == 12 and set(recorded["evaluated_at"].to_pylist()) == {NOW}
    first = [r for r in recorded.to_pylist() if r["slo"] == "review_rate_in_band"][0]
    assert first["value"] == 0.5 and first["band_low"] == 0.005 and first["owner"] == "team:payments-ops"
    assert (first["version"], first["rows"]) == ("v11", 400)  # judged per version
    # Re-evaluating a day replaces its rows instead of adding to them, and is deterministic.
    again = evaluate_slos(lake, fraud, days[1], latest_evaluations(lake, "fraud", days[1]), NOW)
    record_evaluations(lake, "fraud", again)
    assert read_evaluations(lake, "fraud").num_rows == 12
    assert again.to_pylist() == list(read_evaluations(lake, "fraud", days[1], days[1]).to_pylist())


def test_hourly_periods_evaluate_only_hourly_slos(registry, lake):
    triage = registry.model("ticket_triage")
    write_ops(lake, DAY, {9: [100] * 60, 10: [5000] * 60})
    at = dt.datetime.combine(DAY, dt.time(10), tzinfo=UTC)
    rows = evaluate_slos(lake, triage, at, [], NOW).to_pylist()
    assert {r["slo"]: r["state"] for r in rows} == {"p95_latency_ceiling": "breached", "cost_ceiling": "ok"}
    assert rows[0]["period"] == "2026-10-07T10:00:00+00:00" and rows[0]["cadence"] == "hourly"
    with pytest.raises(PeriodError, match="on the hour"):
        evaluate_slos(lake, triage, at.replace(minute=5), [], NOW)


def test_a_per_route_slo_judges_each_route_on_its_own_traffic(registry, lake):
    triage = registry.model("ticket_triage")
    # Every other request of hour 10 goes to the small model, which takes 9 s; the large one takes 1 s.
    write_ops(lake, DAY, {10: [1000, 9000] * 120}, routes=("llm_large", "llm_small"))
    at = dt.datetime.combine(DAY, dt.time(10), tzinfo=UTC)
    per_route = SLOSpec(
        name="route_p95", metric="latency_p95_ms", comparison="<=", threshold=4000, severity="page", per_route=True
    )
    rows = evaluate_slos(lake, triage, at, [], NOW, [per_route]).to_pylist()
    assert {r["subject"]: (r["state"], round(r["value"], -2), r["rows"]) for r in rows} == {
        "llm_large": ("ok", 1000.0, 120),
        "llm_small": ("breached", 9000.0, 120),
    }
    assert {r["detail"] for r in rows} == {"route llm_large", "route llm_small"}
    both = per_route.model_copy(update={"per_version": True})
    rows = evaluate_slos(lake, triage, at, [], NOW, [both]).to_pylist()
    assert {r["subject"] for r in rows} == {"v3/llm_large", "v3/llm_small"}
    pooled = per_route.model_copy(update={"per_route": False})
    [row] = evaluate_slos(lake, triage, at, [], NOW, [pooled]).to_pylist()
    assert row["subject"] is None and row["state"] == "breached"  # half the requests take 9 s: so does the p95


def test_per_route_needs_an_ops_source(tmp_path):
    def routed(model):
        model["slos"][0]["per_route"] = True  # review_rate, a business metric over the predictions

    with pytest.raises(RegistryError, match=r"slos\.0\.per_route: only an ops\.<metric> source has routes"):
        _registry_with(tmp_path, routed)


# Per version, and rows enough to judge


def test_a_per_version_slo_judges_each_version_on_its_own_and_ignores_thin_ones():
    band = SLOSpec(name="b", metric="m", band=(0.005, 0.06), severity="page", per_version=True, min_rows=100)
    readings = [
        Reading("all", 0.017, 20_000),  # pooled: fine, and hides the canary
        Reading("v12", 0.0015, 2_000),  # the canary stopped flagging anything
        Reading("v11", 0.018, 18_000),
        Reading("v13", 0.9, 40),  # too few rows to mean anything
    ]
    judged = subject_readings(band, readings)
    assert [(r.subject, r.value) for r in judged] == [("v11", 0.018), ("v12", 0.0015)]
    assert [band.bound.breaks(r.value) for r in judged] == [False, True]
    pooled = SLOSpec(name="p", metric="m", band=(0.005, 0.06), severity="page")
    assert [(r.subject, r.version) for r in subject_readings(pooled, readings)] == [(None, "all")]
    assert subject_readings(band, [Reading("v13", 0.9, 40), Reading("v14", None, 500)]) == []  # no data, no breach


def test_an_input_drift_slo_judges_each_column_and_with_per_version_each_versions_column():
    slo = SLOSpec(name="d", metric="m", comparison="<=", threshold=0, severity="warn")
    readings = [
        Reading("all", 1.0, 900, "merchant_id: new_category_share 0.4, limit 0.2", subject="merchant_id"),
        Reading("all", 0.0, 900, subject="amount"),
        Reading("v12", 1.0, 300, subject="amount"),
    ]
    assert [(r.subject, r.value) for r in subject_readings(slo, readings, per_input=True)] == [
        ("amount", 0.0),
        ("merchant_id", 1.0),
    ]
    per_version = SLOSpec(name="d", metric="m", comparison="<=", threshold=0, severity="warn", per_version=True)
    assert [r.subject for r in subject_readings(per_version, readings, per_input=True)] == ["v12/amount"]


def test_business_sql_is_read_per_version(registry, lake):
    fraud = registry.model("fraud")
    table = pa.table(
        {
            "prediction_id": [f"p{i}" for i in range(8)],
            "model_version": ["v11"] * 4 + ["v12"] * 4,
            "ts": pa.array(
                [dt.datetime.combine(DAY, dt.time(10, i), tzinfo=UTC) for i in range(8)], pa.timestamp("us", tz="UTC")
            ),
            "decision": pa.array([1, 1, 0, 0, 0, 0, 0, 1], pa.int8()),
        }
    )
    lake.write_partition("fraud", "predictions", DAY, table)
    readings = {r.version: (r.value, r.rows) for r in metric_readings(lake, fraud, _metric(fraud, "review_rate"), DAY)}
    assert readings == {"all": (0.375, 8), "v11": (0.5, 4), "v12": (0.25, 4)}


def test_label_coverage_counts_only_labels_known_by_the_end_of_the_day(registry, lake):
    triage = registry.model("ticket_triage")
    predicted = DAY - dt.timedelta(days=2)
    end = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(), tzinfo=UTC)
    label_ts = [end - dt.timedelta(hours=30), end - dt.timedelta(seconds=1), end, end + dt.timedelta(days=3), None]
    table = pa.table({"model_version": ["v3"] * 5, "label_ts": pa.array(label_ts, pa.timestamp("us", tz="UTC"))})
    lake.write_partition("ticket_triage", "outcomes", predicted, table)
    [reading, _] = metric_readings(lake, triage, _metric(triage, "label_coverage"), DAY)
    assert (reading.version, reading.value, reading.rows) == ("all", 0.4, 5)  # the later labels did not count
    assert reading.detail == f"predictions of {predicted} labeled by the end of {DAY}"
    assert metric_readings(lake, triage, _metric(triage, "label_coverage"), DAY + dt.timedelta(days=1)) == []


def test_drifting_inputs_count_the_columns_past_an_error_limit(registry, lake):
    fraud = registry.model("fraud")
    base = {"day": DAY, "window": "day", "version": ALL, "rows": 20_000, "severity": 0.5, "status": "ok"}
    rows = [
        {
            **base,
            "column": "merchant_id",
            "metric": "new_category_share",
            "value": 0.4,
            "threshold": 0.2,
            "severity": 2.0,
            "status": "error",
        },
        {
            **base,
            "column": "merchant_id",
            "metric": "psi",
            "value": 0.3,
            "threshold": 0.25,
            "severity": 1.2,
            "status": "error",
        },
        {**base, "column": "amount", "metric": "psi", "value": 0.15, "threshold": 0.1, "status": "warn"},
        {
            **base,
            "column": "score",
            "metric": "psi",
            "value": 4.0,
            "threshold": 0.25,
            "severity": 16.0,
            "status": "error",
        },
        {
            **base,
            "column": "amount",
            "version": "v12",
            "metric": "psi",
            "value": 0.9,
            "threshold": 0.25,
            "status": "not_enough_data",
        },
    ]
    lake.write_partition("fraud", "drift", DAY, pa.Table.from_pylist(rows, schema=REPORT_SCHEMA))
    readings = {r.version: r for r in metric_readings(lake, fraud, _metric(fraud, "drifting_inputs"), DAY)}
    assert readings["all"].value == 1.0  # merchant_id once; a warning and the score (an output) do not count
    assert readings["all"].detail == "merchant_id: new_category_share 0.4, limit 0.2"
    assert readings["v12"].value is None  # too few rows for the canary: no data


def test_eval_metrics_come_from_the_days_eval_stats(registry, lake):
    fraud = registry.model("fraud")
    stats = pa.table(
        {
            "prediction_date": pa.array([DAY] * 3, pa.date32()),
            "model_version": ["v11", "v11", "v12"],
            "segment": ["all"] * 3,
            "segment_value": ["all"] * 3,
            "label_state": ["unlabeled"] * 3,
            "matured": [False] * 3,
            "decision": pa.array([1, 0, 0], pa.int8()),
            "bin": pa.array([900, 100, 100], pa.int16()),
            "n": pa.array([30, 70, 100], pa.int64()),
            "score_grid": [SCORE_GRID] * 3,
        }
    )
    lake.write_partition("fraud", "eval_stats", DAY, stats)
    metric = ProductionMetric(
        name="decisions", kind="business", source="eval.decision_rate", cadence="daily", owner="team:x"
    )
    readings = {r.version: (r.value, r.rows) for r in metric_readings(lake, fraud, metric, DAY)}
    assert readings == {"all": (0.15, 200), "v11": (0.3, 100), "v12": (0.0, 100)}


# The webhook


INCIDENT = {
    "incident_id": "fraud/review_rate_in_band/2026-10-08",
    "model": "fraud",
    "slo": "review_rate_in_band",
    "metric": "review_rate",
    "value": 0.25,
    "comparison": None,
    "threshold": None,
    "band_low": 0.005,
    "band_high": 0.06,
    "opened": "2026-10-08",
    "closed": None,
    "owner": "team:payments-ops",
    "severity": "page",
    "action": "rollback",
    "action_mode": "propose",
    "state": "open",
}


def test_the_message_reaches_a_local_webhook(webhook_server):
    url, handler = webhook_server
    delivery = post_json(url, incident_message(INCIDENT))
    assert delivery.ok and delivery.attempts == 1 and delivery.status == 200
    [(content_type, message)] = handler.received
    assert content_type == "application/json"
    assert "review_rate_in_band breached" in message["text"] and "0.25" in message["text"]
    assert "team:payments-ops" in json.dumps(message["blocks"]) and "in [0.005, 0.06]" in json.dumps(message["blocks"])


def test_server_errors_are_retried_with_backoff_and_client_errors_are_not(webhook_server):
    url, handler = webhook_server
    handler.status = 503
    waits = []
    delivery = post_json(url, {"text": "x"}, retries=2, backoff=0.1, sleep=waits.append)
    assert (delivery.ok, delivery.attempts, delivery.status) == (False, 3, 503) and waits == [0.1, 0.2]
    handler.status = 404
    assert post_json(url, {"text": "x"}, retries=2, sleep=waits.append).attempts == 1


def test_a_webhook_that_is_down_is_retried_with_backoff(dead_webhook_url):
    waits = []
    delivery = post_json(
        dead_webhook_url, incident_message(INCIDENT), retries=3, backoff=0.5, sleep=waits.append, timeout=2
    )
    assert not delivery.ok and delivery.attempts == 4 and waits == [0.5, 1.0, 2.0]
    assert "refused" in delivery.error.lower()


def test_webhook_url_comes_from_the_environment():
    assert webhook_url({"CLOSEDLOOP_WEBHOOK_URL": "http://127.0.0.1:9/x"}) == "http://127.0.0.1:9/x"
    assert webhook_url({"CLOSEDLOOP_WEBHOOK_URL": ""}) is None and webhook_url({}) is None


# A version's own bound, learned limits and their reference


def write_decisions(lake, table: str, day: dt.date, rates: dict[str, float], rows: int = 200):
    """fraud's ``table`` (predictions or shadow) for a day: ``rows`` per version deciding at ``rates``."""
    versions, decisions = [], []
    for version, rate in rates.items():
        held = round(rate * rows)
        versions += [version] * rows
        decisions += [1] * held + [0] * (rows - held)
    stamps = [dt.datetime.combine(day, dt.time(12), tzinfo=UTC)] * len(versions)
    data = pa.table(
        {
            "prediction_id": [f"{day}-{i}" for i in range(len(versions))],
            "model_version": versions,
            "ts": pa.array(stamps, pa.timestamp("us", tz="UTC")),
            "decision": pa.array(decisions, pa.int8()),
        }
    )
    lake.write_partition("fraud", table, day, data)


def states(rows: pa.Table) -> dict:
    return {r["subject"]: r["state"] for r in rows.to_pylist()}


def test_a_canary_with_its_own_threshold_is_held_to_its_own_band(registry, lake):
    fraud = registry.model("fraud")
    write_decisions(lake, "predictions", DAY, {"v11": 0.07, "v12": 0.12})  # v12 decides at 0.5, v11 at 0.6
    one_band = SLOSpec(name="rate", metric="review_rate", band=(0.005, 0.10), per_version=True, severity="page")
    assert states(evaluate_slos(lake, fraud, DAY, [], NOW, [one_band])) == {"v11": "ok", "v12": "breached"}
    own = SLOSpec.model_validate({**one_band.model_dump(by_alias=True), "versions": {"v12": {"band": (0.08, 0.16)}}})
    rows = evaluate_slos(lake, fraud, DAY, [], NOW, [own])
    assert states(rows) == {"v11": "ok", "v12": "ok"}
    assert {r["subject"]: (r["band_low"], r["band_high"]) for r in rows.to_pylist()} == {
        "v11": (0.005, 0.10),
        "v12": (0.08, 0.16),
    }  # each row records the limits it was judged against


def test_learned_limits_learn_from_a_versions_first_days_and_then_judge(registry, lake):
    fraud = registry.model("fraud")
    slo = SLOSpec.model_validate(
        {"name": "rate", "metric": "review_rate", "per_version": True, "severity": "page", "for": 1,
         "learned": {"method": "sd", "k": 3, "periods": 5}}
    )  # fmt: skip
    days = [DAY + dt.timedelta(days=i) for i in range(7)]
    rates = [0.06, 0.07, 0.065, 0.075, 0.07, 0.072, 0.15]  # five reference days, a normal day, then a jump
    for day, rate in zip(days, rates, strict=True):
        write_decisions(lake, "predictions", day, {"v11": rate})
    rows = evaluate_periods(lake, fraud, days, [slo], NOW).to_pylist()
    assert [r["state"] for r in rows] == ["learning"] * 5 + ["ok", "breached"]
    reference = [round(rate * 200) / 200 for rate in rates[:5]]
    mean, sd = statistics.fmean(reference), statistics.stdev(reference)
    assert (rows[5]["band_low"], rows[5]["band_high"]) == (pytest.approx(mean - 3 * sd), pytest.approx(mean + 3 * sd))
    assert rows[-1]["reference"] == pytest.approx(reference)  # the first days stay the reference
    assert rows[4]["transition"] is None and rows[-1]["transition"] == "breached"


def test_a_new_version_with_shadow_days_is_judged_from_its_first_served_day(registry, lake):
    fraud = registry.model("fraud")
    slo = SLOSpec.model_validate(
        {"name": "rate", "metric": "review_rate", "per_version": True, "severity": "page",
         "learned": {"method": "share", "share": 0.25, "periods": 7}}
    )  # fmt: skip
    for back, rate in enumerate([0.12, 0.11, 0.13, 0.12, 0.12, 0.125, 0.115], start=1):
        write_decisions(lake, "shadow", DAY - dt.timedelta(days=back), {"v12": rate})
    write_decisions(lake, "predictions", DAY, {"v11": 0.07, "v12": 0.12})
    assert states(evaluate_slos(lake, fraud, DAY, [], NOW, [slo])) == {"v11": "learning", "v12": "ok"}
    write_decisions(lake, "predictions", DAY, {"v11": 0.07, "v12": 0.30})
    assert states(evaluate_slos(lake, fraud, DAY, [], NOW, [slo]))["v12"] == "breached"


def test_a_seasonal_reference_compares_each_day_with_its_own_weekday(registry, lake):
    fraud = registry.model("fraud")
    spec = {"name": "rate", "metric": "review_rate", "severity": "warn",
            "learned": {"reference": "trailing", "periods": 28, "method": "sd", "k": 3}}  # fmt: skip
    plain, seasonal = (
        SLOSpec.model_validate(spec),
        SLOSpec.model_validate({**spec, "learned": {**spec["learned"], "seasonal": "weekday"}}),
    )
    start = dt.date(2026, 9, 7)  # a Monday
    days = [start + dt.timedelta(days=i) for i in range(29)]
    for i, day in enumerate(days[:-1]):
        weekend = day.weekday() >= 5
        write_decisions(lake, "predictions", day, {"v11": (0.20 if weekend else 0.10) + (0.005 if i % 2 else 0)})
    write_decisions(lake, "predictions", days[-1], {"v11": 0.20})  # a Monday at the weekend's rate
    assert (
        evaluate_periods(lake, fraud, days, [plain], NOW).to_pylist()[-1]["state"] == "ok"
    )  # the week's spread hides it
    last = evaluate_periods(lake, fraud, days, [seasonal], NOW).to_pylist()[-1]
    assert last["state"] == "breached" and last["band_high"] < 0.12  # Mondays run at 0.10-0.105
