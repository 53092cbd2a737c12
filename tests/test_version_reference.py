"""A version released after the baseline is judged against its own reference: a clean canary at its
own threshold learns, then passes; a version with shadow days is judged from its first served day;
a canary whose decisions move against its own reference still alerts."""

import datetime as dt
import json

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from closedloop.core.lake import Lake
from closedloop.drift.baseline import current_baseline
from closedloop.drift.daily import drift_of_day
from closedloop.drift.profiles import PROFILE_SCHEMA, profile_day, profile_table
from closedloop.drift.report import LEARNING, MIXED_VERSIONS, drift_report
from closedloop.drift.version_reference import version_reference, versions_with_own_reference
from closedloop.inputs.ingest import ingest_predictions, ingest_shadow
from closedloop.registry import load_registry
from closedloop.simulator import simulate
from tests.helpers import TEST_REGISTRY, day

DAYS = 37  # v4's canary from day 21 (2026-09-22), v12's shadow week from day 28 and its canary from day 35


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    root = tmp_path_factory.mktemp("versions")
    simulate(root / "landing", days=DAYS, fraud_rows_per_day=1_000, triage_rows_per_day=3_000)
    registry = load_registry(TEST_REGISTRY, landing=str(root / "landing"), lake=str(root / "lake"))
    lake = Lake(registry.lake, registry.landing)
    for name in ("fraud", "ticket_triage"):
        model = registry.model(name)
        for offset in range(DAYS):
            ingest_predictions(lake, model, day(offset))
            if model.pairing_key:
                ingest_shadow(lake, model, day(offset))
        baseline = current_baseline(lake, model)
        for offset in range(DAYS):
            lake.write_partition(name, "profiles", day(offset), profile_day(lake, model, baseline, day(offset)))
    return registry, lake


def _outputs(report: pa.Table, version: str) -> list[dict]:
    rows = report.filter(
        pc.and_(pc.equal(report.column("version"), version), pc.equal(report.column("window"), "day"))
    ).to_pylist()
    return [r for r in rows if r["column"] in ("score", "decision")]


def test_only_versions_released_after_the_baseline_have_their_own_reference(production):
    registry, _ = production
    assert versions_with_own_reference(registry.model("ticket_triage"), dt.date.fromisoformat(day(30))) == ["v4"]
    assert versions_with_own_reference(registry.model("ticket_triage"), dt.date.fromisoformat(day(20))) == []
    assert versions_with_own_reference(registry.model("fraud"), dt.date.fromisoformat(day(36))) == ["v12"]


def test_a_clean_canary_at_its_own_threshold_learns_for_a_week_then_passes(production):
    registry, lake = production
    model = registry.model("ticket_triage")
    baseline = current_baseline(lake, model)
    first = dt.date.fromisoformat(day(21))  # v4's first served day
    learned = first + dt.timedelta(days=model.drift.version_reference_days)
    learning_days = judged_days = 0
    for offset in range(21, DAYS):
        judged = dt.date.fromisoformat(day(offset))
        report = drift_of_day(lake, model, baseline, None, judged)
        mine = _outputs(report, "v4")
        assert mine, judged
        # A weekend's canary traffic is too thin to judge alone: its figures are not_enough_data.
        statuses = {r["status"] for r in mine} - {"not_enough_data"}
        pooled = {r["status"] for r in _outputs(report, "all")}
        assert pooled <= {MIXED_VERSIONS, "not_enough_data"} and MIXED_VERSIONS in pooled, (judged, pooled)
        if judged < learned:
            assert statuses <= {LEARNING}, (judged, statuses)
            learning_days += bool(statuses)
        else:
            assert statuses <= {"ok", "not_significant"}, (judged, [r for r in mine if r["status"] != "ok"])
            judged_days += bool(statuses)
    assert learning_days >= 4 and judged_days >= 4, (learning_days, judged_days)
    # Against the baseline, the same canary's decision rate is a drift alert: the test can tell.
    today = lake.read_partition("ticket_triage", "profiles", day(30))
    against_baseline = drift_report(model, baseline, today, today)
    decision = [r for r in _outputs(against_baseline, "v4") if r["metric"] == "decision_rate_ratio"]
    assert decision and decision[0]["status"] in ("warn", "error"), decision


def test_a_canary_whose_decisions_move_against_its_own_reference_alerts(production):
    registry, lake = production
    model = registry.model("ticket_triage")
    baseline = current_baseline(lake, model)
    judged = dt.date.fromisoformat(day(30))  # a Thursday: enough canary traffic to judge
    served = lake.read_partition("ticket_triage", "predictions", judged)
    canary = pc.equal(served.column("model_version"), "v4")
    # Twice as many of the canary's tickets decided urgent: its threshold was changed without a release.
    flipped = pc.and_(canary, pc.less(pa.array(range(served.num_rows)), served.num_rows // 2))
    decision = pc.if_else(flipped, pa.scalar(1, served.schema.field("decision").type), served.column("decision"))
    changed = served.set_column(served.schema.get_field_index("decision"), "decision", decision)
    today = profile_table(changed, baseline, judged)
    references = {"v4": version_reference(lake, model, baseline, "v4", judged)}
    report = drift_report(model, baseline, today, today, day=judged, version_references=references)
    rate = [r for r in _outputs(report, "v4") if r["metric"] == "decision_rate_ratio"]
    assert rate[0]["status"] == "error", rate


def test_a_version_with_shadow_days_is_judged_from_its_first_served_day(production):
    registry, lake = production
    model = registry.model("fraud")
    baseline = current_baseline(lake, model)
    released = model.versions["v12"].released
    report = drift_of_day(lake, model, baseline, None, released)
    mine = _outputs(report, "v12")
    assert mine and LEARNING not in {r["status"] for r in mine}
    document = lake.document_path("fraud", "baselines", f"{baseline.name}_v12")
    frozen = json.loads(document.read_text())
    shadow_days = [released - dt.timedelta(days=n) for n in range(model.drift.version_reference_days, 0, -1)]
    assert frozen["days"] == [d.isoformat() for d in shadow_days]


def test_the_frozen_reference_does_not_move_when_its_days_are_profiled_again(production):
    registry, lake = production
    model = registry.model("ticket_triage")
    baseline = current_baseline(lake, model)
    judged = dt.date.fromisoformat(day(34))
    before = version_reference(lake, model, baseline, "v4", judged)
    emptied = PROFILE_SCHEMA.empty_table()
    first = dt.date.fromisoformat(day(21))
    original = lake.read_partition("ticket_triage", "profiles", first)
    lake.write_partition("ticket_triage", "profiles", first, emptied)
    try:
        assert version_reference(lake, model, baseline, "v4", judged).equals(before)
    finally:
        lake.write_partition("ticket_triage", "profiles", first, original)
