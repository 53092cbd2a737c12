"""Multivariate drift: can a classifier tell a day's rows from the baseline's?

Per-column metrics miss drift in the joint distribution (features that moved together, a segment
whose mix of features changed). A domain classifier learns to tell a sample of the day from a
sample of the baseline; its cross-validated ROC AUC is the drift score: 0.5 means the two cannot
be told apart, 1.0 that they share nothing. Samples are small and deterministic (the rows whose
prediction id has the smallest md5), kept per day while profiling, so that the sample of a window
or of the baseline window is the union of daily samples and nothing is re-read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_score
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
    auc_std: float  # across folds
    reference_rows: int
    current_rows: int


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
    model: ModelSpec, baseline: Baseline, reference: pa.Table, current: pa.Table, *, seed: int = 0
) -> DomainClassifierResult:
    """How well gradient boosting tells ``current`` rows from ``reference`` rows, cross-validated.

    The larger sample is cut to the size of the smaller (deterministically), so the AUC compares
    like with like. Categorical values are coded by the baseline's top values, with one code for
    any other value it saw and one for values it never saw.
    """
    baseline.require_model(model)
    rng = np.random.default_rng(seed)
    size = min(reference.num_rows, current.num_rows)
    if size < 2 * FOLDS:
        return DomainClassifierResult(float("nan"), float("nan"), reference.num_rows, current.num_rows)
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
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    # A few thousand rows gain nothing from OpenMP threads, which stall on a busy machine.
    with threadpool_limits(limits=1, user_api="openmp"):
        scores = cross_val_score(classifier, features, target, cv=folds, scoring="roc_auc")
    return DomainClassifierResult(float(scores.mean()), float(scores.std()), reference.num_rows, current.num_rows)


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
