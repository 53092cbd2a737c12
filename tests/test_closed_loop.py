"""End to end on the simulator: 60 days through the whole pipeline and the incident sensor, then
every injected incident must be caught on its day, nothing may fire on a clean day, and every
landed row must be accounted for."""

import datetime as dt
import json
import shutil
from types import SimpleNamespace

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest

from closedloop.control.incidents import read_incidents
from closedloop.control.scorecard import score
from closedloop.core.lake import Lake
from closedloop.registry import DEFAULT_CONFIG, load_registry
from closedloop.simulator import DEFAULT_START, simulate
from orchestration import cli
from orchestration.runner import handle_incidents, materialize_range

DAYS = 60


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    root = tmp_path_factory.mktemp("closed_loop")
    result = simulate(root / "landing", days=DAYS, seed=7, fraud_rows_per_day=1500, triage_rows_per_day=3000)
    registry = load_registry(DEFAULT_CONFIG, landing=str(root / "landing"), lake=str(root / "lake"))
    instance = dg.DagsterInstance.ephemeral()
    runs = materialize_range(registry, list(registry.models), DEFAULT_START, result.end, instance)
    incident_runs = handle_incidents(registry, instance)
    lake = Lake(registry.lake, registry.landing)
    incidents = {name: read_incidents(lake, name) for name in registry.models}
    maturity = {name: model.labels.maturity_days for name, model in registry.models.items()}
    card = score(json.loads(result.truth_path.read_text()), incidents, maturity)
    return SimpleNamespace(
        registry=registry, instance=instance, runs=runs, incident_runs=incident_runs, incidents=incidents, card=card
    )


@pytest.mark.slow
def test_every_injected_incident_is_caught_on_its_day_and_clean_days_stay_quiet(production):
    card = production.card
    assert len(production.runs) == 2 and production.incident_runs  # a run per model, and the incidents it opened
    assert all(run.success for run in production.runs + production.incident_runs)
    assert card.recall == 1.0, [d for d in card.detections if d.caught_by is None]
    late = [d for d in card.detections if d.on_time is False]
    assert late == []
    assert card.false_alerts == []
    assert card.canaries == {"triage_v4_canary": DAYS - 21} and card.false_alerts_of("triage_v4_canary") == []
    by_id = {d.truth_id: d for d in card.detections}
    # The second input fault starts while the first one's incident is open: its own column's incident, that day.
    second = by_id["fraud_ip_reputation_nulls"]
    assert (second.slo, second.subject, second.delay_days) == ("inputs_within_drift_limits", "ip_reputation", 0)
    assert by_id["fraud_v12_calibration_shift"].slo == "review_rate_in_band"  # the canary, on its first day
    assert by_id["triage_label_outage"].slo == "reviews_arriving"
    drift = by_id["triage_concept_drift"]
    assert drift.gradual and drift.slo == "auc_7d_floor" and drift.delay_days <= 20


@pytest.mark.slow
def test_incidents_act_and_recover_as_their_slos_say(production):
    incidents = production.incidents
    fraud = {i["slo"]: i for i in incidents["fraud"]}
    assert fraud["review_rate_in_band"]["version"] == "v12" and fraud["review_rate_in_band"]["state"] == "open"
    assert fraud["review_rate_in_band"]["action_result"].startswith("pending approval: closedloop approve act_")
    inputs = [i for i in incidents["fraud"] if i["slo"] == "inputs_within_drift_limits"]
    # One incident per drifting column, each naming its column and the figure behind it.
    assert {(i["subject"], i["opened"], i["state"]) for i in inputs} == {
        ("avg_amount_30d", "2026-09-13", "closed"),
        ("payment_type", "2026-09-13", "closed"),  # the new payment type is a new value of payment_type too
        ("ip_reputation", "2026-09-16", "closed"),
        ("merchant_id", "2026-09-21", "closed"),
    }
    by_subject = {i["subject"]: i for i in inputs}
    assert by_subject["avg_amount_30d"]["closed"] > by_subject["ip_reputation"]["opened"]  # opened while it was open
    assert all(i["detail"].startswith(f"{i['subject']}: ") for i in inputs), [
        (i["subject"], i["detail"]) for i in inputs
    ]
    triage = {i["slo"]: i for i in incidents["ticket_triage"]}
    assert (
        triage["p95_latency_ceiling"]["action_result"] == "applied"
        and triage["p95_latency_ceiling"]["state"] == "closed"
    )
    assert (triage["reviews_arriving"]["opened"], triage["reviews_arriving"]["closed"]) == ("2026-09-27", "2026-10-02")


@pytest.mark.slow
def test_the_clean_canary_and_the_weekends_are_judged_each_against_their_own_and_stay_quiet(production):
    """v4 decides at 0.5 (a third more urgent tickets than v3), weekends run higher than weekdays: each
    version is held to its own first four weeks, weekday by weekday, and neither is ever a breach."""
    lake = Lake(production.registry.lake, production.registry.landing)
    table = pq.read_table(lake.root / "ticket_triage" / "slo_evaluations").to_pylist()
    latest = {
        (r["version"], r["period"]): r
        for r in sorted(table, key=lambda r: r["evaluated_at"])
        if r["slo"] == "urgent_rate_like_its_weekday"
    }
    rows = list(latest.values())
    judged = {v: [r for r in rows if r["version"] == v and r["breach"] is not None] for v in ("v3", "v4")}
    assert len(judged["v3"]) == DAYS - 28 and len(judged["v4"]) == DAYS - 21 - 28
    assert all(r["state"] == "ok" for r in judged["v3"] + judged["v4"])
    assert {r["state"] for r in rows if r["version"] == "v4" and r["breach"] is None} == {"learning"}
    centre = {v: {r["day"].weekday(): (r["band_low"] + r["band_high"]) / 2 for r in judged[v]} for v in ("v3", "v4")}
    assert centre["v3"][5] > centre["v3"][2] + 0.005  # a Saturday is held to a higher rate than a Wednesday
    assert all(centre["v4"][day] > centre["v3"][day] + 0.01 for day in centre["v4"])  # the canary to its own


@pytest.mark.slow
def test_status_and_approve_from_the_command_line(production, capsys, monkeypatch, tmp_path):
    registry = production.registry
    # Approving changes the lake (serving file, audit row): do it on a copy, the module's lake stays as it was.
    shutil.copytree(registry.lake, tmp_path / "lake")
    monkeypatch.setenv("CLOSEDLOOP_CONFIG", str(DEFAULT_CONFIG))  # the end-to-end loop runs on the demo registry
    monkeypatch.setenv("CLOSEDLOOP_LANDING", str(registry.landing))
    monkeypatch.setenv("CLOSEDLOOP_LAKE", str(tmp_path / "lake"))
    assert cli.main(["status", "--model", "fraud", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    review = next(s for s in status["slos"] if s["slo"] == "review_rate_in_band")
    assert review["state"] == "breached"
    # Per version, each version is a subject of its own: the breached one first, the others still listed.
    assert review["subjects"][0] == {**review["subjects"][0], "subject": review["version"], "state": "breached"}
    assert len(review["subjects"]) > 1
    assert set(status["incidents"][0]) >= {"model", "slo", "metric", "opened", "closed", "severity", "action", "state"}
    assert cli.main(["actions", "--state", "pending", "--json"]) == 0
    pending = json.loads(capsys.readouterr().out)["actions"]
    rollback = next(a for a in pending if a["type"] == "rollback")
    assert cli.main(["approve", rollback["action_id"], "--who", "alice@example.com", "--json"]) == 0
    applied = json.loads(capsys.readouterr().out)
    assert applied["state"] == "applied" and json.loads(applied["after"])["active_version"] == "v11"
    assert cli.main(["approve", rollback["action_id"]]) == 2
    assert "is applied, not pending" in capsys.readouterr().err


def _landed(landing, model, table) -> pd.DataFrame:
    files = sorted(landing.glob(f"{model}/{table}/date=*/*.parquet"))
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


@pytest.mark.slow
def test_sixty_days_backfill_in_one_run_per_model_and_nothing_is_lost(production):
    registry, instance = production.registry, production.instance
    days = {(DEFAULT_START + dt.timedelta(days=i)).isoformat() for i in range(DAYS)}
    pipeline_runs = [r for r in instance.get_runs() if r.job_name.endswith("_pipeline")]
    assert sorted(r.job_name for r in pipeline_runs) == ["fraud_pipeline", "ticket_triage_pipeline"]
    lake = Lake(registry.lake, registry.landing)
    for model in registry.models:
        for table in ("predictions", "labels"):
            assert instance.get_materialized_partitions(dg.AssetKey([model, table])) == days
            accepted = sum(lake.row_count(lake.partition_path(model, table, d)) for d in sorted(days))
            quarantined = sum(lake.row_count(lake.quarantine_path(model, table, d)) for d in sorted(days))
            raw = _landed(registry.landing, model, table)
            assert accepted + quarantined + int(raw.duplicated().sum()) == len(raw), (model, table)
        predictions = pq.read_table(lake.partition_path(model, "predictions", min(days)).parent.parent).to_pandas()
        assert predictions.prediction_id.is_unique

    nan_scores = int(_landed(registry.landing, "fraud", "predictions").score.isna().sum())
    reasons = pq.read_table(lake.root / "fraud" / "quarantine").to_pandas().reason.value_counts().to_dict()
    assert reasons.get("score missing or NaN", 0) == nan_scores > 0


@pytest.mark.slow
def test_what_changed_in_v12_reads_the_same_on_its_paired_shadow_week_and_its_canary(production):
    """v12 is v11 with its logit 2.5 lower: both populations say so, and that its ranking did not change."""
    from closedloop.compare.comparison import compare_versions
    from closedloop.compare.request import PAIRED, SAME_DAYS, plan_comparison
    from closedloop.simulator import fraud

    registry = production.registry
    lake, model = Lake(registry.lake, registry.landing), registry.model("fraud")
    canary = plan_comparison(lake, registry, "fraud", "v11", "v12")
    shadow_week = (DEFAULT_START + dt.timedelta(days=fraud.V12_SHADOW_DAY), DEFAULT_START + dt.timedelta(days=34))
    assert canary.population == SAME_DAYS and (canary.left_out.start, canary.left_out.end) == shadow_week
    paired = plan_comparison(lake, registry, "fraud", "v11", "v12", start=shadow_week[0], end=shadow_week[1])
    assert paired.population == PAIRED
    for request, tolerance in ((paired, 0.1), (canary, 0.3)):
        comparison = compare_versions(lake, model, request)
        rows = {r["metric"]: r for r in comparison.document["metrics"]}
        assert rows["mean_logit"]["difference"] == pytest.approx(-2.5, abs=tolerance), request.population
        assert rows["decision_rate"]["verdict"] == "changed" and rows["decision_rate"]["difference"] < 0
        if request.population == PAIRED:  # a week of every payment; the canary's 10% holds too few fraud labels
            assert rows["roc_auc"]["verdict"] == "not distinguishable" and abs(rows["roc_auc"]["difference"]) < 0.02
        kept = comparison.document["thresholds"]["candidate_keeping_baseline_rate"]["threshold"]
        assert 0.02 < kept < 0.2, request.population  # about 0.07 on the demo


@pytest.mark.slow
def test_the_report_of_v12s_first_day_shows_the_review_rate_collapse_and_the_pending_rollback(production):
    from closedloop.reports.publish import write_daily_report, write_index
    from orchestration.runner import materialize_reports

    registry = production.registry
    lake, fraud = Lake(registry.lake, registry.landing), registry.model("fraud")
    canary_day = DEFAULT_START + dt.timedelta(days=35)  # v12 ships on 2026-10-06
    report, path = write_daily_report(lake, fraud, canary_day, dt.datetime.now(dt.UTC))
    review = next(s for s in report.health.slos if s.slo == "review_rate_in_band")
    assert review.state == "breached" and review.version == "v12" and review.value < 0.005
    [pending] = report.health.pending_actions
    assert pending["action"] == "rollback" and pending["opened_today"]
    html = path.read_text()
    assert html.index(f"closedloop approve {pending['action_id']}") < html.index("id='trends'")
    assert set(report.figures) >= {"slo_trends", "quality_over_time", "reliability", "decision_rate", "psi_heatmap"}
    assert all(png.startswith(b"\x89PNG") for png in report.figures.values()) and not report.missing
    # The daily report job (what the schedule runs) writes the last day's page; the calendar colours both.
    last = DEFAULT_START + dt.timedelta(days=DAYS - 1)
    [run] = materialize_reports(registry, ["fraud"], last, production.instance)
    assert run.success and lake.report_path("fraud", last).exists()
    index = write_index(lake, registry).read_text()
    assert (
        f"href='fraud/{canary_day}.html' title='{canary_day}: breached (review_rate_in_band); incident opened" in index
    )
