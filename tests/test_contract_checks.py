"""Contract checks in-process: GX suites learned from the baseline, one verdict per predicate."""

import datetime as dt
import json
import shutil

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from closedloop.core.lake import Lake
from closedloop.core.specs import ColumnContract, ContractSpec
from closedloop.inputs.contract import LearnedColumn, landing_tables, learn_contract
from closedloop.inputs.expectations import (
    CONTRACT_CHECKS,
    day_parameters,
    null_rate_ceiling,
    prediction_expectations,
)
from closedloop.inputs.gx_adapter import validate
from closedloop.registry import load_registry
from closedloop.simulator import DEFAULT_START, simulate
from closedloop.simulator.incidents import INCIDENTS
from orchestration.definitions import build_definitions
from tests.helpers import TEST_REGISTRY

DAYS = 12
DAMAGED = DEFAULT_START + dt.timedelta(days=DAYS - 1)  # the day after the baseline window (days 0-9) and day 10


def day(offset: int) -> str:
    return (DEFAULT_START + dt.timedelta(days=offset)).isoformat()


def run(registry, model: str, last: int = DAYS - 1):
    """Ingest and its contract checks only (shadow scores too: none landed, so empty partitions pass)."""
    job = build_definitions(registry).resolve_job_def(f"{model}_pipeline")
    return job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        asset_selection=[dg.AssetKey([model, table]) for table in landing_tables(registry.model(model))],
        raise_on_error=False,
        tags={"dagster/asset_partition_range_start": day(0), "dagster/asset_partition_range_end": day(last)},
    )


def damage_last_day(landing) -> None:
    """What goes wrong upstream on the last day: new devices, missing IP scores, amounts in cents, a new column."""
    for path in sorted((landing / "fraud" / "predictions" / f"date={DAMAGED}").glob("*.parquet")):
        table = pq.read_table(path)
        n = table.num_rows
        flood = pa.array([i % 2 == 0 for i in range(n)])
        table = table.set_column(
            table.schema.get_field_index("device_type"),
            "device_type",
            pc.if_else(flood, pa.scalar("smart_fridge"), table.column("device_type")),
        )
        table = table.set_column(
            table.schema.get_field_index("ip_reputation"),
            "ip_reputation",
            pc.if_else(
                pa.array([i % 3 == 0 for i in range(n)]), pa.scalar(None, pa.float64()), table.column("ip_reputation")
            ),
        )
        table = table.set_column(
            table.schema.get_field_index("amount"), "amount", pc.multiply(table.column("amount"), 1000.0)
        )
        table = table.append_column("experiment_arm", pa.array(["b"] * n))
        pq.write_table(table, path)
    labels = landing / "fraud" / "labels" / f"date={DAMAGED}"
    labels.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "prediction_id": pa.array([f"ghost-{i}" for i in range(30)]),
                "label": pa.array([0] * 30, pa.int8()),
                "label_ts": pa.array(
                    [dt.datetime.combine(DAMAGED, dt.time(12), tzinfo=dt.UTC)] * 30, pa.timestamp("us", tz="UTC")
                ),
            }
        ),
        labels / "part-99.parquet",
    )


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    root = tmp_path_factory.mktemp("contract") / "landing"
    simulate(root, days=DAYS, seed=3, fraud_rows_per_day=3000, triage_rows_per_day=100)
    damage_last_day(root)
    shutil.rmtree(root / "fraud" / "predictions" / f"date={day(10)}")  # the feed skipped a day
    return root


@pytest.fixture(scope="module")
def damaged_run(landing, tmp_path_factory):
    registry = load_registry(TEST_REGISTRY, landing=str(landing), lake=str(tmp_path_factory.mktemp("lake")))
    result = run(registry, "fraud")
    names = {c.name for c in CONTRACT_CHECKS}
    contract = [e for e in result.get_asset_check_evaluations() if e.check_name in names]
    return registry, result, {e.check_name: e for e in contract}


def test_every_predicate_reports_once_per_run(damaged_run):
    _, _, evaluations = damaged_run
    assert set(evaluations) == {c.name for c in CONTRACT_CHECKS}


def test_a_day_with_nothing_landed_is_a_named_warning(damaged_run):
    _, _, evaluations = damaged_run
    landed = evaluations["predictions_landed"]
    assert not landed.passed and landed.severity == dg.AssetCheckSeverity.WARN
    assert landed.metadata["failing_periods"].value == [day(10)]


@pytest.mark.parametrize(
    ("check", "column"),
    [
        ("predictions_categories_mostly_known", "device_type"),
        ("predictions_null_rates_within_ceilings", "ip_reputation"),
        ("predictions_values_within_baseline_ranges", "amount"),
    ],
)
def test_distribution_changes_warn_on_their_day_naming_the_column(damaged_run, check, column):
    _, _, evaluations = damaged_run
    evaluation = evaluations[check]
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["failing_periods"].value == [str(DAMAGED)]
    assert evaluation.metadata["failing_columns"].value == [column]
    assert (
        column in evaluation.metadata["first_failure"].value
        and "expected" in evaluation.metadata["first_failure"].value
    )


def test_an_added_column_is_kept_with_a_warning(damaged_run):
    registry, _, evaluations = damaged_run
    evaluation = evaluations["predictions_columns_match_registry"]
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert "experiment_arm" in evaluation.metadata["first_failure"].value
    lake = Lake(registry.lake, registry.landing)
    assert "experiment_arm" in lake.read_partition("fraud", "predictions", DAMAGED).column_names


def test_labels_for_unknown_predictions_are_kept_counted_and_warned(damaged_run):
    registry, _, evaluations = damaged_run
    evaluation = evaluations["labels_reference_known_predictions"]
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["failing_periods"].value == [str(DAMAGED)]
    labels = Lake(registry.lake, registry.landing).read_partition("fraud", "labels", DAMAGED)
    assert pc.sum(pc.is_null(labels.column("model_version"))).as_py() == 30


def test_warnings_do_not_block_and_structural_checks_pass(damaged_run):
    _, result, evaluations = damaged_run
    assert result.success
    structural = [c.name for c in CONTRACT_CHECKS if c.structural]
    assert structural and all(evaluations[name].passed for name in structural)
    assert all(evaluations[name].severity == dg.AssetCheckSeverity.ERROR for name in structural)


def test_the_full_gx_result_is_kept_beside_the_partition(damaged_run):
    registry, _, _ = damaged_run
    path = Lake(registry.lake, registry.landing).document_path("fraud", "validations", f"predictions/{DAMAGED}")
    document = json.loads(path.read_text())
    assert document["success"] is False
    failed = {r["expectation_config"]["kwargs"].get("column") for r in document["results"] if not r["success"]}
    assert failed == {"device_type", "ip_reputation", "amount"}


def test_registry_severity_error_makes_distribution_checks_block(landing, tmp_path):
    registry = load_registry(TEST_REGISTRY, landing=str(landing), lake=str(tmp_path / "lake"))
    fraud = registry.model("fraud")
    strict = fraud.model_copy(update={"contract": fraud.contract.model_copy(update={"severity": "error"})})
    registry = registry.model_copy(update={"models": {**registry.models, "fraud": strict}})
    result = run(registry, "fraud")
    assert not result.success
    evaluation = {e.check_name: e for e in result.get_asset_check_evaluations()}[
        "predictions_null_rates_within_ceilings"
    ]
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    started = {e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START}
    assert "fraud__labels" not in started


def test_learned_bounds_and_registry_overrides(damaged_run):
    registry, _, _ = damaged_run
    lake = Lake(registry.lake, registry.landing)
    fraud = registry.model("fraud")
    learned = learn_contract(lake, fraud)
    assert (learned.start, learned.end, learned.days) == (fraud.baseline.start, fraud.baseline.end, 10)
    assert set(learned.columns["device_type"].values) == {"android", "desktop", "ios", "mobile_web", "pos_terminal"}
    assert 0 < learned.columns["merchant_id"].outside_share < 1  # more merchants than the check enumerates
    suite = {(e.check, e.column): e.kwargs for e in prediction_expectations(fraud, DAMAGED, learned)}
    assert suite[("predictions_null_rates_within_ceilings", "avg_amount_30d")]["mostly"] == pytest.approx(
        1 - learned.columns["avg_amount_30d"].null_rate - 0.05, abs=1e-6
    )
    overridden = fraud.model_copy(
        update={
            "contract": fraud.contract.model_copy(
                update={"columns": {"avg_amount_30d": ColumnContract(max_null_rate=0.5)}}
            )
        }
    )
    suite = {(e.check, e.column): e.kwargs for e in prediction_expectations(overridden, DAMAGED, learned)}
    assert suite[("predictions_null_rates_within_ceilings", "avg_amount_30d")]["mostly"] == 0.5
    inside = {(e.check, e.column) for e in prediction_expectations(fraud, fraud.baseline.end, learned)}
    assert not any(
        check == "predictions_null_rates_within_ceilings" for check, _ in inside
    )  # the baseline is not judged by itself


def test_a_null_rate_that_moves_by_itself_gets_a_ceiling_from_its_own_variation():
    # A feature joined from a source that sometimes leaves it empty: 10% to 40% missing on clean days.
    moving = (0.10, 0.40, 0.22, 0.31, 0.15, 0.37, 0.12, 0.28, 0.19, 0.35)
    column = LearnedColumn("income", "numeric", float(np.mean(moving)), moving, 0.0, 1.0)
    contract = ContractSpec()
    expected = np.mean(moving) + 3 * np.std(moving, ddof=1)
    assert null_rate_ceiling(column, contract) == pytest.approx(expected)
    assert null_rate_ceiling(column, contract) > max(moving)  # no clean baseline day would have warned
    # A steady column keeps the margin: three sd of a steady 2% are far inside it.
    steady = (0.020, 0.021, 0.019, 0.020, 0.022, 0.018, 0.020, 0.021, 0.019, 0.020)
    column = LearnedColumn("amount", "numeric", 0.02, steady, 0.0, 1.0)
    assert null_rate_ceiling(column, contract) == pytest.approx(0.02 + contract.null_rate_margin)
    assert null_rate_ceiling(column, ContractSpec(null_rate_sd=1000)) == 1.0


def incident_days(incident_id: str) -> list[str]:
    incident = next(i for i in INCIDENTS if i.id == incident_id)
    return [day(d) for d in range(incident.start_day, incident.end_day + 1)]


@pytest.mark.slow
def test_simulated_incidents_trip_their_checks_on_their_days_only(tmp_path):
    landing = tmp_path / "landing"
    simulate(landing, days=24, seed=7, fraud_rows_per_day=3000, triage_rows_per_day=100)
    registry = load_registry(TEST_REGISTRY, landing=str(landing), lake=str(tmp_path / "lake"))
    result = run(registry, "fraud", last=23)
    assert result.success
    failing = {
        e.check_name: (e.metadata["failing_periods"].value, e.metadata["failing_columns"].value)
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.asset_key.path[-1] in ("predictions", "labels")
    }
    new_payment_type = incident_days("fraud_new_payment_type")
    explosion = incident_days("fraud_merchant_id_explosion")
    # The ip_reputation nulls start on the new payment type's last day.
    nulls = sorted({*new_payment_type, *incident_days("fraud_ip_reputation_nulls")})
    assert failing == {
        "predictions_null_rates_within_ceilings": (nulls, ["avg_amount_30d", "ip_reputation"]),
        "predictions_categories_mostly_known": (new_payment_type + explosion, ["merchant_id", "payment_type"]),
    }


def test_one_suite_judges_each_day_against_its_own_bounds(damaged_run):
    """The day's UTC bounds are suite parameters: the suite GX built once judges every day by its own."""
    registry, _, _ = damaged_run
    fraud = registry.model("fraud")
    frame = Lake(registry.lake, registry.landing).read_partition("fraud", "predictions", DAMAGED).to_pandas()
    learned = learn_contract(Lake(registry.lake, registry.landing), fraud)
    suite = prediction_expectations(fraud, DAMAGED, learned)
    on_its_day, _ = validate(frame, suite, day_parameters(DAMAGED))
    next_day = DAMAGED + dt.timedelta(days=1)
    on_the_next, _ = validate(frame, suite, day_parameters(next_day))

    def ts_bounds(outcomes):
        [ts] = [o for o in outcomes if o.column == "ts" and o.expectation == "ExpectColumnValuesToBeBetween"]
        return ts

    assert ts_bounds(on_its_day).success and not ts_bounds(on_the_next).success
    assert ts_bounds(on_the_next).expected["min_value"] == dt.datetime.combine(next_day, dt.time(), tzinfo=dt.UTC)
    assert ts_bounds(on_the_next).observed["unexpected_percent"] == 100.0
