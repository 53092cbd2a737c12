"""Recalibration: a new score-to-probability map for a version whose scores stopped meaning what they said.

A version that still ranks well but is miscalibrated (v12's shifted logit) does not need a
rollback: mapping its scores back to probabilities, and moving the threshold so that the share
of rows acted on is the one the owners approved, restores both. The map is fitted with
scikit-learn (isotonic regression, or Platt scaling on the score's logit) on the matured labels
of the recent window only: labels known early are a biased sample (fast chargebacks are not
typical ones). One in five predictions (by a hash of the id, so the split is stable) is held
back, and the calibrator reports the ECE on those before and after, so whoever approves it sees
what it does on labels it was not fitted to. The calibrator is a JSON artifact in the lake
(never a pickle), versioned by the version it calibrates and when it was fitted.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from closedloop.core.lake import Lake
from closedloop.core.names import checked_day, checked_name
from closedloop.core.specs import ModelSpec
from closedloop.evaluation.metrics import ece
from closedloop.evaluation.score_bins import BINS, ScoreCounts, score_bins

METHODS = ("isotonic", "platt")
HOLDOUT_EVERY = 5  # one prediction in five is held back
MIN_LABELS = 200  # matured labels of each class together, to fit on
MIN_POSITIVES = 10
_LOGIT_CLIP = 1e-6


class RecalibrationError(ValueError):
    """A calibrator that cannot be fitted; the message says what is missing and when it will not be."""


@dataclass(frozen=True)
class Recalibration:
    """A fitted calibrator (the JSON document), where it is kept, and the threshold it proposes."""

    document: dict
    path: Path

    @property
    def params(self) -> dict:
        """What the ``recalibrate`` action writes to the serving file."""
        reference = {key: self.document[key] for key in ("id", "version", "method")}
        return {"calibrator": {**reference, "path": str(self.path)}, "threshold": self.document["threshold"]}


def apply_calibrator(calibrator: Mapping, scores: np.ndarray) -> np.ndarray:
    """Calibrated probabilities for raw scores, as the serving side computes them from the JSON document."""
    scores = np.asarray(scores, dtype=np.float64)
    if calibrator["method"] == "isotonic":
        return np.interp(scores, calibrator["isotonic"]["x"], calibrator["isotonic"]["y"])
    platt = calibrator["platt"]
    logit = _logit(scores)
    return 1.0 / (1.0 + np.exp(-(platt["slope"] * logit + platt["intercept"])))


def _logit(scores: np.ndarray) -> np.ndarray:
    clipped = np.clip(scores, _LOGIT_CLIP, 1 - _LOGIT_CLIP)
    return np.log(clipped / (1 - clipped))


def _counts(scores: np.ndarray, labels: np.ndarray) -> ScoreCounts:
    """Labeled rows on the evaluation bins, so ECE here is the same ECE ``rolling_eval`` reports."""
    bins = score_bins(scores)
    positive, negative = np.zeros((2, BINS)), np.zeros((2, BINS))
    np.add.at(positive[0], bins[labels == 1], 1)
    np.add.at(negative[0], bins[labels == 0], 1)
    return ScoreCounts(positive, negative, np.zeros_like(positive))


def _window_rows(lake: Lake, model: ModelSpec, version: str, first: dt.date, last: dt.date) -> pd.DataFrame:
    columns = ["prediction_id", "model_version", "score", "label", "label_matured"]
    table = lake.read_range(model.name, "outcomes", first, last, columns=columns)
    if table is None:
        return pd.DataFrame(columns=columns)
    return table.filter(pc.equal(table["model_version"], version)).to_pandas()


def fit(scores: np.ndarray, labels: np.ndarray, method: str) -> dict:
    """The fitted map as JSON-ready numbers."""
    if method == "isotonic":
        isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, labels)
        return {"isotonic": {"x": isotonic.X_thresholds_.tolist(), "y": isotonic.y_thresholds_.tolist()}}
    platt = LogisticRegression(C=1e4).fit(_logit(scores).reshape(-1, 1), labels)
    return {"platt": {"slope": float(platt.coef_[0, 0]), "intercept": float(platt.intercept_[0])}}


def threshold_for_rate(calibrated: np.ndarray, rate: float) -> tuple[float, float]:
    """The threshold on calibrated scores whose share of rows at or above it is closest to ``rate``, and that share.

    A step-wise (isotonic) map ties many rows at one value, so the share can only be approached.
    """
    values = np.unique(calibrated)
    shares = np.array([(calibrated >= v).mean() for v in values])
    best = int(np.argmin(np.abs(shares - rate)))
    return float(values[best]), float(shares[best])


def recalibrate(
    lake: Lake, model: ModelSpec, version: str, day: str | dt.date, window_days: int, method: str, now: dt.datetime
) -> Recalibration:
    """Fit a calibrator for ``version`` on the matured labels of the ``window_days`` ending on ``day``,
    keep it in the lake, and propose the threshold that restores the approved decision rate."""
    if method not in METHODS:
        raise RecalibrationError(f"unknown calibration method {method!r}; use one of {list(METHODS)}")
    last = checked_day(day)
    first = last - dt.timedelta(days=window_days - 1)
    rows = _window_rows(lake, model, checked_name(version, "model version"), first, last)
    matured = rows[rows["label_matured"].astype(bool)] if len(rows) else rows
    n_positive = int((matured["label"] == 1).sum()) if len(matured) else 0
    if len(matured) < MIN_LABELS or n_positive < MIN_POSITIVES or n_positive == len(matured):
        raise RecalibrationError(
            f"{model.name} {version} has {len(matured)} matured labels ({n_positive} positive) in {first}..{last}; "
            f"a calibrator needs at least {MIN_LABELS} with {MIN_POSITIVES} positives. {model.name}'s labels mature "
            f"{model.labels.maturity_days} days after the prediction: recalibrate once a window of {version} has "
            "matured"
        )
    held_back = (pd.util.hash_pandas_object(matured["prediction_id"], index=False).to_numpy() % HOLDOUT_EVERY) == 0
    scores, labels = matured["score"].to_numpy(np.float64), matured["label"].to_numpy(np.int64)
    fitted = fit(scores[~held_back], labels[~held_back], method)
    document = {"method": method, **fitted}
    holdout_scores, holdout_labels = scores[held_back], labels[held_back]
    before = ece(_counts(holdout_scores, holdout_labels)).value
    after = ece(_counts(apply_calibrator(document, holdout_scores), holdout_labels)).value
    calibrated = apply_calibrator(document, rows["score"].to_numpy(np.float64))
    rate = model.evaluation.approved_decision_rate
    if rate is None:
        threshold, achieved = model.threshold(version), float((calibrated >= model.threshold(version)).mean())
    else:
        threshold, achieved = threshold_for_rate(calibrated, rate)
    identifier = f"{version}_{now.astimezone(dt.UTC):%Y%m%dT%H%M%S}"
    document = {
        "id": identifier,
        "model": model.name,
        "version": version,
        "method": method,
        "fitted_at": now.isoformat(),
        "window": {"start": first.isoformat(), "end": last.isoformat()},
        "labels_fitted": int((~held_back).sum()),
        "labels_held_back": int(held_back.sum()),
        "positives": n_positive,
        "ece_held_back_before": before,
        "ece_held_back_after": after,
        "approved_decision_rate": rate,
        "threshold": threshold,
        "decision_rate_at_threshold": achieved,
        **fitted,
    }
    path = lake.document_path(model.name, "calibrators", identifier)
    lake.write_file(path, (json.dumps(document, indent=2) + "\n").encode())
    return Recalibration(document, path)
