"""Multivariate drift: can a classifier tell a day's rows from the baseline's?

Per-column metrics miss drift in the joint distribution (features that moved together, a segment
whose mix of features changed). A domain classifier learns to tell a sample of the day from a
sample of the baseline; its cross-validated ROC AUC is the drift score: 0.5 means the two cannot
be told apart, 1.0 that they share nothing. Samples are small and deterministic (the rows whose
prediction id has the smallest md5), kept per day while profiling, so that the sample of a window
or of the baseline window is the union of daily samples and nothing is re-read.

Five fits a day are most of drift's cost, and most days are plainly clean: when the first fold's
AUC is far below the alert limit (``settle_below``), the other four cannot bring the mean near it
(a fold's AUC on 800 rows varies by about 0.02), so the day is settled on that fold.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from closedloop.core.lake import Lake, LakeError
from closedloop.core.names import checked_day
from closedloop.core.specs import ModelSpec
from closedloop.core.sql import connect, query
from closedloop.drift.baseline import Baseline

SAMPLE_SIZE = 2_000
FOLDS = 5


@dataclass(frozen=True)
class DomainClassifierResult:
    """Cross-validated ROC AUC of telling current rows from baseline rows (NaN when too few rows)."""

    auc: float
    auc_std: float  # across folds; NaN when one fold settled it
    reference_rows: int
    current_rows: int
    folds: int  # how many folds were fitted


def sample_day(lake: Lake, model: ModelSpec, day: str | dt.date, size: int = SAMPLE_SIZE) -> pa.Table:
    """A deterministic sample of one day's predictions: ids, versions, features and segments."""
    day = checked_day(day)
    path = lake.partition_path(model.name, "predictions", day)
    if not path.exists():
        raise LakeError(
            f"{path}: no predictions partition for {model.name} on {day}; ingest the day before sampling it"
        )
    with connect() as con:
        con.register("predictions", con.read_parquet(str(path)))
        params = {"columns": list(model.features.all + model.segments), "size": size}
        return con.sql(query(__package__, "sample_predictions"), params=params).to_arrow_table()


def domain_classifier_auc(
    model: ModelSpec,
    baseline: Baseline,
    reference: pa.Table,
    current: pa.Table,
    *,
    seed: int = 0,
    settle_below: float | None = None,
) -> DomainClassifierResult:
    """How well gradient boosting tells ``current`` rows from ``reference`` rows, cross-validated.

    The larger sample is cut to the size of the smaller (deterministically), so the AUC compares
    like with like. Categorical values are coded by the baseline's top values, with one code for
    any other value it saw and one for values it never saw. A first fold below ``settle_below``
    settles the day without the other folds.
    """
    baseline.require_model(model)
    rng = np.random.default_rng(seed)
    size = min(reference.num_rows, current.num_rows)
    if size < 2 * FOLDS:
        return DomainClassifierResult(float("nan"), float("nan"), reference.num_rows, current.num_rows, 0)
    parts = [t.take(np.sort(rng.choice(t.num_rows, size=size, replace=False))) for t in (reference, current)]
    features = np.vstack([_encoded(model, baseline, part) for part in parts])
    target = np.repeat([0, 1], size)
    classifier = HistGradientBoostingClassifier(
        max_iter=50,
        max_leaf_nodes=15,
        early_stopping=False,
        categorical_features=[name in model.features.categorical or name in model.segments for name in _columns(model)],
        random_state=seed,
    )
    scores: list[float] = []
    # A few thousand rows gain nothing from OpenMP threads, which stall on a busy machine.
    with threadpool_limits(limits=1, user_api="openmp"):
        for train, test in StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed).split(features, target):
            fitted = classifier.fit(features[train], target[train])
            scores.append(float(roc_auc_score(target[test], fitted.predict_proba(features[test])[:, 1])))
            if len(scores) == 1 and settle_below is not None and scores[0] < settle_below:
                return DomainClassifierResult(scores[0], float("nan"), reference.num_rows, current.num_rows, 1)
    return DomainClassifierResult(
        float(np.mean(scores)), float(np.std(scores)), reference.num_rows, current.num_rows, FOLDS
    )


def _columns(model: ModelSpec) -> tuple[str, ...]:
    return model.features.all + model.segments


def _encoded(model: ModelSpec, baseline: Baseline, table: pa.Table) -> np.ndarray:
    """Numbers as they are (null = NaN); categories as codes: top values, then any other known value, then unseen."""
    columns = []
    for name in _columns(model):
        values = table.column(name).to_numpy(zero_copy_only=False)
        if name in model.features.numeric:
            columns.append(values.astype(np.float64))
            continue
        spec = baseline.categorical[name]
        codes = {value: i for i, value in enumerate(spec.top)}
        other, unseen = len(spec.top), len(spec.top) + 1
        columns.append(
            np.array(
                [np.nan if v is None else codes.get(v, other if v in spec.known else unseen) for v in values],
                dtype=np.float64,
            )
        )
    return np.column_stack(columns)
