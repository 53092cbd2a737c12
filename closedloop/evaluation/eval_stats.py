"""Evaluation statistics: one day's outcomes reduced to counts that add up across days.

Layout of an ``eval_stats`` partition (long and sparse; a cell absent from the table is zero)::

    prediction_date  date     the prediction day the counts come from
    model_version    string
    segment          string   'all' (every row) or a registry segment column, e.g. 'country'
    segment_value    string   'all' for segment 'all'; the segment's value (null when missing)
    label_state      string   'positive', 'negative' or 'unlabeled' (as known when outcomes ran)
    matured          bool     the label was known at the day's maturity horizon (false if unlabeled)
    decision         int8     the service's decision (0/1)
    score_grid       string   the score bins counted on (``closedloop.evaluation.score_bins.SCORE_GRID``)
    bin              int16    score bin b: EDGES[b] <= score < EDGES[b + 1] (the last bin includes 1.0)
    n                int64    rows in the cell

Any window is the sum of its days (``merge_eval_stats``), so a 90-day report never re-reads
raw predictions; ``score_counts`` turns a (merged) table into the dense per-population counts
the metrics in ``closedloop.evaluation.metrics`` are computed from. Counts stamped with another
``score_grid`` (an older closedloop's bins) are refused, never summed with these.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import cast

import numpy as np
import pyarrow as pa

from closedloop.core.names import ALL, checked_day
from closedloop.core.specs import ModelSpec
from closedloop.core.sql import connect, query
from closedloop.evaluation.score_bins import BINS, SCORE_GRID, ScoreCounts, score_bins

LABEL_SETS = ("matured", "immature")  # reported separately by rolling_eval
_KEY_FIELDS = [
    ("model_version", pa.string()),
    ("segment", pa.string()),
    ("segment_value", pa.string()),
    ("label_state", pa.string()),
    ("matured", pa.bool_()),
    ("decision", pa.int8()),
    ("score_grid", pa.string()),
    ("bin", pa.int16()),
    ("n", pa.int64()),
]
EVAL_STATS_SCHEMA = pa.schema([("prediction_date", pa.date32()), *_KEY_FIELDS])
MERGED_SCHEMA = pa.schema(_KEY_FIELDS)

Group = tuple[str, str, str | None]  # (model_version, segment, segment_value)


def eval_stats(outcomes: pa.Table, model: ModelSpec, day: str | dt.date) -> pa.Table:
    """The day's evaluation statistics from its ``outcomes`` partition.

    Scores are binned on the edges, then counted in one DuckDB pass.
    """
    binned = outcomes.append_column("bin", pa.array(score_bins(outcomes["score"].to_numpy()), pa.int16()))
    with connect() as con:
        con.register("outcomes", binned)
        params = {"day": checked_day(day), "grid": SCORE_GRID, "segments": [ALL, *model.segments]}
        return con.sql(query(__package__, "eval_stats"), params=params).to_arrow_table().cast(EVAL_STATS_SCHEMA)


def merge_eval_stats(tables: Iterable[pa.Table]) -> pa.Table:
    """Daily statistics summed into one window (``prediction_date`` is summed over)."""
    parts = [t.select(MERGED_SCHEMA.names).cast(MERGED_SCHEMA) for t in tables]
    stats = pa.concat_tables(parts) if parts else MERGED_SCHEMA.empty_table()
    with connect() as con:
        con.register("stats", stats)
        return con.sql(query(__package__, "merge_eval_stats")).to_arrow_table().cast(MERGED_SCHEMA)


_STATE = {("positive", True): 0, ("negative", True): 1, ("positive", False): 2, ("negative", False): 3}
_UNLABELED = 4
# label set -> (states counted as positive, states counted as negative)
_LABEL_STATES = {"matured": ((0,), (1,)), "immature": ((2,), (3,)), "known": ((0, 2), (1, 3))}
_GROUP = ["model_version", "segment", "segment_value"]


def score_counts(stats: pa.Table, labels: str = "matured", pool_versions: bool = True) -> dict[Group, ScoreCounts]:
    """Dense counts per (model_version, segment, segment_value) of a merged or daily stats table.

    ``labels`` picks the label set the quality metrics see: ``"matured"`` (labels known at the
    maturity horizon), ``"immature"`` (labels known now but not at a passed horizon) or
    ``"known"`` (both); rows labeled outside the set count as unlabeled. With ``pool_versions``
    every population also appears under model_version ``"all"`` (all versions together).
    """
    # pandas is imported here, not with the module: the CLI imports this module through rolling_eval for every
    # inspect command (quarantine too), and most of them never count.
    import pandas as pd

    if labels not in _LABEL_STATES:
        raise ValueError(f"labels must be one of {list(_LABEL_STATES)}, got {labels!r}")
    other_grids = set(stats["score_grid"].unique().to_pylist()) - {SCORE_GRID}
    if other_grids:
        raise ValueError(
            f"statistics counted on other score bins ({', '.join(map(str, other_grids))}) than this closedloop's "
            f"({SCORE_GRID}); re-materialize their eval_stats"
        )
    frame = stats.select([*_GROUP, "label_state", "matured", "decision", "bin", "n"]).to_pandas()
    if not len(frame):
        return {}
    if pool_versions:
        frame = pd.concat([frame, frame.assign(model_version=ALL)], ignore_index=True)
    grouped = frame.groupby(_GROUP, dropna=False, sort=True)
    codes = grouped.ngroup().to_numpy()
    groups = [cast(Group, tuple(None if pd.isna(part) else part for part in key)) for key in grouped.size().index]
    state = np.full(len(frame), _UNLABELED)
    for (label_state, matured), index in _STATE.items():
        state[((frame["label_state"] == label_state) & (frame["matured"] == matured)).to_numpy()] = index
    dense = np.zeros((len(groups), 5, 2, BINS))
    cells = (codes, state, frame["decision"].to_numpy(np.int64), frame["bin"].to_numpy(np.int64))
    np.add.at(dense, cells, frame["n"].to_numpy(np.float64))
    positive, negative = _LABEL_STATES[labels]
    rest = [i for i in range(5) if i not in positive + negative]
    return {
        group: ScoreCounts(dense[g, positive].sum(axis=0), dense[g, negative].sum(axis=0), dense[g, rest].sum(axis=0))
        for g, group in enumerate(groups)
    }
