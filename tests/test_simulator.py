"""Tests of the production simulator (closedloop.simulator)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from closedloop.simulator import DEFAULT_START, SimulationResult, fraud, simulate, simulate_wide, ticket_triage, wide
from closedloop.simulator.incidents import CLEAN_SCENARIOS, INCIDENTS, TRUTH_FILE, WIDE_INCIDENTS
from tests.helpers import TEST_REGISTRY

DAYS = 60
SIZES = {"fraud_rows_per_day": 3_000, "triage_rows_per_day": 1_500}
TS = pa.timestamp("us", tz="UTC")
INCIDENT_BY_ID = {i.id: i for i in INCIDENTS}
CLEAN_BY_ID = {c.id: c for c in CLEAN_SCENARIOS}

FRAUD_SCHEMA = {
    "prediction_id": pa.string(),
    "model_version": pa.string(),
    "ts": TS,
    "score": pa.float64(),
    "latency_ms": pa.float64(),
    **{name: pa.float64() for name in fraud.NUMERIC_FEATURES},
    **{name: pa.string() for name in fraud.CATEGORICAL_FEATURES + fraud.SEGMENTS},
    "request_id": pa.string(),
}
TRIAGE_SCHEMA = {
    "request_id": pa.string(),
    "model_version": pa.string(),
    "created_at": TS,
    "p_urgent": pa.float64(),
    "decision": pa.int8(),
    "route": pa.string(),
    "latency_ms": pa.float64(),
    "cost_usd": pa.float64(),
    "is_fallback": pa.bool_(),
    "error": pa.string(),
    **{name: pa.float64() for name in ticket_triage.NUMERIC_FEATURES},
    **{name: pa.string() for name in ticket_triage.CATEGORICAL_FEATURES + ticket_triage.SEGMENTS},
}
LABEL_SCHEMAS = {
    "fraud": {"prediction_id": pa.string(), "label": pa.int8(), "label_ts": TS},
    "ticket_triage": {"request_id": pa.string(), "is_urgent": pa.int8(), "reviewed_at": TS},
}
# (id, ts, score, label, label_ts) per model, in the model's own naming
COLUMNS = {
    "fraud": ("prediction_id", "ts", "score", "label", "label_ts"),
    "ticket_triage": ("request_id", "created_at", "p_urgent", "is_urgent", "reviewed_at"),
}


# --- fixtures / helpers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    seen: list[int] = []
    out = tmp_path_factory.mktemp("sim") / "landing"
    result = simulate(out, days=DAYS, on_day=seen.append, **SIZES)
    assert seen == list(range(DAYS))
    return result


def _day_index(ts: pd.Series, start: dt.date = DEFAULT_START) -> pd.Series:
    return (ts - pd.Timestamp(start, tz="UTC")).dt.days


def _read(out: Path, model: str, table: str) -> pd.DataFrame:
    dataset = ds.dataset(out / model / table, format="parquet", partitioning="hive")
    df = dataset.to_table().to_pandas()
    ts_col = COLUMNS[model][1] if table == "predictions" else COLUMNS[model][4]
    df["day"] = _day_index(df[ts_col])
    return df


@pytest.fixture(scope="module")
def fraud_preds(run: SimulationResult) -> pd.DataFrame:
    return _read(run.out, "fraud", "predictions")


@pytest.fixture(scope="module")
def triage_preds(run: SimulationResult) -> pd.DataFrame:
    return _read(run.out, "ticket_triage", "predictions")


@pytest.fixture(scope="module")
def labels(run: SimulationResult) -> dict[str, pd.DataFrame]:
    return {m: _read(run.out, m, "labels") for m in COLUMNS}


def _labelled(preds: pd.DataFrame, labels: pd.DataFrame, model: str) -> pd.DataFrame:
    id_col, _, score, label, _ = COLUMNS[model]
    merged = preds.drop_duplicates(id_col).merge(labels[[id_col, label]], on=id_col)
    return merged[merged[score].notna()]


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


# --- determinism, API, layout --------------------------------------------------------------


def test_same_seed_gives_byte_identical_output(run: SimulationResult, tmp_path: Path) -> None:
    again = simulate(tmp_path / "again", days=DAYS, **SIZES)
    first, second = _files(run.out), _files(again.out)
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []
    assert again.rows == run.rows


def test_other_seed_differs_and_days_are_independent(run: SimulationResult, tmp_path: Path) -> None:
    short = _files(simulate(tmp_path / "short", days=3, **SIZES).out)
    other = _files(simulate(tmp_path / "other", days=3, seed=8, **SIZES).out)
    full = _files(run.out)
    predictions = [k for k in short if "/predictions/" in k]
    assert len(predictions) == 3 * (fraud.PARTS_PER_DAY + 1)
    # a day does not depend on how many days are simulated ...
    assert all(short[k] == full[k] for k in predictions)
    # ... but does depend on the seed
    assert all(short[k] != other[k] for k in predictions)


def test_result_counts_match_files(run: SimulationResult) -> None:
    assert (run.start, run.days, run.seed) == (DEFAULT_START, DAYS, 7)
    assert run.end == DEFAULT_START + dt.timedelta(days=DAYS - 1)
    assert run.truth_path == run.out / TRUTH_FILE
    for model in COLUMNS:
        for table in ("predictions", "labels"):
            files = sorted((run.out / model / table).rglob("*.parquet"))
            assert run.rows[model][table] == sum(pq.read_metadata(f).num_rows for f in files) > 0
    shadow = sorted((run.out / "fraud" / "shadow").rglob("*.parquet"))
    assert run.rows["fraud"]["shadow"] == sum(pq.read_metadata(f).num_rows for f in shadow) > 0
    assert "shadow" not in run.rows["ticket_triage"]


def test_layout(run: SimulationResult) -> None:
    dates = [DEFAULT_START + dt.timedelta(days=d) for d in range(DAYS)]
    for model, parts in (("fraud", fraud.PARTS_PER_DAY), ("ticket_triage", 1)):
        root = run.out / model / "predictions"
        assert sorted(p.name for p in root.iterdir()) == [f"date={d}" for d in dates]
        for folder in root.iterdir():
            names = sorted(p.name for p in folder.iterdir())
            assert names == [f"part-{i:02d}.parquet" for i in range(parts)]
        for folder in (run.out / model / "labels").iterdir():
            assert [p.name for p in folder.iterdir()] == ["part-00.parquet"]
    assert sorted(p.name for p in run.out.iterdir()) == ["fraud", TRUTH_FILE, "ticket_triage"]


def test_schemas(run: SimulationResult) -> None:
    expected = {"fraud": FRAUD_SCHEMA, "ticket_triage": TRIAGE_SCHEMA}
    for model in COLUMNS:
        for path in (run.out / model / "predictions").rglob("*.parquet"):
            schema = pq.read_schema(path)
            assert dict(zip(schema.names, schema.types, strict=False)) == expected[model], path
            assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"
        for path in (run.out / model / "labels").rglob("*.parquet"):
            schema = pq.read_schema(path)
            assert dict(zip(schema.names, schema.types, strict=False)) == LABEL_SCHEMAS[model], path


def test_columns_follow_the_registry(run: SimulationResult) -> None:
    registry = yaml.safe_load(TEST_REGISTRY.read_text())["models"]
    for model, spec in registry.items():
        rename = spec.get("columns", {})
        pred_cols = pq.read_schema(next((run.out / model / "predictions").rglob("*.parquet"))).names
        label_cols = pq.read_schema(next((run.out / model / "labels").rglob("*.parquet"))).names
        for canonical in ("prediction_id", "ts", "score"):
            assert rename.get(canonical, canonical) in pred_cols
        for canonical in ("prediction_id", "label", "label_ts"):
            assert rename.get(canonical, canonical) in label_cols
        wanted = spec["features"]["numeric"] + spec["features"]["categorical"] + spec["segments"]
        assert set(wanted) <= set(pred_cols)
        versions = ds.dataset(run.out / model / "predictions").to_table(columns=["model_version"])
        assert set(versions.column(0).unique().to_pylist()) <= set(spec["versions"])


def test_replaces_previous_output_and_stays_inside_out(tmp_path: Path) -> None:
    out = tmp_path / "landing"
    stale = out / "fraud" / "predictions" / "date=2031-01-01" / "part-00.parquet"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    keep = out / "other_model" / "keep.txt"
    keep.parent.mkdir(parents=True)
    keep.write_text("not ours")
    simulate(out, days=2, fraud_rows_per_day=200, triage_rows_per_day=100)
    assert not stale.exists()
    assert keep.read_text() == "not ours"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["landing"]


# --- ids and labels ----------------------------------------------------------------------------


def test_fraud_duplicates_are_exact_and_in_the_other_file(run: SimulationResult) -> None:
    frames = []
    for path in (run.out / "fraud" / "predictions").rglob("*.parquet"):
        frame = pq.read_table(path).to_pandas()
        frame["file"] = path.name
        frame["folder"] = path.parent.name
        frames.append(frame)
    preds = pd.concat(frames, ignore_index=True)
    data_cols = list(FRAUD_SCHEMA)
    dup = preds[preds.duplicated("prediction_id", keep=False)]
    share = preds.prediction_id.duplicated().mean()
    assert 0.3 * fraud.DUPLICATE_RATE < share < 3 * fraud.DUPLICATE_RATE
    assert (dup.groupby("prediction_id").size() == 2).all()
    assert dup[data_cols + ["folder"]].duplicated(keep=False).all()  # exact copies, same day
    assert (dup.groupby("prediction_id").file.nunique() == 2).all()  # in different files
    assert 0.2 * fraud.NAN_SCORE_RATE < preds.score.isna().mean() < 5 * fraud.NAN_SCORE_RATE
    scores = preds.score.dropna()
    assert scores.between(0, 1).all()


def test_triage_ids_unique(triage_preds: pd.DataFrame) -> None:
    assert triage_preds.request_id.is_unique
    assert triage_preds.p_urgent.between(0, 1).all()


@pytest.mark.parametrize("model", list(COLUMNS))
def test_labels_consistent_with_predictions(
    model: str, run: SimulationResult, fraud_preds: pd.DataFrame, triage_preds: pd.DataFrame, labels
) -> None:
    id_col, ts_col, _, label_col, label_ts_col = COLUMNS[model]
    preds = {"fraud": fraud_preds, "ticket_triage": triage_preds}[model].drop_duplicates(id_col)
    lab = labels[model]
    assert lab[id_col].is_unique
    assert set(lab[label_col].unique()) == {0, 1}
    merged = lab.merge(preds[[id_col, ts_col]], on=id_col, how="left")
    assert merged[ts_col].notna().all()  # labels only for existing predictions
    assert (merged[label_ts_col] >= merged[ts_col]).all()
    # the folder is the arrival date, and nothing arrives after the simulation's "now"
    assert (lab["date"].astype(str) == lab[label_ts_col].dt.strftime("%Y-%m-%d")).all()
    assert lab.day.max() <= DAYS - 1
    # most predictions old enough to have matured got a label
    mature = preds[_day_index(preds[ts_col]) < DAYS - 46]
    coverage = mature[id_col].isin(lab[id_col]).mean()
    assert {"fraud": 0.85, "ticket_triage": 0.80}[model] < coverage < 0.95


def test_label_delays(fraud_preds: pd.DataFrame, triage_preds: pd.DataFrame, labels) -> None:
    merged = labels["fraud"].merge(fraud_preds.drop_duplicates("prediction_id"), on="prediction_id")
    delay = (merged.label_ts - merged.ts).dt.total_seconds() / 86_400
    assert delay.min() >= 3 and delay.max() <= 45
    assert 7 <= delay.median() <= 21  # most within 1-3 weeks

    merged = labels["ticket_triage"].merge(triage_preds, on="request_id")
    delay = (merged.reviewed_at - merged.created_at).dt.total_seconds() / 86_400
    outage = INCIDENT_BY_ID["triage_label_outage"]
    normal = ~merged.day_x.eq(outage.end_day + 1)
    assert delay[normal].between(1, 3).all()


# --- incidents --------------------------------------------------------------------------------


def test_new_payment_type_nulls_avg_amount(fraud_preds: pd.DataFrame) -> None:
    inc = INCIDENT_BY_ID["fraud_new_payment_type"]
    during = fraud_preds.day.between(inc.start_day, inc.end_day)
    before = fraud_preds.day < inc.start_day
    missing = fraud_preds[inc.column].isna()
    assert missing[before].mean() < 0.02
    assert missing[during].mean() > 0.10
    assert (fraud_preds.payment_type == "bnpl")[~during].sum() == 0
    bnpl = fraud_preds[during & (fraud_preds.payment_type == "bnpl")]
    assert 0.10 < len(bnpl) / during.sum() < 0.20 and bnpl[inc.column].isna().all()


def test_ip_reputation_nulls_start_while_the_new_payment_type_is_still_on(fraud_preds: pd.DataFrame) -> None:
    first, second = INCIDENT_BY_ID["fraud_new_payment_type"], INCIDENT_BY_ID["fraud_ip_reputation_nulls"]
    assert first.start_day < second.start_day <= first.end_day  # the second fault starts inside the first
    missing = fraud_preds[second.column].isna().groupby(fraud_preds.day).mean()
    during = missing.loc[second.start_day : second.end_day]
    assert (during.between(0.15, 0.25)).all(), during
    assert (missing.drop(during.index) == 0).all()
    # ... and the first fault's column is untouched by the second
    bnpl_days = fraud_preds.day.between(first.start_day, first.end_day)
    assert fraud_preds.avg_amount_30d[~bnpl_days].isna().mean() < 0.02


def test_merchant_id_explosion(fraud_preds: pd.DataFrame) -> None:
    inc = INCIDENT_BY_ID["fraud_merchant_id_explosion"]
    seen = set(fraud_preds.merchant_id[fraud_preds.day < inc.start_day])
    assert 1_000 < len(seen) <= fraud.N_MERCHANTS

    def unseen(days: pd.Series) -> float:
        return (~fraud_preds.merchant_id[days].isin(seen)).mean()

    assert unseen(fraud_preds.day.between(inc.start_day, inc.end_day)) > 0.30
    assert unseen(fraud_preds.day.between(inc.end_day + 1, inc.end_day + 5)) < 0.02


def test_v12_canary_and_calibration_shift(fraud_preds: pd.DataFrame) -> None:
    preds = fraud_preds.dropna(subset=["score"])
    is_v12 = preds.model_version == "v12"
    assert not is_v12[preds.day < fraud.V12_CANARY_DAY].any()
    canary = preds.day.between(fraud.V12_CANARY_DAY, fraud.V12_FULL_DAY - 1)
    assert 0.07 < is_v12[canary].mean() < 0.13
    assert is_v12[preds.day >= fraud.V12_FULL_DAY].all()
    decided = preds.score >= 0.5
    v11_rate = decided[canary & ~is_v12].mean()
    v12_rate = decided[canary & is_v12].mean()
    assert 0.01 < v11_rate < 0.04
    assert v12_rate < 0.3 * v11_rate
    assert decided[preds.day >= fraud.V12_FULL_DAY].mean() < 0.3 * decided[preds.day < 12].mean()


def test_v12_ranks_as_well_as_v11(fraud_preds: pd.DataFrame, labels) -> None:
    merged = _labelled(fraud_preds, labels["fraud"], "fraud")
    clean = merged[merged.day < 12]
    auc_v11 = roc_auc_score(clean.label, clean.score)
    assert 0.85 < auc_v11 < 0.95
    assert 0.015 < clean.label.mean() < 0.035
    v12 = merged[(merged.day >= fraud.V12_FULL_DAY)]
    assert abs(roc_auc_score(v12.label, v12.score) - auc_v11) < 0.04


def test_traffic_spike(triage_preds: pd.DataFrame) -> None:
    inc = INCIDENT_BY_ID["triage_traffic_spike"]
    h0, h1 = inc.hours
    hours = triage_preds.created_at.dt.hour.between(h0, h1 - 1)
    spike = triage_preds[hours & (triage_preds.day == inc.start_day)]
    clean = triage_preds[hours & (triage_preds.day < inc.start_day)]
    assert spike.latency_ms.quantile(0.95) >= 4 * clean.latency_ms.quantile(0.95)
    assert spike.cost_usd.mean() >= 2.5 * clean.cost_usd.mean()
    assert spike.is_fallback.mean() > 2 * clean.is_fallback.mean()
    # and outside the spike hours the day is ordinary
    calm = triage_preds[~hours & (triage_preds.day == inc.start_day)]
    assert calm.latency_ms.quantile(0.95) < 1.5 * clean.latency_ms.quantile(0.95)
    # sanity of the clean baseline: ~$3-4 per 1k tickets
    assert 2.5 < 1000 * triage_preds[triage_preds.day < inc.start_day].cost_usd.mean() < 4.5


def test_triage_serving_columns(triage_preds: pd.DataFrame) -> None:
    clean = triage_preds[triage_preds.day < INCIDENT_BY_ID["triage_traffic_spike"].start_day]
    shares = clean.route.value_counts(normalize=True)
    assert 0.6 < shares["llm_large"] < 0.8 and 0.15 < shares["llm_small"] < 0.35
    assert (clean.route == "rules").eq(clean.is_fallback).all()
    assert clean.error.notna().mean() < 0.02
    assert clean.is_fallback[clean.error.notna()].all()
    llm = clean[clean.route != "rules"]
    assert (llm.decision == (llm.p_urgent >= ticket_triage.THRESHOLD)).all()
    assert (clean.cost_usd[clean.is_fallback & clean.error.ne("timeout")] == 0).all()
    assert (clean.cost_usd[~clean.is_fallback] > 0).all()


def test_triage_clean_canary_decides_at_its_own_threshold(triage_preds: pd.DataFrame) -> None:
    canary = CLEAN_BY_ID["triage_v4_canary"]
    v4 = triage_preds.model_version == canary.version
    assert not v4[triage_preds.day < canary.start_day].any()
    assert 0.17 < v4[triage_preds.day >= canary.start_day].mean() < 0.23
    llm = triage_preds[~triage_preds.is_fallback]
    for version, threshold in (("v3", ticket_triage.THRESHOLD), ("v4", canary.params["threshold"])):
        rows = llm[llm.model_version == version]
        assert (rows.decision == (rows.p_urgent >= threshold)).all(), version
    served = triage_preds[triage_preds.day >= canary.start_day]
    rates = served.groupby("model_version").decision.mean()
    assert rates["v4"] > 1.2 * rates["v3"]  # legitimately higher: a lower threshold, the same scores
    scores = served.groupby("model_version").p_urgent.median()
    assert abs(scores["v4"] - scores["v3"]) < 0.02


def test_triage_weekends_bring_fewer_tickets_and_more_urgent_ones(triage_preds: pd.DataFrame) -> None:
    weekly = CLEAN_BY_ID["triage_weekly_seasonality"]
    weekend = pd.Series(
        [(DEFAULT_START + dt.timedelta(days=d)).weekday() in weekly.params["weekend_days"] for d in range(DAYS)]
    )
    volume = triage_preds.groupby("day").size()
    urgent = triage_preds[triage_preds.model_version == "v3"].groupby("day").decision.mean()
    assert volume[weekend].max() < 0.7 * volume[~weekend].min()
    assert urgent[weekend].mean() > 1.15 * urgent[~weekend].mean()
    plans = triage_preds.groupby(triage_preds.day.map(weekend)).plan_tier.value_counts(normalize=True)
    assert plans[(True, "enterprise")] > plans[(False, "enterprise")] + 0.02


def test_label_outage_and_backlog(labels) -> None:
    inc = INCIDENT_BY_ID["triage_label_outage"]
    per_day = labels["ticket_triage"].groupby("day").size()
    assert not set(range(inc.start_day, inc.end_day + 1)) & set(per_day.index)
    typical = per_day.loc[inc.start_day - 7 : inc.start_day - 1].mean()
    assert per_day.loc[inc.end_day + 1] > 3 * typical
    # fraud labels keep arriving
    assert set(range(inc.start_day, inc.end_day + 1)) <= set(labels["fraud"].day)


def test_triage_concept_drift(triage_preds: pd.DataFrame, labels) -> None:
    merged = _labelled(triage_preds, labels["ticket_triage"], "ticket_triage")
    early = merged[merged.day <= 20]
    late = merged[merged.day.between(50, 59)]
    auc_early = roc_auc_score(early.is_urgent, early.p_urgent)
    auc_late = roc_auc_score(late.is_urgent, late.p_urgent)
    assert 0.85 < auc_early < 0.95
    assert auc_late < auc_early - 0.06
    assert 0.08 < early.is_urgent.mean() < 0.18
    assert abs(late.is_urgent.mean() - early.is_urgent.mean()) < 0.04  # concept, not prior, drift


def test_clean_days_are_stationary(fraud_preds: pd.DataFrame) -> None:
    daily = fraud_preds[fraud_preds.day < 12].groupby("day")
    volume = daily.size()
    base = SIZES["fraud_rows_per_day"]
    assert volume.between(0.8 * base, 1.2 * base).all()
    assert daily.score.median().std() < 0.1 * daily.score.median().mean()


# --- truth file ---------------------------------------------------------------------------------


def test_truth_file(run: SimulationResult) -> None:
    truth = json.loads(run.truth_path.read_text())
    assert truth["seed"] == 7 and truth["days"] == DAYS and truth["start"] == "2026-09-01"
    assert [i["id"] for i in truth["incidents"]] == [i.id for i in INCIDENTS]
    keys = {
        "id",
        "model",
        "kind",
        "start",
        "end",
        "start_day",
        "end_day",
        "signal",
        "signals",
        "column",
        "columns",
        "version",
        "hours",
        "gradual",
        "description",
    }
    for entry in truth["incidents"]:
        assert set(entry) == keys
        assert entry["signal"] == entry["signals"][0]
        for bound in ("start", "end"):
            offset = dt.timedelta(days=entry[f"{bound}_day"])
            assert dt.date.fromisoformat(entry[bound]) == DEFAULT_START + offset
    spike = next(i for i in truth["incidents"] if i["id"] == "triage_traffic_spike")
    assert spike["hours"] == [10, 16] and "ops.cost_per_1k" in spike["signals"]
    assert [i["id"] for i in truth["incidents"] if i["gradual"]] == ["triage_concept_drift"]
    assert [c["id"] for c in truth["clean"]] == [c.id for c in CLEAN_SCENARIOS]
    for entry in truth["clean"]:
        assert set(entry) == {"id", "model", "kind", "start", "end", "start_day", "end_day", "version", "description"}
        assert entry["end"] == "2026-10-30" and entry["end_day"] == DAYS - 1
    assert next(c for c in truth["clean"] if c["kind"] == "clean_canary")["version"] == "v4"


def test_short_runs_leave_out_incidents_that_do_not_fit(tmp_path: Path) -> None:
    result = simulate(tmp_path / "short", days=14, fraud_rows_per_day=1_000, triage_rows_per_day=200)
    truth = json.loads(result.truth_path.read_text())
    assert truth["days"] == 14 and truth["incidents"] == []  # days 12-15 do not fit in 14 days
    preds = _read(result.out, "fraud", "predictions")
    assert (preds.payment_type != "bnpl").all()

    result = simulate(tmp_path / "mid", days=31, fraud_rows_per_day=500, triage_rows_per_day=200)
    ids = [i["id"] for i in json.loads(result.truth_path.read_text())["incidents"]]
    assert ids == [
        "fraud_new_payment_type",
        "fraud_ip_reputation_nulls",
        "fraud_merchant_id_explosion",
        "triage_traffic_spike",
        "triage_label_outage",
    ]


def test_fraud_logs_its_serving_latency(fraud_preds: pd.DataFrame) -> None:
    median = fraud_preds.latency_ms.median()
    assert abs(median - fraud.LATENCY_MEDIAN_MS) < 0.1 * fraud.LATENCY_MEDIAN_MS
    assert fraud_preds.latency_ms.gt(0).all()


def test_wide_model_has_50_features_3_segments_a_weekly_rhythm_and_its_fault(tmp_path: Path) -> None:
    registry = yaml.safe_load((Path(__file__).resolve().parent.parent / "config" / "wide.yaml").read_text())
    spec = registry["models"]["wide"]
    result = simulate_wide(tmp_path / "landing", days=21, rows_per_day=1_500)
    preds = ds.dataset(result.out / "wide" / "predictions", partitioning="hive").to_table().to_pandas()
    features = spec["features"]["numeric"] + spec["features"]["categorical"]
    assert len(features) == 50 and len(spec["segments"]) == 3
    assert set(features + spec["segments"]) <= set(preds.columns)
    assert list(spec["features"]["numeric"]) == list(wide.NUMERIC_FEATURES)
    preds["day"] = _day_index(preds.ts)
    weekend = preds.ts.dt.day_of_week >= 5
    volume = preds.groupby("day").size()
    is_weekend = pd.Series([(DEFAULT_START + dt.timedelta(days=int(d))).weekday() >= 5 for d in volume.index])
    assert volume[is_weekend.to_numpy()].max() < 0.75 * volume[~is_weekend.to_numpy()].min()
    decided = preds.score >= spec["versions"]["v1"]["threshold"]
    assert decided[weekend].mean() > 1.1 * decided[~weekend].mean()
    assert 0.03 < decided.mean() < 0.12
    [fault] = WIDE_INCIDENTS
    missing = preds[fault.column].isna().groupby(preds.day).mean()
    assert (missing.loc[fault.start_day : fault.end_day] > 0.1).all()
    assert (missing.drop(range(fault.start_day, fault.end_day + 1)) == 0).all()
    truth = json.loads(result.truth_path.read_text())
    assert [i["id"] for i in truth["incidents"]] == [fault.id]
    assert [c["id"] for c in truth["clean"]] == ["wide_weekly_seasonality"]
    labels = ds.dataset(result.out / "wide" / "labels", partitioning="hive").to_table().to_pandas()
    assert labels.prediction_id.isin(preds.prediction_id).all() and 0.05 < labels.label.mean() < 0.3
