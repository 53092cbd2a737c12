"""Where the candidate is worse: every segment value with enough rows, tested, adjusted, ranked.

Twenty segments and five metrics are a hundred tests; at 5% each, five would say "worse" by
chance. The p-values are adjusted across all slices and metrics together (Benjamini-Hochberg),
and a slice is only tested when both versions have enough rows in it to matter.
"""

from __future__ import annotations

from closedloop.compare import significance as sig
from closedloop.compare.evidence import MIN_LABELS_PER_CLASS, Evidence
from closedloop.compare.quality import confusion, mean_loss_difference, metric
from closedloop.compare.rows import WORSE, Row, adjusted, row

MIN_SLICE_ROWS = 500
MISSING = "(missing)"


def segment_rows(evidence: Evidence, segments: tuple[str, ...]) -> list[Row]:
    """Decision rate, ROC AUC, precision, recall and Brier per segment value, adjusted as one family."""
    base, cand = evidence.baseline, evidence.candidate
    out = []
    for segment in segments:
        values = sorted(
            {v for s, v in base.counts if s == segment} & {v for s, v in cand.counts if s == segment},
            key=lambda v: (v is None, v or ""),
        )
        for value in values:
            b, c = base.counts[(segment, value)], cand.counts[(segment, value)]
            if min(b.n, c.n) < MIN_SLICE_ROWS:
                continue
            shown = MISSING if value is None else value
            tests: list[tuple[str, sig.Difference | None]] = [
                ("decision_rate", sig.proportion_difference(b.n_decided, b.n, c.n_decided, c.n))
            ]
            labeled = (
                evidence.label_set is not None
                and min(b.n_positive, b.n_negative, c.n_positive, c.n_negative) >= MIN_LABELS_PER_CLASS
            )
            if labeled:
                tp_b, fp_b = confusion(b, base.threshold)
                tp_c, fp_c = confusion(c, cand.threshold)
                tests += [
                    ("roc_auc", sig.auc_difference_unpaired(b, c)),
                    ("precision", sig.proportion_difference(tp_b, tp_b + fp_b, tp_c, tp_c + fp_c)),
                    ("recall", sig.proportion_difference(tp_b, b.n_positive, tp_c, c.n_positive)),
                    ("brier", mean_loss_difference("brier", b, c)),
                ]
            labels = evidence.label_set if labeled else None
            out += [
                row(
                    "segments",
                    metric(name),
                    d,
                    labels=labels,
                    segment=segment,
                    segment_value=shown,
                    rows=int(min(b.n, c.n)),
                )
                for name, d in tests
            ]
    return adjusted(out)


def worse_slices(rows: list[Row]) -> list[Row]:
    """The slices where the candidate is significantly worse, the largest relative change first."""

    def relative(r: Row) -> float:
        scale = abs(r.baseline) if r.baseline else 1.0
        return (r.effect or 0.0) / scale

    return sorted((r for r in rows if r.verdict == WORSE), key=relative, reverse=True)
