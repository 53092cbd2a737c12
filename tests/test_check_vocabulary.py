"""Every check family speaks one vocabulary: expected, observed, first_failure and failing_periods.

One small fraud run (a 3-day baseline, then a damaged day) fails a check of each family at once:
the contract (nulls and unseen devices), drift (the same columns, and the score), the ops guard
(slow responses) and the SLOs (a review rate out of its band, drifting inputs).
"""

import datetime as dt
import json
from types import SimpleNamespace

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from checks.results import NO_FAILURE, check_result
from closedloop.core.periods import period_in_words
from closedloop.registry import DEFAULT_CONFIG, load_registry
from closedloop.simulator import DEFAULT_START, simulate
from orchestration.definitions import build_definitions
from orchestration.runner import _failed_checks

BASELINE_DAYS = 3
DAMAGED = DEFAULT_START + dt.timedelta(days=BASELINE_DAYS)
FAMILIES = {
    "contract": ("predictions_null_rates_within_ceilings", "predictions_categories_mostly_known"),
    "drift": ("features_within_drift_limits", "score_within_drift_limits"),
    "ops_guards": ("latency_p95_within_ceiling",),
    "slos": ("review_rate_in_band", "inputs_within_drift_limits"),
}


def damage(landing) -> None:
    """The day after the baseline: a third of the IP scores missing, half the devices unseen, everything
    scored high (so reviewed) and answered ten times slower."""
    for path in sorted((landing / "fraud" / "predictions" / f"date={DAMAGED}").glob("*.parquet")):
        table = pq.read_table(path)
        n = table.num_rows

        def replace(name, values):
            nonlocal table
            table = table.set_column(table.schema.get_field_index(name), name, values)

        replace(
            "ip_reputation",
            pc.if_else(pa.array([i % 3 == 0 for i in range(n)]), pa.scalar(None, pa.float64()), table["ip_reputation"]),
        )
        replace(
            "device_type", pc.if_else(pa.array([i % 2 == 0 for i in range(n)]), "smart_fridge", table["device_type"])
        )
        replace("score", pa.array([0.97] * n))
        replace("latency_ms", pc.multiply(table["latency_ms"], 10.0))
        pq.write_table(table, path)


@pytest.fixture(scope="module")
def evaluations(tmp_path_factory):
    root = tmp_path_factory.mktemp("vocabulary")
    simulate(root / "landing", days=BASELINE_DAYS + 1, seed=3, fraud_rows_per_day=3000, triage_rows_per_day=50)
    damage(root / "landing")
    registry = load_registry(DEFAULT_CONFIG, landing=str(root / "landing"), lake=str(root / "lake"))
    fraud = registry.model("fraud")
    window = {"start": DEFAULT_START, "end": DAMAGED - dt.timedelta(days=1)}
    short = fraud.model_copy(update={"baseline": fraud.baseline.model_copy(update=window)})
    registry = registry.model_copy(update={"models": {**registry.models, "fraud": short}})
    tables = ("predictions", "labels", "profiles", "drift", "ops_stats")
    result = (
        build_definitions(registry)
        .resolve_job_def("fraud_pipeline")
        .execute_in_process(
            instance=dg.DagsterInstance.ephemeral(),
            asset_selection=[dg.AssetKey(["fraud", t]) for t in tables],
            tags={
                "dagster/asset_partition_range_start": DEFAULT_START.isoformat(),
                "dagster/asset_partition_range_end": DAMAGED.isoformat(),
            },
            raise_on_error=False,
        )
    )
    assert result.success  # none of these failures blocks
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@pytest.mark.slow
def test_every_check_result_carries_the_four_keys(evaluations):
    assert {name for names in FAMILIES.values() for name in names} <= set(evaluations)
    for name, evaluation in evaluations.items():
        metadata = evaluation.metadata
        assert {"expected", "observed", "first_failure", "failing_periods"} <= set(metadata), name
        periods = metadata["failing_periods"].value
        assert isinstance(periods, list) and periods == sorted(periods), name
        if evaluation.passed:
            assert metadata["first_failure"].value == NO_FAILURE and periods == [], name
        else:
            assert periods and metadata["first_failure"].value in evaluation.description, name


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_fails_on_the_damaged_day_with_numbers_for_expected_and_observed(evaluations, family):
    for name in FAMILIES[family]:
        evaluation = evaluations[name]
        metadata = evaluation.metadata
        assert not evaluation.passed, name
        first = metadata["first_failure"].value
        assert first.startswith(str(DAMAGED)) and "expected" in first and "observed" in first, name
        assert evaluation.description.startswith(f"Failed on {first}"), name
        periods = metadata["failing_periods"].value
        assert {p[:10] for p in periods} == {str(DAMAGED)}, name
        if name == "review_rate_in_band":  # a band is said in words; what was seen is a number
            assert metadata["expected"].value == "within [0.005, 0.06]" and metadata["observed"].value > 0.06
            continue
        expected, observed = metadata["expected"].value, metadata["observed"].value
        assert is_number(expected) and is_number(observed), (name, expected, observed)


@pytest.mark.slow
def test_the_ops_guard_judges_hours_and_says_the_ceiling(evaluations):
    latency = evaluations["latency_p95_within_ceiling"].metadata
    assert latency["expected"].value == 100.0 and latency["observed"].value > 100.0
    assert all(len(p) == len("2026-09-04 10:00") for p in latency["failing_periods"].value)
    assert latency["first_failure"].value.startswith(latency["failing_periods"].value[0])


@pytest.mark.slow
def test_the_contract_share_is_the_share_of_rows_that_met_the_predicate(evaluations):
    nulls = evaluations["predictions_null_rates_within_ceilings"].metadata
    assert nulls["column"].value == "ip_reputation"
    assert nulls["observed"].value == pytest.approx(2 / 3, abs=0.01)
    assert nulls["observed"].value < nulls["expected"].value < 1


@pytest.mark.slow
def test_the_run_summary_reads_the_vocabulary_as_it_always_showed_failed_checks(evaluations):
    """`closedloop run` and `demo` list a failed check by its failing days, an ops guard by its first broken hour."""
    failed = {f.check: f for f in _failed_checks(SimpleNamespace(get_asset_check_evaluations=evaluations.values))}
    for name in (*FAMILIES["contract"], *FAMILIES["drift"], *FAMILIES["slos"]):
        assert failed[name].days == (str(DAMAGED),), name
        assert failed[name].first_failure == evaluations[name].metadata["first_failure"].value, name
    latency = failed["latency_p95_within_ceiling"]
    assert latency.days == ()
    assert latency.first_failure == evaluations["latency_p95_within_ceiling"].metadata["first_failure"].value
    assert set(failed) == {name for name, e in evaluations.items() if not e.passed}


def test_the_helper_refuses_a_verdict_that_contradicts_itself():
    key = dg.AssetKey(["m", "t"])
    common = {"severity": dg.AssetCheckSeverity.WARN, "expected": 1.0, "observed": 2.0}
    with pytest.raises(ValueError, match="fails exactly when"):
        check_result("c", key, passed=False, first_failure=None, failing_periods=["2026-09-01"], **common)
    with pytest.raises(ValueError, match="fails exactly when"):
        check_result("c", key, passed=True, first_failure=None, failing_periods=["2026-09-01"], **common)
    with pytest.raises(ValueError, match="may not set"):
        check_result("c", key, passed=True, first_failure=None, failing_periods=[], metadata={"observed": 3}, **common)
    result = check_result(
        "c", key, passed=False, first_failure="2026-09-01: x", failing_periods=["2026-09-02", "2026-09-01"], **common
    )
    assert result.description == "Failed on 2026-09-01: x (2 failing periods in all)."
    assert result.metadata["failing_periods"].value == ["2026-09-01", "2026-09-02"]
    assert list(result.metadata)[:4] == ["expected", "observed", "first_failure", "failing_periods"]


def test_periods_in_words():
    assert period_in_words(dt.date(2026, 9, 16)) == "2026-09-16"
    assert period_in_words("2026-09-16") == "2026-09-16"
    assert period_in_words("2026-09-16T10:00:00+00:00") == "2026-09-16 10:00"
    assert period_in_words(dt.datetime(2026, 9, 16, 10, tzinfo=dt.UTC)) == "2026-09-16 10:00"
    assert period_in_words(dt.datetime(2026, 9, 16, 10)) == "2026-09-16 10:00"  # naive: already UTC


@pytest.mark.slow
def test_the_four_values_are_plain_json(evaluations):
    for evaluation in evaluations.values():
        values = [
            evaluation.metadata[key].value for key in ("expected", "observed", "first_failure", "failing_periods")
        ]
        assert json.loads(json.dumps(values)) == values, evaluation.check_name
