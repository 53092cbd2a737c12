"""Recalibration: a calibrator fitted on matured labels lowers ECE on labels it never saw, and
proposes the threshold that restores the approved decision rate; the runbook carries it out."""

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pytest
from sklearn.calibration import calibration_curve

from closedloop.control.incidents import record_incident
from closedloop.control.runbook import carry_out
from closedloop.control.serving import read_actions, read_serving
from closedloop.core.lake import Lake
from closedloop.evaluation.outcomes import outcomes_for_day, outcomes_schema
from closedloop.evaluation.recalibration import HOLDOUT_EVERY, RecalibrationError, apply_calibrator, recalibrate
from closedloop.inputs.ingest import ingest_labels, ingest_predictions
from closedloop.registry import load_registry
from closedloop.simulator import DEFAULT_START, simulate
from closedloop.simulator.fraud import V12_FULL_DAY
from closedloop.simulator.incidents import INCIDENTS
from tests.helpers import TEST_REGISTRY

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 1, 6, tzinfo=UTC)
DAY = dt.date(2026, 10, 20)


def shifted_outcomes(lake, model, days: int, rows: int = 4000, seed: int = 1, shift: float = -2.5):
    """v12-like outcomes: labels drawn from the true probability, scores with the logit shifted down."""
    rng = np.random.default_rng(seed)
    schema = outcomes_schema(model)
    for i in range(days):
        day = DAY - dt.timedelta(days=i)
        logit = rng.normal(-4.6, 1.6, rows)
        label = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int8)
        score = 1 / (1 + np.exp(-(logit + shift)))
        ts = dt.datetime.combine(day, dt.time(12), tzinfo=UTC)
        columns = {
            "prediction_id": [f"{day}-{j}" for j in range(rows)],
            "model_version": ["v12"] * rows,
            "ts": [ts] * rows,
            "score": score,
            "decision": (score >= 0.5).astype(np.int8),
            "request_id": [f"req-{day}-{j}" for j in range(rows)],
            "country": ["DE"] * rows,
            "channel": ["web"] * rows,
            "label": label,
            "label_ts": [ts + dt.timedelta(days=10)] * rows,
            "label_delay_hours": [240.0] * rows,
            "label_matured": [True] * rows,
        }
        lake.write_partition(model.name, "outcomes", day, pa.table(columns).cast(schema))


def reference_ece(scores, labels, bins: int = 10) -> float:
    """ECE from scikit-learn's calibration_curve (equal-width bins), weighted by rows per bin."""
    observed, predicted = calibration_curve(labels, scores, n_bins=bins, strategy="uniform")
    counts = np.histogram(scores, bins=np.linspace(0, 1, bins + 1))[0]
    counts = counts[counts > 0]
    return float(np.sum(np.abs(observed - predicted) * counts) / counts.sum())


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_a_calibrator_lowers_ece_on_held_back_labels_and_restores_the_approved_rate(registry, lake, method):
    fraud = registry.model("fraud")
    shifted_outcomes(lake, fraud, days=14)
    fitted = recalibrate(lake, fraud, "v12", DAY, 14, method, NOW)
    document = fitted.document
    assert document["ece_held_back_after"] < document["ece_held_back_before"] / 3
    assert document["labels_held_back"] == pytest.approx(14 * 4000 / HOLDOUT_EVERY, rel=0.05)
    assert document["decision_rate_at_threshold"] == pytest.approx(fraud.evaluation.approved_decision_rate, abs=0.003)
    # The artifact is JSON in the lake, and applying it is what the serving side does.
    stored = json.loads(fitted.path.read_text())
    assert stored == document and fitted.path.parent == lake.root / "fraud" / "calibrators"
    assert fitted.params["calibrator"] == {
        "id": f"v12_{NOW:%Y%m%dT%H%M%S}",
        "version": "v12",
        "method": method,
        "path": str(fitted.path),
    }
    # On a fresh period the calibrator never saw, scikit-learn agrees the scores are calibrated again.
    rng = np.random.default_rng(99)
    logit = rng.normal(-4.6, 1.6, 50_000)
    labels = (rng.random(logit.size) < 1 / (1 + np.exp(-logit))).astype(int)
    raw = 1 / (1 + np.exp(-(logit - 2.5)))
    assert reference_ece(apply_calibrator(stored, raw), labels) < 0.01 < reference_ece(raw, labels)


def test_without_enough_matured_labels_recalibration_says_when_it_can(registry, lake):
    fraud = registry.model("fraud")
    with pytest.raises(RecalibrationError, match="has 0 matured labels .* mature 45 days after the prediction"):
        recalibrate(lake, fraud, "v12", DAY, 30, "isotonic", NOW)


def test_the_runbook_recalibrates_the_breaching_version_and_waits_for_approval(tmp_path):
    raw = TEST_REGISTRY.read_text().replace(
        "action: {type: rollback, mode: propose}",
        "action: {type: recalibrate, mode: propose, params: {method: isotonic, window_days: 14}}",
    )
    (tmp_path / "models.yaml").write_text(raw)
    registry = load_registry(tmp_path / "models.yaml", landing=str(tmp_path / "landing"), lake=str(tmp_path / "lake"))
    lake = Lake(registry.lake, registry.landing)
    fraud = registry.model("fraud")
    shifted_outcomes(lake, fraud, days=14)
    incident = record_incident(
        lake,
        {
            "incident_id": f"fraud/review_rate_in_band/{DAY}",
            "model": "fraud",
            "slo": "review_rate_in_band",
            "metric": "review_rate",
            "version": "v12",
            "value": 0.0012,
            "detail": None,
            "comparison": None,
            "threshold": None,
            "band_low": 0.005,
            "band_high": 0.06,
            "opened": str(DAY),
            "opened_at": NOW,
            "closed": None,
            "closed_at": None,
            "owner": "team:payments-ops",
            "severity": "page",
            "action": "recalibrate",
            "action_mode": "propose",
            "action_id": None,
            "action_result": None,
            "notification": None,
            "state": "open",
            "day": DAY,
        },
    )
    done = carry_out(lake, fraud, incident, NOW)
    [pending] = read_actions(lake, "fraud", "pending")
    assert done["action_result"] == f"pending approval: closedloop approve {pending['action_id']}"
    params = json.loads(pending["params"])
    assert params["calibrator"]["version"] == "v12" and 0 < params["threshold"] < 0.5
    assert read_serving(lake, fraud)["calibrator"] is None  # proposed, not applied
    assert carry_out(lake, fraud, done, NOW) == done  # a re-run requests nothing twice


@pytest.mark.slow
def test_on_the_simulators_v12_period_the_calibrator_lowers_ece_on_held_back_days(tmp_path):
    """v12's real calibration shift: fit on its first ten days at full traffic, judge on the rest of the shift."""
    shift = next(i for i in INCIDENTS if i.id == "fraud_v12_calibration_shift")
    days = shift.end_day + 47  # every day of the shift has matured by the last simulated day
    simulate(tmp_path / "landing", days=days, seed=7, fraud_rows_per_day=2000, triage_rows_per_day=10)
    registry = load_registry(TEST_REGISTRY, landing=str(tmp_path / "landing"), lake=str(tmp_path / "lake"))
    lake = Lake(registry.lake, registry.landing)
    fraud = registry.model("fraud")
    last = DEFAULT_START + dt.timedelta(days=days - 1)
    for i in range(days):
        day = DEFAULT_START + dt.timedelta(days=i)
        ingest_predictions(lake, fraud, day)
        ingest_labels(lake, fraud, day)
    shifted = [DEFAULT_START + dt.timedelta(days=i) for i in range(V12_FULL_DAY, shift.end_day + 1)]
    for day in shifted:
        lake.write_partition("fraud", "outcomes", day, outcomes_for_day(lake, fraud, day, last).table)
    fitted_on, judged = shifted[:10], shifted[10:]
    fitted = recalibrate(lake, fraud, "v12", fitted_on[-1], len(fitted_on), "isotonic", NOW)
    rows = pa.concat_tables([lake.read_partition("fraud", "outcomes", day) for day in judged]).to_pandas()
    rows = rows[rows["label_matured"]]
    before = reference_ece(rows["score"].to_numpy(), rows["label"].to_numpy())
    after = reference_ece(apply_calibrator(fitted.document, rows["score"].to_numpy()), rows["label"].to_numpy())
    print(f"v12 ECE on {len(rows):,} matured labels of {judged[0]}..{judged[-1]}: {before:.4f} -> {after:.4f}")
    assert after < before / 2
    assert fitted.document["ece_held_back_after"] < fitted.document["ece_held_back_before"] / 2
