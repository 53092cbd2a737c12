"""The registry loads the project's file and names the file and key of every mistake."""

import datetime as dt
import textwrap
from pathlib import Path

import pytest
import yaml

from closedloop.core.specs import RegistryError
from closedloop.registry import DEFAULT_CONFIG, drift_limit_problems, load_registry, metric_source_problems

GOOD_MODEL = {
    "owner": "team:risk-ml",
    "start_date": "2026-09-01",
    "labels": {"source": "chargebacks", "maturity_days": 45},
    "versions": {"v1": {"threshold": 0.5}},
    "features": {"numeric": ["amount"], "categorical": ["payment_type"]},
    "segments": ["country"],
    "baseline": {"start": "2026-09-01", "end": "2026-09-10"},
    "metrics": [
        {
            "name": "auc",
            "kind": "quality",
            "source": "rolling_eval.roc_auc[30d]",
            "cadence": "daily",
            "owner": "team:risk-ml",
        },
        {"name": "p95", "kind": "operational", "source": "ops.latency_p95_ms", "cadence": "hourly", "owner": "a@b.io"},
        {
            "name": "rate",
            "kind": "business",
            "source": "predictions",
            "sql": "avg(decision)",
            "cadence": "daily",
            "owner": "team:ops",
        },
    ],
    "slos": [
        {"name": "auc_floor", "metric": "auc", "comparison": ">=", "threshold": 0.8, "for": 2, "severity": "warn"},
    ],
}


def write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def with_model(**changes) -> dict:
    model = {**GOOD_MODEL, **changes}
    return {"models": {"fraud": {k: v for k, v in model.items() if v is not None}}}


def with_alerts(**alerts) -> dict:
    return {**with_model(), "alerts": alerts}


def dial(weights: dict) -> dict:
    return {"type": "dial", "params": {"weights": weights}}


def route(name: str, url_env: str | None = "PAGER_URL", **match) -> dict:
    return {k: v for k, v in {"name": name, "url_env": url_env, "match": match or None}.items() if v is not None}


def test_project_registry_loads_both_sample_models():
    registry = load_registry(DEFAULT_CONFIG)
    assert set(registry.models) == {"fraud", "ticket_triage"}
    fraud = registry.model("fraud")
    assert fraud.threshold("v12") == 0.5
    assert len(fraud.features.numeric) == 8 and len(fraud.features.categorical) == 4
    assert fraud.labels.maturity_days == 45
    assert 3 <= len(fraud.metrics) <= 5
    triage = registry.model("ticket_triage")
    assert triage.source_column("prediction_id") == "request_id"
    assert triage.source_column("route") == "route"
    assert {m.kind for m in triage.metrics} == {"business", "quality", "operational"}
    assert registry.lake == (DEFAULT_CONFIG.parent / "../data/demo/lake").resolve()
    # The demo registry is the one the demo and the end-to-end test run on (the other tests read
    # tests/registry/models.yaml): every SLO of it reads a source closedloop computes, every drift limit a metric.
    assert all(model.slos for model in registry.models.values())
    assert [p for m in registry.models.values() for p in metric_source_problems(m) + drift_limit_problems(m)] == []


def test_good_registry_parses_slo_fields(tmp_path):
    model = load_registry(write(tmp_path, with_model())).model("fraud")
    slo = model.slos[0]
    assert (slo.comparison, slo.threshold, slo.for_periods, slo.action.type) == (">=", 0.8, 2, "notify")


def test_routes_take_incidents_in_order_and_fall_back_to_the_default(tmp_path):
    document = with_alerts(
        renotify_after="90m",
        routes=[
            route("ops_pager", "OPS_PAGER_URL", owner="team:ops", severity="page"),
            route("pages", "PAGES_URL", severity="page"),
            route("risk", "RISK_URL", owner="team:risk-ml"),
        ],
    )
    alerts = load_registry(write(tmp_path, document)).alerts
    assert alerts.renotify_after == dt.timedelta(minutes=90)
    taken = {
        (owner, severity): alerts.route_for(owner, severity).name
        for owner in ("team:ops", "team:risk-ml", "a@b.io")
        for severity in ("page", "warn")
    }
    assert taken == {
        ("team:ops", "page"): "ops_pager",
        ("team:ops", "warn"): "default",
        ("team:risk-ml", "page"): "pages",
        ("team:risk-ml", "warn"): "risk",
        ("a@b.io", "page"): "pages",
        ("a@b.io", "warn"): "default",
    }
    assert alerts.default_route.url_env == "CLOSEDLOOP_WEBHOOK_URL"
    # A last route without a match is the default: run failures go there too.
    ending = with_alerts(routes=[route("pages", "PAGES_URL", severity="page"), route("team_chat", "CHAT_URL")])
    alerts = load_registry(write(tmp_path, ending)).alerts
    assert (alerts.route_for("team:ops", "warn").name, alerts.default_route.name) == ("team_chat", "team_chat")


def test_without_an_alerts_block_everything_goes_to_the_default_webhook(tmp_path):
    alerts = load_registry(write(tmp_path, with_model())).alerts
    assert alerts.routes == () and alerts.renotify_after is None
    assert alerts.route_for("team:ops", "page") == alerts.default_route
    assert (alerts.default_route.name, alerts.default_route.url_env) == ("default", "CLOSEDLOOP_WEBHOOK_URL")


def test_environment_roots_override_the_file(tmp_path):
    registry = load_registry(write(tmp_path, with_model()), landing=str(tmp_path / "in"), lake=str(tmp_path / "out"))
    assert registry.landing == tmp_path / "in" and registry.lake == tmp_path / "out"


@pytest.mark.parametrize(
    ("document", "key", "says"),
    [
        (with_model(ownr="x"), "models.fraud.ownr", "unknown key"),
        (with_model(owner="nobody"), "models.fraud.owner", "'nobody' is not a valid owner"),
        (with_model(task="regression"), "models.fraud.task", "'binary'"),
        (
            with_model(versions={"v1": {"threshold": 1.5}}),
            "models.fraud.versions.v1.threshold",
            "less than or equal to 1",
        ),
        (with_model(versions={}), "models.fraud.versions", "at least 1 item"),
        (with_model(start_date="yesterday"), "models.fraud.start_date", "valid date"),
        (with_model(end_date="2026-08-31"), "models.fraud.end_date", "2026-08-31 is before start_date 2026-09-01"),
        (with_model(end_date="2026-09-05"), "models.fraud", "baseline ends 2026-09-10, after the model's end_date"),
        (
            with_model(labels={"source": "x", "maturity_days": -1}),
            "models.fraud.labels.maturity_days",
            "greater than or equal to 0",
        ),
        (with_model(labels=None), "models.fraud.labels", "Field required"),
        (with_model(columns={"prediction": "id"}), "models.fraud.columns", "unknown closedloop column"),
        (with_model(columns={"prediction_id": "id", "ts": "id"}), "models.fraud.columns", "mapped more than once"),
        (with_model(segments=["amount"]), "models.fraud", "declared more than once"),
        (with_model(segments=["score"]), "models.fraud", "clash with closedloop's own column names"),
        (with_model(segments=["Score"]), "models.fraud", "[['Score', 'score']] differ only in case"),
        (with_model(segments=["Amount"]), "models.fraud", "[['Amount', 'amount']] differ only in case"),
        (
            with_model(features={"numeric": ["bad name"]}),
            "models.fraud.features.numeric.0",
            "'bad name' is not a valid name",
        ),
        (with_model(baseline={"start": "2026-09-10", "end": "2026-09-01"}), "models.fraud.baseline", "before start"),
        (
            with_model(baseline={"start": "2026-08-01", "end": "2026-09-01"}),
            "models.fraud",
            "before the model's start_date",
        ),
        (
            with_model(evaluation={"windows_days": [0]}),
            "models.fraud.evaluation.windows_days.0",
            "greater than or equal to 1",
        ),
        (with_model(metrics=GOOD_MODEL["metrics"][:2]), "models.fraud", "3 to 5 production metrics"),
        (
            with_model(metrics=[{**GOOD_MODEL["metrics"][0], "cadence": "weekly"}] + GOOD_MODEL["metrics"][1:]),
            "models.fraud.metrics.0.cadence",
            "'hourly' or 'daily'",
        ),
        (
            with_model(slos=[{"name": "s", "metric": "nope", "comparison": ">", "threshold": 1, "severity": "warn"}]),
            "models.fraud",
            "unknown metric 'nope'",
        ),
        (
            with_model(slos=[{"name": "s", "metric": "auc", "severity": "warn"}]),
            "models.fraud.slos.0",
            "needs comparison and threshold",
        ),
        (
            with_model(slos=[{"name": "s", "metric": "auc", "band": [0.9, 0.1], "severity": "warn"}]),
            "models.fraud.slos.0",
            "band low 0.9 is above high 0.1",
        ),
        (
            with_model(slos=[{"name": "s", "metric": "auc", "comparison": "=>", "threshold": 1, "severity": "warn"}]),
            "models.fraud.slos.0.comparison",
            "Input should be",
        ),
        (
            with_model(
                slos=[{"name": "s", "metric": "auc", "band": [0, 1], "severity": "warn", "action": {"type": "dial"}}]
            ),
            "models.fraud.slos.0.action",
            "needs params.weights",
        ),
        (
            with_model(slos=[{"name": "s", "metric": "auc", "band": [0, 1], "severity": "sev1"}]),
            "models.fraud.slos.0.severity",
            "'warn' or 'page'",
        ),
        (
            with_model(slos=[{"name": "s", "metric": "rate", "severity": "warn"}]),
            "models.fraud.slos.0",
            "or learned limits",
        ),
        (
            with_model(slos=[{"name": "s", "metric": "rate", "band": [0, 1], "learned": {}, "severity": "warn"}]),
            "models.fraud.slos.0",
            "not both",
        ),
        (
            with_model(slos=[{"name": "s", "metric": "rate", "learned": {"method": "share"}, "severity": "warn"}]),
            "models.fraud.slos.0.learned",
            "needs share",
        ),
        (
            with_model(
                slos=[
                    {
                        "name": "s",
                        "metric": "rate",
                        "learned": {"seasonal": "weekday", "periods": 7},
                        "severity": "warn",
                    }
                ]
            ),
            "models.fraud.slos.0.learned",
            "at least 14 periods",
        ),
        (
            with_model(slos=[{"name": "s", "metric": "p95", "learned": {"seasonal": "weekday"}, "severity": "warn"}]),
            "models.fraud",
            "slos.0.learned.seasonal: a weekday reference needs a daily metric",
        ),
        (
            with_model(
                slos=[
                    {"name": "s", "metric": "rate", "learned": {"seasonal": "hour", "periods": 48}, "severity": "warn"}
                ]
            ),
            "models.fraud",
            "slos.0.learned.seasonal: an hour-of-day reference needs an hourly metric",
        ),
        (
            with_model(slos=[{"name": "s", "metric": "p95", "learned": {"seasonal": "hour"}, "severity": "warn"}]),
            "models.fraud.slos.0.learned",
            "an hour-of-day reference needs at least 48 periods",
        ),
        (
            with_model(
                slos=[
                    {
                        "name": "s",
                        "metric": "rate",
                        "band": [0, 1],
                        "versions": {"v1": {"band": [0, 2]}},
                        "severity": "warn",
                    }
                ]
            ),
            "models.fraud.slos.0",
            "versions.v1: a version's own bound needs per_version: true",
        ),
        (
            with_model(
                slos=[
                    {
                        "name": "s",
                        "metric": "rate",
                        "band": [0, 1],
                        "per_version": True,
                        "versions": {"v9": {"band": [0, 2]}},
                        "severity": "warn",
                    }
                ]
            ),
            "models.fraud",
            "slos.0.versions names unknown version(s) ['v9']; fraud's versions are ['v1']",
        ),  # fmt: skip
        (with_alerts(routes=[route("pager", None, severity="page")]), "alerts.routes.0.url_env", "Field required"),
        (
            with_alerts(routes=[route("pager", "PAGER-URL")]),
            "alerts.routes.0.url_env",
            "'PAGER-URL' is not an environment variable name",
        ),
        (
            with_alerts(routes=[route("pager", owner="team:risk_ml")]),
            "alerts.routes.0.match.owner",
            "'team:risk_ml' owns no model, metric or SLO here; owners: ['a@b.io', 'team:ops', 'team:risk-ml']",
        ),
        (
            with_alerts(routes=[route("pager", severity="critical")]),
            "alerts.routes.0.match.severity",
            "'warn' or 'page'",
        ),
        (with_alerts(routes=[route("pager", sevrity="page")]), "alerts.routes.0.match.sevrity", "unknown key"),
        (
            with_alerts(routes=[route("everyone"), route("pager", severity="page")]),
            "alerts.routes",
            "route 'everyone' matches every incident, so the routes after it are never used",
        ),
        (
            with_alerts(routes=[route("pager", severity="page"), route("pager", severity="warn")]),
            "alerts.routes",
            "route name(s) ['pager'] are used more than once",
        ),
        (with_alerts(routes=[route("default")]), "alerts.routes", "'default' is closedloop's own last route"),
        (with_alerts(renotify_after="soon"), "alerts.renotify_after", "'soon' is not a duration"),
        (with_alerts(renotify_after="4 hours"), "alerts.renotify_after", "e.g. 30m, 4h or 1d"),
        (with_alerts(renotify_after="10s"), "alerts.renotify_after", "shorter than a minute"),
        (with_alerts(renotfy_after="4h"), "alerts.renotfy_after", "unknown key"),
        (
            with_model(slos=[{**GOOD_MODEL["slos"][0], "action": {"type": "rollback", "params": {"to": "v9"}}}]),
            "models.fraud",
            "slos.0.action.params.to names unknown version 'v9'; fraud's versions are ['v1']",
        ),
        (
            with_model(slos=[{**GOOD_MODEL["slos"][0], "action": dial({"v1": 0.5, "v9": 0.5})}]),
            "models.fraud",
            "slos.0.action.params.weights names unknown version(s) ['v9']; fraud's versions are ['v1']",
        ),
        (
            with_model(slos=[{**GOOD_MODEL["slos"][0], "action": dial({"v1": "all"})}]),
            "models.fraud.slos.0.action",
            "params.weights must be numbers",
        ),
        (
            with_model(slos=[{**GOOD_MODEL["slos"][0], "action": {"type": "fallback", "params": {"enabled": "no"}}}]),
            "models.fraud.slos.0.action",
            "params.enabled must be true or false",
        ),
        (
            with_model(metrics=GOOD_MODEL["metrics"][:2] + [{**GOOD_MODEL["metrics"][2], "sql": "max(model_version)"}]),
            "models.fraud.metrics.2",
            "sql 'max(model_version)' gives VARCHAR, not a number",
        ),
        (
            with_model(
                metrics=[GOOD_MODEL["metrics"][0], {**GOOD_MODEL["metrics"][1], "source": "ops.latency_p96_ms"}]
                + GOOD_MODEL["metrics"][2:]
            ),
            "models.fraud.metrics.1",
            "metric 'p95': unknown source 'ops.latency_p96_ms'",
        ),  # watched by no SLO, and refused all the same
        (
            with_model(slos=[{**GOOD_MODEL["slos"][0], "threshold": float("nan")}]),
            "models.fraud.slos.0.threshold",
            "finite number",
        ),
        (
            with_model(slos=[{"name": "s", "metric": "rate", "band": [0, float("inf")], "severity": "warn"}]),
            "models.fraud.slos.0.band.1",
            "finite number",
        ),
        (with_model(ops={"max_latency_p95_ms": float("inf")}), "models.fraud.ops.max_latency_p95_ms", "finite number"),
        (
            with_model(drift={"thresholds": {"psi": {"type": "upper", "warn": 0.1, "error": float("nan")}}}),
            "models.fraud.drift.thresholds",
            "psi.error: nan is not a finite number",
        ),
        (
            with_model(slos=[{"name": "s", "metric": "rate", "learned": {"k": float("inf")}, "severity": "warn"}]),
            "models.fraud.slos.0.learned.k",
            "finite number",
        ),
        (
            with_model(drift={"learned": {"reference": "trailing", "periods": 7}}),
            "models.fraud.drift.learned",
            "drift limits learn from the baseline's days (reference: first)",
        ),
        (
            with_model(drift={"learned": {"periods": 14}}),
            "models.fraud",
            "drift.learned.periods: 14 baseline days are needed, the baseline window has 10",
        ),
        (with_model(tags={"tier": "gold medal"}), "models.fraud.tags.tier", "'gold medal' is not a valid tag value"),
        (with_model(tags={"a b": "x"}), "models.fraud.tags.a b", "'a b' is not a valid tag key"),
        (with_model(tags={"tier": 1}), "models.fraud.tags.tier", "valid string"),
        (with_model(tags={"model": "x"}), "models.fraud.tags", "'model' is closedloop's own tag"),
        (with_model(tags={"dagster/kind": "x"}), "models.fraud.tags", "'dagster/kind' is not a valid tag key"),
        ({"models": {"../etc": GOOD_MODEL}}, "models.../etc", "'../etc' is not a valid name"),
        ({"models": {"fraud": ["not", "a", "mapping"]}}, "models.fraud", "valid dictionary"),
        ({"modles": {"fraud": GOOD_MODEL}}, "modles", "unknown key"),
        ({"models": {}}, "models", "at least 1 item"),
    ],
)
def test_each_bad_key_is_named_with_the_file(tmp_path, document, key, says):
    path = write(tmp_path, document)
    with pytest.raises(RegistryError) as caught:
        load_registry(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"  {key}: " in message, message
    assert says in message, message


def test_every_problem_in_the_file_is_reported_at_once(tmp_path):
    document = {"models": {"a": {**GOOD_MODEL, "owner": "x"}, "b": {**GOOD_MODEL, "task": "ranking"}}}
    message = str(pytest.raises(RegistryError, load_registry, write(tmp_path, document)).value)
    assert "models.a.owner" in message and "models.b.task" in message


def test_unreadable_files_say_what_to_do(tmp_path):
    missing = tmp_path / "absent.yaml"
    assert "CLOSEDLOOP_CONFIG" in str(pytest.raises(RegistryError, load_registry, missing).value)
    broken = tmp_path / "broken.yaml"
    broken.write_text(textwrap.dedent("models:\n  fraud: [unclosed\n"))
    assert "not valid YAML" in str(pytest.raises(RegistryError, load_registry, broken).value)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    assert "expected a mapping" in str(pytest.raises(RegistryError, load_registry, scalar).value)


def written(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(text)
    return path


MODEL_YAML = yaml.safe_dump(GOOD_MODEL)


def test_a_key_given_twice_is_refused_with_its_line(tmp_path):
    # Last-wins would make the first fraud, and every model between the two, disappear without a word.
    body = textwrap.indent(MODEL_YAML, "    ")
    path = written(tmp_path, f"models:\n  fraud:\n{body}  triage:\n{body}  fraud:\n{body}")
    message = str(pytest.raises(RegistryError, load_registry, path).value)
    second = 4 + 2 * len(MODEL_YAML.splitlines())
    assert str(path) in message
    assert f"not valid YAML: line {second}: key 'fraud' is given twice (first on line 2)" in message


def test_a_nested_key_given_twice_is_refused_too(tmp_path):
    model = MODEL_YAML.replace("versions:\n", "versions:\n  v1:\n    threshold: 0.2\n", 1)
    path = written(tmp_path, "models:\n  fraud:\n" + textwrap.indent(model, "    "))
    message = str(pytest.raises(RegistryError, load_registry, path).value)
    assert "key 'v1' is given twice" in message, message


@pytest.mark.parametrize("text", ["2026-13-01", "2026-02-30"])
def test_a_date_that_does_not_exist_is_named_by_its_key(tmp_path, text):
    model = MODEL_YAML.replace("start_date: '2026-09-01'", f"start_date: {text}")
    path = written(tmp_path, "models:\n  fraud:\n" + textwrap.indent(model, "    "))
    message = str(pytest.raises(RegistryError, load_registry, path).value)
    assert "  models.fraud.start_date: " in message and text in message, message


def test_dates_in_the_registry_still_read_as_dates(tmp_path):
    registry = load_registry(written(tmp_path, "models:\n  fraud:\n" + textwrap.indent(MODEL_YAML, "    ")))
    assert registry.model("fraud").start_date == dt.date(2026, 9, 1)


def test_unknown_model_lists_the_known_ones(tmp_path):
    registry = load_registry(write(tmp_path, with_model()))
    with pytest.raises(RegistryError, match=r"no model named 'fruad'; known models: \['fraud'\]"):
        registry.model("fruad")


def test_the_readmes_alerts_example_is_a_valid_block_for_the_demo_registry(tmp_path):
    readme = (DEFAULT_CONFIG.parent.parent / "README.md").read_text()
    start = readme.index("```yaml\nalerts:") + len("```yaml\n")
    example = yaml.safe_load(readme[start : readme.index("```", start)])
    document = {**yaml.safe_load(DEFAULT_CONFIG.read_text()), **example}
    alerts = load_registry(write(tmp_path, document)).alerts
    assert [r.name for r in alerts.routes] == ["payments_pager", "pages", "risk_chat"]
    assert alerts.route_for("team:payments-ops", "page").url_env == "PAYMENTS_PAGER_URL"
    assert alerts.route_for("team:payments-ops", "warn").url_env == "CLOSEDLOOP_WEBHOOK_URL"
