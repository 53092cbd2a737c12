"""Shadow traffic: v12 scores the served payments before its canary, and closedloop keeps those rows apart.

The rows pair with the served ones on the registry's ``pairing_key`` (``request_id`` for fraud);
the comparison of two versions reads them, nothing else in the loop does.
"""

import datetime as dt
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import yaml

from assets.predictions import build_shadow_asset
from checks.contract import build_contract_checks
from closedloop.core.lake import Lake
from closedloop.core.specs import RegistryError, read_registry
from closedloop.evaluation.eval_stats import eval_stats
from closedloop.evaluation.outcomes import outcomes_for_day
from closedloop.inputs.contract import ContractError, prediction_types
from closedloop.inputs.ingest import ingest_labels, ingest_predictions, ingest_shadow
from closedloop.registry import load_registry
from closedloop.simulator import DEFAULT_START, fraud, simulate
from closedloop.simulator.incidents import INCIDENTS
from orchestration.definitions import build_definitions
from tests.helpers import TEST_REGISTRY, day, fraud_rows, land
from wiring.resources import LakeResource

SHADOW_DAYS = range(fraud.V12_SHADOW_DAY, fraud.V12_CANARY_DAY)
SHIFT = {i.id: i for i in INCIDENTS}["fraud_v12_calibration_shift"].params["logit_shift"]
FEATURES = fraud.NUMERIC_FEATURES + fraud.CATEGORICAL_FEATURES + fraud.SEGMENTS


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    """60 days: the shadow week and v12's calibration shift incident both fit."""
    out = tmp_path_factory.mktemp("shadow") / "landing"
    simulate(out, days=60, fraud_rows_per_day=800, triage_rows_per_day=50)
    return out


@pytest.fixture(scope="module")
def paired(landing) -> pd.DataFrame:
    """Every shadow row beside the served row of the same request (served suffix ``_served``)."""
    return _paired(landing)


def _paired(landing: Path) -> pd.DataFrame:
    served = ds.dataset(landing / "fraud" / "predictions", partitioning="hive").to_table().to_pandas()
    shadow = ds.dataset(landing / "fraud" / "shadow", partitioning="hive").to_table().to_pandas()
    served = served.drop_duplicates("prediction_id")  # exact duplicates are client retries
    return shadow.merge(served, on="request_id", how="left", suffixes=("", "_served"), validate="one_to_one")


def _logit(p: pd.Series) -> np.ndarray:
    return np.log(p / (1.0 - p)).to_numpy()


# --- the simulator ------------------------------------------------------------------------------


def test_v12_scores_in_shadow_only_the_week_before_its_canary(landing):
    folders = sorted(p.name for p in (landing / "fraud" / "shadow").iterdir())
    assert folders == [f"date={DEFAULT_START + dt.timedelta(days=d)}" for d in SHADOW_DAYS]
    assert folders[0] == "date=2026-09-29" and folders[-1] == "date=2026-10-05"
    assert not (landing / "ticket_triage" / "shadow").exists()


def test_every_served_payment_has_a_request_id_and_one_shadow_row_on_shadow_days(landing, paired):
    served = ds.dataset(landing / "fraud" / "predictions", partitioning="hive").to_table().to_pandas()
    assert served["request_id"].notna().all()
    assert served.groupby("request_id")["prediction_id"].nunique().max() == 1
    first = served[served["date"].astype(str) == str(DEFAULT_START)]
    assert first["request_id"].str.fullmatch(r"pay_20260901_\d{6}").all()

    on_shadow_days = served[served["date"].astype(str).isin(paired["date"].astype(str).unique())]
    assert len(paired) == on_shadow_days["request_id"].nunique()
    assert paired["prediction_id_served"].notna().all()  # every shadow row pairs with a served one
    assert not set(paired["prediction_id"]) & set(served["prediction_id"])
    assert set(paired["model_version"]) == {"v12"} and set(paired["model_version_served"]) == {"v11"}
    assert (paired["ts"] == paired["ts_served"]).all()
    for column in FEATURES:
        same = (paired[column] == paired[f"{column}_served"]) | (
            paired[column].isna() & paired[f"{column}_served"].isna()
        )
        assert same.all(), column


def test_shadow_scores_carry_v12s_calibration_shift_when_the_run_schedules_it(paired, tmp_path):
    both = paired[paired["score_served"].notna()]
    difference = _logit(both["score"]) - _logit(both["score_served"])
    assert difference.mean() == pytest.approx(SHIFT, abs=0.05)
    assert 0.2 < difference.std() < 0.5  # each version's own model noise, not a copy of the served score

    short = _paired(simulate(tmp_path / "short", days=35, fraud_rows_per_day=800, triage_rows_per_day=50).out)
    short = short[short["score_served"].notna()]
    assert (_logit(short["score"]) - _logit(short["score_served"])).mean() == pytest.approx(0.0, abs=0.05)


# --- the registry -------------------------------------------------------------------------------


def _registry_with(tmp_path: Path, **fraud_keys) -> Path:
    raw = yaml.safe_load(TEST_REGISTRY.read_text())
    raw["models"]["fraud"].update(fraud_keys)
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("key", "says"),
    [("prediction_id", "one of closedloop's own columns"), ("amount", "feature or segment"), ("2x", "not a valid")],
)
def test_the_registry_rejects_a_pairing_key_that_is_not_its_own_column(tmp_path, key, says):
    with pytest.raises(RegistryError) as caught:
        read_registry(_registry_with(tmp_path, pairing_key=key))
    assert "models.fraud.pairing_key" in str(caught.value) and says in str(caught.value)


def test_a_model_without_a_pairing_key_has_no_shadow(registry):
    assert registry.model("fraud").pairing_key == "request_id"
    assert registry.model("ticket_triage").pairing_key is None
    keys = build_definitions(registry).resolve_asset_graph().get_all_asset_keys()
    assert dg.AssetKey(["fraud", "shadow"]) in keys and dg.AssetKey(["ticket_triage", "shadow"]) not in keys


# --- ingest -------------------------------------------------------------------------------------


def test_shadow_rows_are_ingested_with_their_own_quarantine(registry, lake):
    fraud_spec = registry.model("fraud")
    ids = [f"s{i}" for i in range(10)]
    scores = [0.9, float("nan")] + [0.1] * 8
    request_ids = [None] + [f"req_{i}" for i in range(1, 10)]
    land(
        lake,
        "fraud",
        "shadow",
        day(28),
        fraud_rows(
            day(28), ids, model_version=["v12"] * 10, score=scores, request_id=pa.array(request_ids, pa.string())
        ),
    )

    result = ingest_shadow(lake, fraud_spec, day(28))

    assert (result.table, result.accepted, result.quarantined) == ("shadow", 8, 2)
    assert result.quarantine_reasons == {"missing request_id": 1, "score missing or NaN": 1}
    accepted = lake.read_partition("fraud", "shadow", day(28))
    assert accepted.schema == pa.schema(list(prediction_types(fraud_spec).items()))
    assert accepted["decision"].to_pylist() == [0] * 8  # v12's threshold, 0.5
    held = pq.read_table(lake.quarantine_path("fraud", "shadow", day(28)))
    assert "table=shadow" in str(lake.quarantine_path("fraud", "shadow", day(28)))
    assert held["reason"].to_pylist() == ["missing request_id", "score missing or NaN"]
    assert not lake.quarantine_path("fraud", "predictions", day(28)).exists()


def test_a_day_without_shadow_traffic_is_an_empty_partition(registry, lake):
    result = ingest_shadow(lake, registry.model("fraud"), day(3))
    assert (result.landing_rows, result.accepted) == (0, 0)
    table = lake.read_partition("fraud", "shadow", day(3))
    assert table.num_rows == 0 and "request_id" in table.column_names


def test_the_request_key_is_required_in_predictions_and_kept_through_outcomes(registry, lake):
    model = registry.model("fraud")
    ids = [f"p{i}" for i in range(6)]
    land(lake, "fraud", "predictions", day(5), fraud_rows(day(5), ids, request_id=["r0", None, "r2", "", "r4", "r5"]))
    result = ingest_predictions(lake, model, day(5))
    assert result.quarantine_reasons == {"missing request_id": 2}
    outcomes = outcomes_for_day(lake, model, day(5), day(5)).table
    assert outcomes["request_id"].to_pylist() == ["r0", "r2", "r4", "r5"]

    land(lake, "fraud", "predictions", day(6), fraud_rows(day(6), ids).drop_columns(["request_id"]))
    with pytest.raises(ContractError, match=r"'request_id'.*models\.fraud\.pairing_key"):
        ingest_predictions(lake, model, day(6))


# --- the rest of the loop ignores shadow rows ---------------------------------------------------


def test_outcomes_and_eval_stats_of_a_shadow_day_count_only_served_rows(landing, tmp_path):
    registry = load_registry(TEST_REGISTRY, landing=str(landing), lake=str(tmp_path / "lake"))
    lake, model = Lake(registry.lake, registry.landing), registry.model("fraud")
    shadow_day = day(fraud.V12_SHADOW_DAY)
    ingested = ingest_predictions(lake, model, shadow_day)
    served = ingested.accepted
    # One shadow row per served payment, whether or not the served row itself passed the contract.
    assert ingest_shadow(lake, model, shadow_day).accepted == served + ingested.quarantined
    for offset in range(fraud.V12_SHADOW_DAY, fraud.V12_SHADOW_DAY + 8):
        ingest_labels(lake, model, day(offset))

    outcomes = outcomes_for_day(lake, model, shadow_day, day(fraud.V12_SHADOW_DAY + 7))
    assert outcomes.summary.n == served and outcomes.summary.n_labeled > 0
    assert set(outcomes.table["model_version"].to_pylist()) == {"v11"}
    stats = eval_stats(outcomes.table, model, shadow_day).to_pandas()
    everyone = stats[stats["segment"] == "all"]
    assert everyone["n"].sum() == served and set(everyone["model_version"]) == {"v11"}


def test_no_asset_reads_the_shadow_table_and_the_daily_job_writes_it(registry):
    defs = build_definitions(registry)
    graph = defs.resolve_asset_graph()
    shadow = dg.AssetKey(["fraud", "shadow"])
    assert graph.get(shadow).child_keys == set()
    assert graph.get(shadow).group_name == "fraud"
    job = defs.resolve_job_def("fraud_pipeline")
    assert "fraud__shadow" in {node.name for node in job.nodes_in_topological_order}


@pytest.mark.slow
def test_materializing_fraud_shadow_on_a_shadow_day_and_a_day_without(landing, tmp_path):
    registry = load_registry(TEST_REGISTRY, landing=str(landing), lake=str(tmp_path / "lake"))
    model = registry.model("fraud")
    shadow_check = [c for c in build_contract_checks(model) if c.node_def.name == "fraud__shadow_contract"]
    lake = Lake(registry.lake, registry.landing)
    for offset, rows in ((fraud.V12_SHADOW_DAY, True), (fraud.V12_SHADOW_DAY - 1, False)):
        result = dg.materialize(
            [build_shadow_asset(model), *shadow_check],
            partition_key=day(offset),
            resources={"lake": LakeResource(root=str(registry.lake), landing=str(registry.landing))},
            instance=dg.DagsterInstance.ephemeral(),
        )
        assert result.success
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert checks == dict.fromkeys(
            ["shadow_have_unique_ids", "shadow_match_contract", "shadow_quarantine_share_within_limit"], True
        )
        written = lake.read_partition("fraud", "shadow", day(offset))
        assert (written.num_rows > 0) == rows
        assert set(written["model_version"].to_pylist()) == ({"v12"} if rows else set())
