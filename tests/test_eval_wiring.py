"""Evaluation wiring: outcomes, eval_stats and rolling_eval per model, late labels, ``closedloop metrics``.

In-process Dagster runs over a few simulated days of ticket_triage (labels mature in 3 days, so
late labels show within a week); the automation is evaluated at chosen times of the simulated
calendar, as the automation sensor would on those days.
"""

import datetime as dt
import json

import dagster as dg
import pyarrow.parquet as pq
import pytest

from closedloop.core.lake import Lake
from closedloop.evaluation.metrics import wilson
from closedloop.evaluation.rolling_eval import ESTIMATED, read_rolling_eval
from closedloop.registry import load_registry
from closedloop.simulator import DEFAULT_START, simulate
from orchestration import cli
from orchestration.definitions import build_definitions
from tests.helpers import TEST_REGISTRY
from wiring.automation import SENSOR_NAME

MODEL = "ticket_triage"
EVALUATION = ("outcomes", "eval_stats", "rolling_eval")
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def day(offset: int) -> str:
    return (DEFAULT_START + dt.timedelta(days=offset)).isoformat()


def at(offset: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(DEFAULT_START + dt.timedelta(days=offset), dt.time(hour, minute), tzinfo=dt.UTC)


def key(name: str, model: str = MODEL) -> dg.AssetKey:
    return dg.AssetKey([model, name])


def run(defs, instance, start: str, end: str, job: str = f"{MODEL}_pipeline", **kwargs) -> dg.ExecuteInProcessResult:
    """One run over start..end, as a single-run backfill (or a scheduled day when start == end)."""
    tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
    return defs.resolve_job_def(job).execute_in_process(
        instance=instance, run_config=QUIET, raise_on_error=False, tags=tags, **kwargs
    )


def requested(result: dg.EvaluateAutomationConditionsResult) -> dict[str, list[str]]:
    """Asset -> partitions the automation sensor would request on this tick."""
    return {
        r.key.path[-1]: sorted(r.true_subset.expensively_compute_partition_keys())
        for r in result.results
        if not r.true_subset.is_empty
    }


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    root = tmp_path_factory.mktemp("simulated") / "landing"
    # 1,000 tickets a day. An estimate needs a whole week of matured days: day 9's 7-day window, not
    # mature as of day 11, is estimated from days 0-6 (labels mature in 3 days).
    simulate(root, days=14, seed=3, fraud_rows_per_day=200, triage_rows_per_day=1000)
    return root


@pytest.fixture(scope="module")
def backfilled(landing, tmp_path_factory):
    """Days 0-11 of ticket_triage materialized in one run; labels are known through day 11."""
    registry = load_registry(
        TEST_REGISTRY, landing=str(landing), lake=str(tmp_path_factory.mktemp("backfilled") / "lake")
    )
    instance = dg.DagsterInstance.ephemeral()
    result = run(build_definitions(registry), instance, day(0), day(11))
    return registry, Lake(registry.lake, registry.landing), instance, result


def test_each_model_evaluates_on_its_daily_partitions_with_label_aware_mappings(registry):
    defs = build_definitions(registry)
    graph = defs.resolve_asset_graph()
    for model in registry.models.values():
        outcomes, eval_stats, rolling_eval = (graph.get(key(name, model.name)) for name in EVALUATION)
        predictions, labels = key("predictions", model.name), key("labels", model.name)
        assert outcomes.parent_keys == {predictions, labels}
        maturity = model.labels.maturity_days
        assert outcomes.assets_def.get_partition_mapping(labels) == dg.TimeWindowPartitionMapping(
            start_offset=0, end_offset=maturity
        )
        assert graph.get_partition_mapping(outcomes.key, predictions) == dg.TimeWindowPartitionMapping()  # same day
        assert eval_stats.parent_keys == {outcomes.key}
        assert rolling_eval.parent_keys == {eval_stats.key}
        longest = max(model.evaluation.windows_days)
        mapping = rolling_eval.assets_def.get_partition_mapping(eval_stats.key)
        assert mapping == dg.TimeWindowPartitionMapping(start_offset=-(longest - 1), end_offset=0)
        assert outcomes.automation_condition.get_label() == "late_labels"
        assert (
            eval_stats.automation_condition.get_label()
            == rolling_eval.automation_condition.get_label()
            == "follow_outcomes"
        )
    [sensor] = [s for s in defs.sensors if s.name == SENSOR_NAME]
    assert (
        sensor.default_status == dg.DefaultSensorStatus.RUNNING
    )  # otherwise late labels wait for someone to switch it on
    assert isinstance(sensor, dg.AutomationConditionSensorDefinition)


@pytest.mark.slow
def test_a_range_backfill_evaluates_every_day_in_one_run_with_figures_for_its_last_day(backfilled):
    registry, lake, instance, result = backfilled
    assert result.success
    assert len(instance.get_runs()) == 1
    days = [day(i) for i in range(12)]
    for name in EVALUATION:
        assert instance.get_materialized_partitions(key(name)) == set(days)
        assert all(lake.partition_path(MODEL, name, d).exists() for d in days)

    outcomes = {m.partition: m.metadata for m in result.asset_materializations_for_node(f"{MODEL}__outcomes")}
    assert outcomes[day(0)]["labels_known_through"].value == day(11)
    per_day = outcomes[day(0)]["per_day"].value.splitlines()
    assert len(per_day) == 2 + 12 and f"| {day(8)} |" in per_day[10] and per_day[10].endswith("| yes |")
    assert per_day[13].endswith(f"| on {day(14)} |")  # day 11 matures 3 days later

    metadata = {m.partition: m.metadata for m in result.asset_materializations_for_node(f"{MODEL}__rolling_eval")}[
        day(11)
    ]
    headline = metadata["headline"].value
    assert "| 7d | v3 |" in headline and "| 30d | v3 |" in headline
    assert metadata["threshold_for_approved_rate"].value["v3"] > 0
    assert {"reliability", "score_histogram", "decision_rate", "threshold_tradeoff"} <= set(metadata)
    assert metadata["reliability"].value.startswith("![eval_reliability](data:image/png;base64,")
    figures = lake.root / MODEL / "figures" / "eval_reliability"
    assert [p.name for p in figures.iterdir()] == [f"date={day(11)}.png"]  # not one per day of the range

    # Windows not mature as of day 11 (those ending after day 8) carry a performance estimate.
    labels_of = lambda d: set(read_rolling_eval(lake, registry.model(MODEL), d).table["labels"].to_pylist())  # noqa: E731
    assert labels_of(day(11)) == {"matured", "immature", ESTIMATED}
    assert ESTIMATED not in labels_of(day(8))


@pytest.mark.slow
def test_late_labels_re_evaluate_earlier_days_without_a_backfill(landing, tmp_path):
    registry = load_registry(TEST_REGISTRY, landing=str(landing), lake=str(tmp_path / "lake"))
    triage = registry.model(MODEL)
    lake = Lake(registry.lake, registry.landing)
    defs = build_definitions(registry)
    instance = dg.DagsterInstance.ephemeral()
    selection = dg.AssetSelection.groups(MODEL)
    assert run(defs, instance, day(0), day(11)).success
    tick = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=selection, evaluation_time=at(12, 0, 10)
    )
    assert tick.total_requested == 0  # a backfill that just ran leaves nothing to do

    week_before = read_rolling_eval(lake, triage, day(9)).document(7)["versions"]["v3"]
    assert week_before[ESTIMATED]["roc_auc"] is not None  # day 9's window is not mature as of day 11: estimated
    matured = lambda d: (
        pq.read_table(lake.partition_path(MODEL, "outcomes", d))["label_matured"].to_pylist().count(True)
    )  # noqa: E731
    assert matured(day(9)) == 0  # seen as of day 11, day 9 is not mature (maturity 3 days)

    # Day 13, 00:30: the daily schedule's run for day 12 lands day 12's labels (today's have not landed).
    assert run(defs, instance, day(12), day(12)).success
    tick = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=selection, evaluation_time=at(13, 0, 45), cursor=tick.cursor
    )
    # Day 12's labels feed prediction days 9-12; the run already saw them for day 12. Day 9 = 12 - maturity
    # is the day they make mature. Every 7- and 30-day window holding days 9-11 follows, day 12's too.
    assert requested(tick) == {
        "outcomes": [day(9), day(10), day(11)],
        "eval_stats": [day(9), day(10), day(11)],
        "rolling_eval": [day(9), day(10), day(11), day(12)],
    }

    assert run(defs, instance, day(9), day(12), asset_selection=[key(name) for name in EVALUATION]).success
    assert matured(day(9)) > 0
    week_after = read_rolling_eval(lake, triage, day(9)).document(7)["versions"]["v3"]
    assert week_after["n"] == week_before["n"]
    assert week_after["n_labeled"] > week_before["n_labeled"]  # day 5's labels now count as matured
    assert week_after["roc_auc"] != week_before["roc_auc"]
    assert week_after[ESTIMATED] == week_before[ESTIMATED]  # the estimate made before stays beside the realised value

    tick = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=selection, evaluation_time=at(13, 1, 0), cursor=tick.cursor
    )
    assert tick.total_requested == 0  # the re-evaluation does not trigger itself
    assert run(defs, instance, day(13), day(13), job=f"{MODEL}_hourly_refresh").success
    tick = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=selection, evaluation_time=at(13, 2, 5), cursor=tick.cursor
    )
    assert tick.total_requested == 0  # today's hourly predictions refresh is not a reason to re-evaluate


@pytest.fixture
def cli_lake(backfilled, monkeypatch):
    registry, lake, _, _ = backfilled
    monkeypatch.setenv("CLOSEDLOOP_LANDING", str(registry.landing))
    monkeypatch.setenv("CLOSEDLOOP_LAKE", str(registry.lake))
    return lake


@pytest.mark.slow
def test_metrics_prints_one_json_object_per_window(cli_lake, capsys):
    assert (
        cli.main(["metrics", "--model", MODEL, "--date", day(11), "--window", "7", "--segment", "plan_tier", "--json"])
        == 0
    )
    payload = json.loads(capsys.readouterr().out)
    assert (payload["model"], payload["date"], payload["window_days"], payload["window_start"]) == (
        MODEL,
        day(11),
        7,
        day(5),
    )
    v3 = payload["versions"]["v3"]
    promised = {"n", "n_labeled", "roc_auc", "pr_auc", "precision", "recall", "f1", "brier", "log_loss", "ece"}
    promised |= {"decision_rate", "positive_rate"}
    assert promised <= set(v3) and all(isinstance(v3[m], int | float) for m in promised)
    assert v3["n"] == sum(cli_lake.row_count(cli_lake.partition_path(MODEL, "outcomes", day(i))) for i in range(5, 12))
    assert v3["intervals"]["roc_auc"][0] < v3["roc_auc"] < v3["intervals"]["roc_auc"][1]
    assert v3[ESTIMATED]["roc_auc"] > 0.5 and v3["immature"]["n_labeled"] > 0
    assert set(v3["segments"]) == {"plan_tier"} and sum(b["n"] for b in v3["segments"]["plan_tier"].values()) == v3["n"]

    assert cli.main(["metrics", "--model", MODEL, "--date", day(11), "--json"]) == 0
    default = json.loads(capsys.readouterr().out)
    assert default["window_days"] == 30 and "segments" not in default["versions"]["v3"]
    assert cli.main(["metrics", "--model", MODEL, "--date", day(11)]) == 0
    assert "estimated roc_auc" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--model", "spam", "--date", day(7)], "no model named 'spam'"),
        (["--model", MODEL, "--date", "2026-02-30"], "invalid partition key '2026-02-30'"),
        (
            ["--model", MODEL, "--date", day(7), "--window", "14"],
            "--window 14: ticket_triage is evaluated over [7, 30]-day windows",
        ),
        (
            ["--model", MODEL, "--date", day(7), "--segment", "country"],
            "ticket_triage's segments are ['plan_tier', 'channel']",
        ),
        (["--model", MODEL, "--date", day(30)], f"no rolling evaluation of ticket_triage for {day(30)}"),
    ],
)
def test_metrics_errors_are_one_line(cli_lake, capsys, argv, says):
    assert cli.main(["metrics", *argv, "--json"]) == 2
    captured = capsys.readouterr()
    assert says in captured.err and len(captured.err.strip().splitlines()) == 1 and not captured.out


def test_rate_intervals_hold_the_rate_at_zero_and_one():
    """Rounding once put Wilson's lower bound for 0 of 3 above 0, which broke the reliability figure's error bars."""
    for successes, trials in ((0, 3), (3, 3), (0, 7), (7, 7)):
        interval = wilson(successes, trials)
        assert interval.lower <= interval.value <= interval.upper
