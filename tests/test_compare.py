"""The version comparison on a hand-built lake: each figure against a direct computation on the raw
rows, the verdict of a calibration shift, a null case with nothing significant, a worse segment
found after adjustment, the Dagster job with run config, the CLI, and every bad request."""

import datetime as dt
import json

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from closedloop.compare import significance
from closedloop.compare.comparison import compare_versions, run_comparison
from closedloop.compare.report import comparison_html
from closedloop.compare.request import ACROSS_PERIODS, PAIRED, SAME_DAYS, CompareError, plan_comparison
from closedloop.evaluation.eval_stats import eval_stats
from closedloop.evaluation.outcomes import outcomes_schema
from closedloop.ops.stats import compute_ops_stats
from orchestration.cli import main
from orchestration.comparison_job import COMPARE_JOB
from orchestration.definitions import build_definitions
from tests.helpers import UTC

START = dt.date(2026, 10, 6)
DAYS = 6
COUNTRIES = ("US", "GB", "DE", "BR")


def _logit(p):
    return np.log(p / (1 - p))


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def build_lake(
    lake,
    model,
    *,
    shift=0.0,
    worse_country=None,
    labeled=True,
    seed=0,
    rows=(6000, 3000),
    latency_ms=(30, 31),
    shadow_days=0,
    matured_days=DAYS,
) -> dict:
    """Six days of v11 and v12 traffic, written as the pipeline would (predictions, outcomes, eval_stats,
    ops_stats). v12's logit is shifted by ``shift``; in ``worse_country`` its score is noise. On the first
    ``shadow_days`` days v11 serves alone and v12 scores the same requests in shadow (the ``shadow`` table).
    Labels of the days from ``matured_days`` on are known but not matured. Returns the raw served rows,
    with v12's shadow score where it had one."""
    rng = np.random.default_rng(seed)
    raw = []
    for d in range(DAYS):
        day = START + dt.timedelta(days=d)
        parts = []
        in_shadow = d < shadow_days
        for version, n in zip(("v11", "v12"), rows, strict=True):
            if version == "v12" and in_shadow:
                continue
            signal = rng.normal(-4.0, 1.4, n)
            label = (rng.random(n) < _sigmoid(signal)).astype(np.int8)
            logit = signal + rng.normal(0, 0.3, n)
            country = rng.choice(COUNTRIES, n)
            if version == "v12":
                logit = logit + shift
                if worse_country is not None:
                    noise = rng.normal(-4.0, 1.4, n)
                    logit = np.where(country == worse_country, noise, logit)
            score = _sigmoid(logit)
            parts.append(
                {
                    "version": np.array([version] * n),
                    "score": score,
                    "label": label,
                    "country": country,
                    "channel": rng.choice(("web", "app"), n),
                    "latency_ms": rng.lognormal(np.log(latency_ms[version == "v12"]), 0.3, n),
                    "shadow_score": _sigmoid(signal + rng.normal(0, 0.3, n) + shift)
                    if in_shadow
                    else np.full(n, np.nan),
                }
            )
        rows_of_day = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        n = len(rows_of_day["score"])
        ts = [dt.datetime.combine(day, dt.time(i % 24, (i // 24) % 60), tzinfo=UTC) for i in range(n)]
        decision = (rows_of_day["score"] >= model.versions["v11"].threshold).astype(np.int8)
        predictions = pa.table(
            {
                "prediction_id": [f"{day}-{i}" for i in range(n)],
                "model_version": rows_of_day["version"],
                "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
                "score": rows_of_day["score"],
                "decision": pa.array(decision, pa.int8()),
                "latency_ms": rows_of_day["latency_ms"],
                "cost_usd": pa.nulls(n, pa.float64()),
                "route": pa.nulls(n, pa.string()),
                "is_fallback": pa.array([False] * n),
                "error": pa.nulls(n, pa.string()),
                "country": rows_of_day["country"],
                "channel": rows_of_day["channel"],
            }
        )
        lake.write_partition(model.name, "predictions", day, predictions)
        if in_shadow:
            shadow_score = rows_of_day["shadow_score"]
            shadow = pa.table(
                {
                    "prediction_id": [f"shadow-{day}-{i}" for i in range(n)],
                    "model_version": ["v12"] * n,
                    "ts": predictions["ts"],
                    "score": shadow_score,
                    "decision": pa.array((shadow_score >= model.versions["v12"].threshold).astype(np.int8)),
                    "request_id": predictions["prediction_id"],
                }
            )
            lake.write_partition(model.name, "shadow", day, shadow)
        lake.write_partition(model.name, "ops_stats", day, compute_ops_stats(predictions))
        labels = rows_of_day["label"] if labeled else [None] * n
        outcomes = pa.table(
            {
                "prediction_id": predictions["prediction_id"],
                "model_version": predictions["model_version"],
                "ts": predictions["ts"],
                "score": predictions["score"],
                "decision": predictions["decision"],
                "request_id": predictions["prediction_id"],
                "country": predictions["country"],
                "channel": predictions["channel"],
                "label": pa.array(labels, pa.int8()),
                "label_ts": pa.array([ts[0] if labeled else None] * n, pa.timestamp("us", tz="UTC")),
                "label_delay_hours": pa.array([0.0 if labeled else None] * n, pa.float64()),
                "label_matured": [labeled and d < matured_days] * n,
            },
            schema=outcomes_schema(model),
        )
        lake.write_partition(model.name, "outcomes", day, outcomes)
        lake.write_partition(model.name, "eval_stats", day, eval_stats(outcomes, model, day))
        raw.append({**rows_of_day, "decision": decision})
    return {k: np.concatenate([r[k] for r in raw]) for k in raw[0]}


@pytest.fixture
def fraud(registry):
    return registry.model("fraud")


def compare(lake, registry, **periods):
    request = plan_comparison(lake, registry, "fraud", "v11", "v12", **periods)
    return compare_versions(lake, registry.model("fraud"), request)


def metrics_of(document, section=None) -> dict:
    return {r["metric"]: r for r in document["metrics"] if section is None or r["section"] == section}


def test_every_figure_agrees_with_a_direct_computation_on_the_raw_rows(lake, registry, fraud):
    raw = build_lake(lake, fraud, shift=-2.5)
    document = compare(lake, registry).document
    quality, scores = metrics_of(document, "quality"), metrics_of(document, "scores")
    decisions, operations = metrics_of(document, "decisions"), metrics_of(document, "operations")
    slices = {(r["segment"], r["segment_value"], r["metric"]): r for r in document["segments"]["rows"]}
    for version, side in (("v11", "baseline"), ("v12", "candidate")):
        mine = raw["version"] == version
        y, s, decided = raw["label"][mine], raw["score"][mine], raw["decision"][mine]
        flagged = (s >= 0.5).astype(int)
        assert quality["roc_auc"][side] == pytest.approx(roc_auc_score(y, s), abs=2e-3)
        assert quality["brier"][side] == pytest.approx(brier_score_loss(y, s), rel=0.02)
        assert quality["log_loss"][side] == pytest.approx(log_loss(y, s), rel=0.02)
        expected = precision_score(y, flagged) if flagged.any() else None  # nothing flagged: no precision
        assert quality["precision"][side] == pytest.approx(expected)
        assert quality["recall"][side] == pytest.approx(recall_score(y, flagged))
        assert decisions["decision_rate"][side] == pytest.approx(decided.mean())
        assert scores["mean_logit"][side] == pytest.approx(_logit(s).mean(), abs=0.05)
        assert quality["pr_auc"][side] == pytest.approx(average_precision_score(y, s), abs=5e-3)
        latency = np.percentile(raw["latency_ms"][mine], 50)
        assert operations["latency_p50_ms"][side] == pytest.approx(latency, rel=0.03)  # log-spaced 2.5% bins
        by_country = pd.DataFrame({"country": raw["country"][mine], "decided": decided}).groupby("country")["decided"]
        for country, rate in by_country.mean().items():
            assert slices[("country", country, "decision_rate")][side] == pytest.approx(rate)
    ks = stats.ks_2samp(raw["score"][raw["version"] == "v12"], raw["score"][raw["version"] == "v11"]).statistic
    assert scores["score_ks"]["candidate"] == pytest.approx(ks, abs=0.01)
    # The decision-rate test is the pooled two-proportion z-test: z^2 is the uncorrected chi-square.
    table = [[(raw["decision"][raw["version"] == v] == k).sum() for k in (1, 0)] for v in ("v11", "v12")]
    chi2 = stats.chi2_contingency(table, correction=False)
    assert decisions["decision_rate"]["p_value"] == pytest.approx(chi2.pvalue, rel=1e-6)


def test_a_calibration_shift_reads_as_lower_scores_a_collapsed_decision_rate_and_an_unchanged_ranking(
    lake, registry, fraud
):
    raw = build_lake(lake, fraud, shift=-2.5)
    comparison = compare(lake, registry)
    document = comparison.document
    assert document["comparison"]["population"] == SAME_DAYS
    assert document["headline"].startswith("fraud: v12 against v11, unpaired on the same days")
    rows = metrics_of(document)
    assert rows["mean_logit"]["difference"] == pytest.approx(-2.5, abs=0.1)
    assert rows["decision_rate"]["verdict"] == "changed" and rows["decision_rate"]["difference"] < 0
    assert rows["roc_auc"]["verdict"] == "not distinguishable"
    assert rows["ece"]["verdict"] == "worse"
    kept = document["thresholds"]["candidate_keeping_baseline_rate"]
    v11_rate = raw["decision"][raw["version"] == "v11"].mean()
    v12_scores = raw["score"][raw["version"] == "v12"]
    assert (v12_scores >= kept["threshold"]).mean() <= v11_rate + 1e-9
    assert kept["threshold"] < 0.5
    summary = comparison.verdict["summary"]
    assert "logits lower" in summary and "decision rate falls from" in summary
    assert f"threshold {kept['threshold']:.3g} keeps" in summary
    assert "ranking (ROC AUC) is indistinguishable" in summary
    canary = {s["metric"]: s for s in document["canary"]}
    certain = canary["decision_rate"]["first_certain_day"]
    assert certain is not None and str(START) <= certain < str(START + dt.timedelta(days=DAYS - 1))
    assert canary["decision_rate"]["days"] == [str(START + dt.timedelta(days=d)) for d in range(DAYS)]
    assert {"precision", "brier", "review_rate"} <= set(canary)


def test_two_versions_that_differ_only_by_noise_show_no_significant_difference(lake, registry, fraud):
    build_lake(lake, fraud, shift=0.0, seed=3, latency_ms=(30, 30))
    document = compare(lake, registry).document
    adjusted = [r["p_adjusted"] for r in document["metrics"] + document["segments"]["rows"] if r["p_adjusted"]]
    assert len(adjusted) > 20
    assert min(adjusted) > 0.05
    assert not document["verdict"]["worse"] and not document["verdict"]["better"]
    assert not document["segments"]["worse"]
    assert document["canary"] and all(s["first_certain_day"] is None for s in document["canary"])


def test_the_worse_segment_is_found_and_ranked_first_after_adjustment(lake, registry, fraud):
    build_lake(lake, fraud, worse_country="BR", seed=5)
    worse = compare(lake, registry).document["segments"]["worse"]
    assert worse, "a segment where v12 scores noise must come out worse"
    countries = {r["segment_value"] for r in worse if r["segment"] == "country"}
    assert countries == {"BR"}  # the channels hold BR's requests too, so they may come out worse as well
    assert worse[0]["segment_value"] == "BR"


def test_without_labels_the_label_free_parts_are_reported_and_the_rest_says_why(lake, registry, fraud):
    build_lake(lake, fraud, shift=-2.5, labeled=False)
    document = compare(lake, registry).document
    assert document["labels"]["label_set"] is None
    assert "quality" not in {r["section"] for r in document["metrics"]}
    assert metrics_of(document)["decision_rate"]["verdict"] == "changed"
    checks = document["verdict"]["check_before_full_rollout"]
    assert any("no quality verdict" in line for line in checks)
    assert any(line.startswith("no performance estimate for v11") for line in checks)


def test_different_periods_are_compared_across_periods_and_said_so(lake, registry, fraud):
    build_lake(lake, fraud)
    request = plan_comparison(
        lake,
        registry,
        "fraud",
        "v11",
        "v12",
        baseline_start=START,
        baseline_end=START + dt.timedelta(days=2),
        candidate_start=START + dt.timedelta(days=3),
        candidate_end=START + dt.timedelta(days=5),
    )
    assert request.population == ACROSS_PERIODS
    assert "unpaired across periods" in request.describe()
    assert request.comparison_id == "v11_vs_v12_20261006_20261008_20261009_20261011"


def test_the_comparison_is_written_as_json_figures_and_one_self_contained_page(lake, registry, fraud):
    build_lake(lake, fraud, shift=-2.5)
    comparison, report = run_comparison(lake, registry, plan_comparison(lake, registry, "fraud", "v11", "v12"))
    folder = report.parent
    assert folder == lake.root / "fraud" / "comparisons" / "v11_vs_v12_20261006_20261011"
    document = json.loads((folder / "comparison.json").read_text())
    assert document == comparison.document
    for name in document["figures"].values():
        assert (folder / name).stat().st_size > 10_000
    page = report.read_text()
    assert page.count("data:image/png;base64,") == len(document["figures"]) >= 4
    assert "http://" not in page and "https://" not in page  # nothing leaves the page
    assert document["headline"].split(":")[0] in page and "Check before 100%" in page
    assert "<th>route</th>" not in page  # fraud's service has no routes
    route = {"route": "large_llm", "requests": 10, "latency_p95_ms": 2300.0, "cost_per_1k": 3.4}
    with_routes = {**document, "routes": {"v11": [route], "v12": [route]}}
    assert comparison_html(with_routes, comparison.figures).count("large_llm") == 2


SHADOW_DAYS = 3


def test_shadow_traffic_is_compared_pair_by_pair_on_the_request_key(lake, registry, fraud):
    raw = build_lake(lake, fraud, shift=-2.5, shadow_days=SHADOW_DAYS, seed=7)
    shadow_end = START + dt.timedelta(days=SHADOW_DAYS - 1)
    request = plan_comparison(lake, registry, "fraud", "v11", "v12", start=START, end=shadow_end)
    assert request.population == PAIRED
    assert request.describe().startswith("fraud: v12 against v11, paired on request_id")
    document = compare_versions(lake, fraud, request).document
    rows = metrics_of(document)
    paired = ~np.isnan(raw["shadow_score"])
    y, b, c = raw["label"][paired], raw["score"][paired], raw["shadow_score"][paired]
    expected_auc = significance.auc_difference_paired(b, c, y)
    assert rows["roc_auc"]["test"] == expected_auc.test == "DeLong, paired"
    assert rows["roc_auc"]["p_value"] == pytest.approx(expected_auc.p_value)
    assert rows["roc_auc"]["candidate"] == pytest.approx(roc_auc_score(y, c), abs=2e-3)
    expected_rate = significance.paired_proportion_difference(b >= 0.5, c >= 0.5)
    assert rows["decision_rate"]["p_value"] == pytest.approx(expected_rate.p_value)
    assert rows["decision_rate"]["candidate"] == pytest.approx((c >= 0.5).mean())
    assert rows["mean_logit"]["difference"] == pytest.approx(-2.5, abs=0.05)
    assert rows["brier"]["test"].startswith("paired t")
    assert document["labels"]["versions"]["v12"]["rows"] == paired.sum()  # every shadow row found its request


def test_the_paired_shadow_days_and_the_unpaired_canary_give_consistent_answers(lake, registry, fraud):
    build_lake(lake, fraud, shift=-2.5, shadow_days=SHADOW_DAYS, seed=8)
    canary = plan_comparison(lake, registry, "fraud", "v11", "v12")
    assert canary.population == SAME_DAYS
    assert canary.baseline_period.start == START + dt.timedelta(days=SHADOW_DAYS)
    assert canary.left_out is not None and canary.left_out.start == START
    shadow = plan_comparison(
        lake, registry, "fraud", "v11", "v12", start=canary.left_out.start, end=canary.left_out.end
    )
    answers = [metrics_of(compare_versions(lake, fraud, r).document) for r in (canary, shadow)]
    for name in ("decision_rate", "mean_logit", "roc_auc", "ece"):
        assert answers[0][name]["verdict"] == answers[1][name]["verdict"], name
    assert answers[0]["mean_logit"]["difference"] == pytest.approx(answers[1]["mean_logit"]["difference"], abs=0.1)
    assert any(
        "shadow days" in line for line in compare_versions(lake, fraud, canary).verdict["check_before_full_rollout"]
    )


def test_the_dagster_job_takes_the_cli_fields_as_run_config(lake, registry, fraud):
    build_lake(lake, fraud, shift=-2.5)
    job = build_definitions(registry).get_job_def(COMPARE_JOB)
    config = {"model": "fraud", "baseline": "v11", "candidate": "v12", "start": "2026-10-06", "end": "2026-10-08"}
    result = job.execute_in_process(
        run_config={"ops": {"compare": {"config": config}}}, instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success
    [materialized] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = materialized.event_specific_data.metadata
    assert metadata["population"].value == SAME_DAYS
    assert "decision rate falls" in metadata["verdict"].value
    assert metadata["report"].value.endswith("v11_vs_v12_20261006_20261008/report.html")
    failed = job.execute_in_process(
        run_config={"ops": {"compare": {"config": {**config, "candidate": "v13"}}}}, raise_on_error=False
    )
    assert not failed.success
    assert "has no version 'v13'" in str(failed.failure_data_for_node("compare").error.message)


def test_the_cli_prints_the_verdict_and_the_report_path(lake, registry, fraud, capsys, monkeypatch):
    build_lake(lake, fraud, shift=-2.5)
    monkeypatch.setenv("CLOSEDLOOP_LAKE", str(lake.root))
    monkeypatch.setenv("CLOSEDLOOP_LANDING", str(lake.landing))
    assert main(["compare", "--model", "fraud", "--baseline", "v11", "--candidate", "v12"]) == 0
    out = capsys.readouterr().out
    assert "Verdict: v12's scores are on average" in out and "report.html" in out
    assert main(["compare", "--model", "fraud", "--baseline", "v11", "--candidate", "v12", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["comparison"]["population"] == SAME_DAYS
    assert main(["compare", "--model", "fraud", "--baseline", "v11", "--candidate", "v9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["closedloop compare: model fraud has no version 'v9'; its versions are v11, v12"]


@pytest.mark.parametrize(
    ("asked", "message"),
    [
        ({"model_name": "fraudd"}, "unknown model 'fraudd'"),
        ({"candidate": "v13"}, "model fraud has no version 'v13'; its versions are v11, v12"),
        ({"candidate": "v11"}, "both v11; name two different versions"),
        ({"segment": "planet"}, "model fraud has no segment 'planet'; its segments are country, channel"),
        ({"start": dt.date(2026, 10, 6)}, "give both --start and --end, or neither"),
        ({"start": dt.date(2026, 10, 9), "end": dt.date(2026, 10, 7)}, "--end 2026-10-07 is before --start 2026-10-09"),
        ({"start": dt.date(2026, 9, 1), "end": dt.date(2026, 9, 5)}, "v11 served no requests from 2026-09-01 to"),
        (
            {"baseline_start": dt.date(2026, 10, 6), "baseline_end": dt.date(2026, 10, 7)},
            "give the other version's period too",
        ),
    ],
)  # fmt: skip
def test_a_bad_request_gets_one_clear_line(lake, registry, fraud, asked, message):
    build_lake(lake, fraud, rows=(300, 100))
    request = {"model_name": "fraud", "baseline": "v11", "candidate": "v12", **asked}
    with pytest.raises(CompareError) as error:
        plan_comparison(lake, registry, **request)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_version_with_no_rows_in_its_period_says_when_it_has_rows(lake, registry, fraud):
    build_lake(lake, fraud, rows=(300, 100))
    with pytest.raises(CompareError, match=r"v12 scored no requests from 2026-10-20 to 2026-10-21; it served on "):
        plan_comparison(
            lake, registry, "fraud", "v11", "v12",
            baseline_start=START, baseline_end=START,
            candidate_start=dt.date(2026, 10, 20), candidate_end=dt.date(2026, 10, 21),
        )  # fmt: skip


def test_immature_days_get_each_versions_performance_estimate_from_its_own_matured_past(lake, registry, fraud):
    raw = build_lake(lake, fraud, rows=(8000, 8000), matured_days=3, seed=9)
    later = {"start": START + dt.timedelta(days=3), "end": START + dt.timedelta(days=DAYS - 1)}
    document = compare(lake, registry, **later).document
    assert document["labels"]["label_set"] == "known so far"
    estimated = {r["metric"]: r for r in document["metrics"] if r["section"] == "estimated"}
    assert set(estimated) == {"roc_auc", "precision", "recall", "f1"}
    days = np.repeat(np.arange(DAYS), [16_000] * DAYS)
    for version, side in (("v11", "baseline"), ("v12", "candidate")):
        mine = (raw["version"] == version) & (days >= 3)
        realised = roc_auc_score(raw["label"][mine], raw["score"][mine])
        assert estimated["roc_auc"][side] == pytest.approx(realised, abs=0.02), version
    assert estimated["roc_auc"]["verdict"] == "not distinguishable"  # the versions differ by noise only
    assert estimated["roc_auc"]["labels"] == "estimated"
