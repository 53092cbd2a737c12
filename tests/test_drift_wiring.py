"""Drift in Dagster: profiles and drift assets, their checks on the simulator, windows from profiles only."""

import datetime as dt
import shutil

import dagster as dg
import pyarrow as pa
import pytest

from closedloop.core.lake import Lake
from closedloop.drift.baseline import baseline_name, current_baseline, freeze_baseline
from closedloop.drift.daily import drift_of_day
from closedloop.drift.report import drift_report
from closedloop.registry import load_registry
from closedloop.simulator import DEFAULT_START, simulate
from closedloop.simulator.incidents import INCIDENTS
from orchestration.definitions import build_definitions
from tests.helpers import TEST_REGISTRY

DAYS = 24


def day(offset: int) -> str:
    return (DEFAULT_START + dt.timedelta(days=offset)).isoformat()


def incident_days(incident_id: str) -> list[str]:
    incident = next(i for i in INCIDENTS if i.id == incident_id)
    return [day(d) for d in range(incident.start_day, incident.end_day + 1)]


@pytest.fixture(scope="module")
def drift_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("drift")
    simulate(root / "landing", days=DAYS, seed=7, fraud_rows_per_day=3000, triage_rows_per_day=100)
    registry = load_registry(TEST_REGISTRY, landing=str(root / "landing"), lake=str(root / "lake"))
    selection = [dg.AssetKey(["fraud", name]) for name in ("predictions", "profiles", "drift")]
    result = (
        build_definitions(registry)
        .resolve_job_def("fraud_pipeline")
        .execute_in_process(
            instance=dg.DagsterInstance.ephemeral(),
            asset_selection=selection,
            tags={"dagster/asset_partition_range_start": day(0), "dagster/asset_partition_range_end": day(DAYS - 1)},
            raise_on_error=False,
        )
    )
    checks = {e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key.path[-1] == "drift"}
    return registry, result, checks


@pytest.mark.slow
def test_drift_incidents_fail_their_checks_on_their_days_and_clean_days_stay_quiet(drift_run):
    _, result, checks = drift_run
    assert result.success
    features = checks["features_within_drift_limits"]
    assert not features.passed and features.severity == dg.AssetCheckSeverity.ERROR
    faults = ("fraud_new_payment_type", "fraud_ip_reputation_nulls", "fraud_merchant_id_explosion")
    expected = sorted({d for fault in faults for d in incident_days(fault)})
    assert features.metadata["failing_periods"].value == expected
    # avg_amount_30d goes missing and payment_type gets a new value (bnpl), ip_reputation goes missing
    # on its last day, then merchant ids explode.
    assert features.metadata["failing_columns"].value == [
        "avg_amount_30d",
        "ip_reputation",
        "merchant_id",
        "payment_type",
    ]
    assert checks["score_within_drift_limits"].passed and checks["decision_rate_within_drift_limits"].passed
    inputs = checks["inputs_indistinguishable_from_baseline"]
    assert not inputs.passed
    # The domain classifier tells the first two days of the new payment type, every day of the ip_reputation
    # nulls and of the explosion from the baseline (an AUC past 0.6); no clean day.
    told = incident_days("fraud_ip_reputation_nulls") + incident_days("fraud_merchant_id_explosion")
    assert inputs.metadata["failing_periods"].value == incident_days("fraud_new_payment_type")[:2] + told


@pytest.mark.slow
def test_a_window_report_needs_only_profiles(drift_run, tmp_path):
    registry, _, _ = drift_run
    lake = Lake(registry.lake, registry.landing)
    fraud = registry.model("fraud")
    baseline = current_baseline(lake, fraud)
    last = DEFAULT_START + dt.timedelta(days=DAYS - 1)

    def reports(lake):
        samples = lake.read_partition("fraud", "samples", fraud.baseline.start)
        profiles = [lake.read_partition("fraud", "profiles", last - dt.timedelta(days=i)) for i in range(30)]
        window = pa.concat_tables([p for p in profiles if p is not None])
        month = drift_report(fraud, baseline, profiles[0], window, window="30d", day=last)
        return drift_of_day(lake, fraud, baseline, samples, last), month

    before = reports(lake)
    # The module's lake stays whole for the other tests: the raw predictions go from a copy.
    shutil.copytree(lake.root, tmp_path / "lake")
    without_predictions = Lake(tmp_path / "lake", registry.landing)
    shutil.rmtree(without_predictions.root / "fraud" / "predictions")
    assert without_predictions.partition_files("fraud", "predictions") == []
    after = reports(without_predictions)
    assert after[0].equals(before[0]) and after[1].equals(before[1])
    assert set(after[1].column("window").to_pylist()) == {"day", "30d"}
    assert max(after[1].column("rows").to_pylist()) > 20 * 2500  # the window covers every profiled day


@pytest.mark.slow
def test_the_baseline_is_frozen_once_and_named_by_its_window(drift_run, tmp_path):
    registry, _, _ = drift_run
    lake = Lake(registry.lake, registry.landing)
    fraud = registry.model("fraud")
    assert baseline_name(fraud) == "window_20260901_20260910"
    path = lake.document_path("fraud", "baselines", baseline_name(fraud))
    frozen = path.read_bytes()
    stored = current_baseline(lake, fraud)
    # The baseline the run froze is what the window's data freezes to, and reading it rewrites nothing.
    assert freeze_baseline(lake, fraud, name=baseline_name(fraud)).hash == stored.hash
    assert path.read_bytes() == frozen

    # Once frozen it stays: a window day re-ingested (on a copy of the lake) would freeze another baseline,
    # but the stored one is what the pipeline keeps comparing against.
    shutil.copytree(lake.root, tmp_path / "lake")
    copy = Lake(tmp_path / "lake", registry.landing)
    first = copy.read_partition("fraud", "predictions", fraud.baseline.start)
    copy.write_partition("fraud", "predictions", fraud.baseline.start, first.slice(0, first.num_rows // 2))
    assert freeze_baseline(copy, fraud, name=baseline_name(fraud)).hash != stored.hash
    assert current_baseline(copy, fraud).hash == stored.hash
    assert copy.document_path("fraud", "baselines", baseline_name(fraud)).read_bytes() == frozen


@pytest.mark.slow
def test_a_trailing_window_baseline_compares_each_day_with_the_days_before_it(drift_run):
    registry, _, _ = drift_run
    lake = Lake(registry.lake, registry.landing)
    fraud = registry.model("fraud")
    trailing = fraud.model_copy(update={"baseline": fraud.baseline.model_copy(update={"trailing_days": 3})})
    baseline = current_baseline(lake, fraud)
    incident = next(i for i in INCIDENTS if i.id == "fraud_new_payment_type")

    def missing_delta(model, offset: int) -> float:
        report = drift_of_day(lake, model, baseline, None, DEFAULT_START + dt.timedelta(days=offset)).to_pandas()
        row = report[(report.column == "avg_amount_30d") & (report.version == "all") & (report.window == "day")]
        return float(row[row.metric == "missing_rate_delta"].value.iloc[0])

    first, last = incident.start_day, incident.end_day
    assert missing_delta(trailing, first) > 0.05  # the first day still stands out against the days before
    assert abs(missing_delta(trailing, last)) < 0.03  # by the last day the trailing reference has the new normal
    assert missing_delta(fraud, last) > 0.05  # while the frozen window still sees it
    assert missing_delta(trailing, last + 1) < -0.05  # and the day after, the recovery shows against the incident days
