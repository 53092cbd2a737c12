"""Shadow traffic: both versions scored the same requests, so their differences are compared per request.

The candidate's shadow rows are joined to the baseline's served outcomes on the registry's
``pairing_key``; a shadow row borrows the served row's label and segments (it is the same
request). The joined rows become each version's daily statistics the way the pipeline counts
them (``closedloop.evaluation.eval_stats``), so every section of the comparison reads them as it
reads served traffic; then the metrics with a paired test (ROC AUC by DeLong on the per-request
scores, the decision rate and recall by McNemar, Brier, log loss and the logit shift by paired t)
replace their unpaired tests. Pairing removes the request-to-request spread both versions share,
which is why a week of shadow traffic can tell apart what a week of canary cannot.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from closedloop.compare import significance as sig
from closedloop.compare.evidence import MATURED, Evidence
from closedloop.compare.request import CompareError, ComparisonRequest
from closedloop.compare.rows import Row
from closedloop.core.lake import Lake
from closedloop.core.specs import ModelSpec
from closedloop.core.sql import connect, query
from closedloop.evaluation.eval_stats import EVAL_STATS_SCHEMA, eval_stats
from closedloop.evaluation.score_bins import LOGIT_CLIP, logit

KEY = "request_key"


def paired_rows(lake: Lake, model: ModelSpec, request: ComparisonRequest) -> pa.Table:
    """One row per request both versions scored in the period, with both scores and decisions."""
    assert model.pairing_key is not None  # the request planner pairs only models that have one
    period = request.baseline_period
    columns = ["prediction_id", "model_version", "ts", "score", "decision", model.pairing_key, *model.segments]
    served = lake.read_range(
        model.name, "outcomes", period.start, period.end, columns=[*columns, "label", "label_matured"]
    )
    shadow = lake.read_range(
        model.name, "shadow", period.start, period.end,
        columns=["prediction_id", "ts", "model_version", "score", "decision", model.pairing_key],
    )  # fmt: skip
    if served is None or shadow is None:
        raise CompareError(f"{model.name} has no served outcomes or no shadow rows from {period} to pair")
    served = served.filter(pc.equal(served["model_version"], request.baseline))
    shadow = shadow.filter(pc.equal(shadow["model_version"], request.candidate))

    def keyed(table: pa.Table) -> pa.Table:
        return table.rename_columns([KEY if name == model.pairing_key else name for name in table.column_names])

    with connect() as con:
        con.register("served", keyed(served))
        con.register("shadow", keyed(shadow))
        return con.sql(query(__package__, "paired_rows")).to_arrow_table()


def paired_daily_stats(model: ModelSpec, request: ComparisonRequest, rows: pa.Table) -> dict[str, pa.Table]:
    """Each version's daily evaluation statistics, counted from the paired rows as the pipeline counts outcomes."""
    days = pc.cast(rows["ts"], pa.date32())  # UTC timestamps: the prediction day; rows come in time order
    runs = pc.run_end_encode(days.combine_chunks())
    ends, values = runs.run_ends.to_pylist(), runs.values.to_pylist()
    out = {}
    for version, side in ((request.baseline, "baseline"), (request.candidate, "candidate")):
        parts, start = [], 0
        for day, end in zip(values, ends, strict=True):
            of_day = rows.slice(start, end - start)
            start = end
            outcomes = of_day.select(["label", "label_matured", *model.segments]).append_column(
                "model_version", pa.repeat(pa.scalar(version), of_day.num_rows)
            )
            outcomes = outcomes.append_column("score", of_day[f"{side}_score"])
            outcomes = outcomes.append_column("decision", of_day[f"{side}_decision"])
            parts.append(eval_stats(outcomes, model, day))
        out[version] = pa.concat_tables(parts) if parts else EVAL_STATS_SCHEMA.empty_table()
    return out


def paired_tests(evidence: Evidence, rows: pa.Table) -> dict[tuple[str, str], sig.Difference]:
    """The tests that use the pairing, keyed by (section, metric)."""
    b = rows["baseline_score"].to_numpy(zero_copy_only=False)
    c = rows["candidate_score"].to_numpy(zero_copy_only=False)
    decided_b = rows["baseline_decision"].to_numpy(zero_copy_only=False).astype(bool)
    decided_c = rows["candidate_decision"].to_numpy(zero_copy_only=False).astype(bool)
    tests = {
        ("decisions", "decision_rate"): sig.paired_proportion_difference(decided_b, decided_c),
        ("scores", "mean_logit"): sig.paired_mean_difference(logit(b), logit(c)),
    }
    if evidence.label_set is None:
        return tests
    label = rows["label"]
    known = pc.is_valid(label)
    if evidence.label_set == MATURED:
        known = pc.and_(known, pc.fill_null(rows["label_matured"], False))
    mask = known.to_numpy(zero_copy_only=False)
    y = label.to_numpy(zero_copy_only=False)[mask].astype(float)
    lb, lc = b[mask], c[mask]
    positives = y == 1
    flag_b = lb >= evidence.baseline.threshold
    flag_c = lc >= evidence.candidate.threshold
    clip_b, clip_c = np.clip(lb, LOGIT_CLIP, 1 - LOGIT_CLIP), np.clip(lc, LOGIT_CLIP, 1 - LOGIT_CLIP)
    tests |= {
        ("quality", "roc_auc"): sig.auc_difference_paired(lb, lc, y.astype(int)),
        ("quality", "recall"): sig.paired_proportion_difference(flag_b[positives], flag_c[positives]),
        ("quality", "brier"): sig.paired_mean_difference((lb - y) ** 2, (lc - y) ** 2),
        ("quality", "log_loss"): sig.paired_mean_difference(
            -(y * np.log(clip_b) + (1 - y) * np.log1p(-clip_b)), -(y * np.log(clip_c) + (1 - y) * np.log1p(-clip_c))
        ),
    }
    return tests


def with_paired_tests(rows: list[Row], tests: dict[tuple[str, str], sig.Difference]) -> list[Row]:
    """The rows, each with its paired test where it has one (the values shown stay the binned ones)."""
    return [replace(r, difference=tests[(r.section, r.metric)]) if (r.section, r.metric) in tests else r for r in rows]
