"""The comparison in plain words: what got better, what got worse, what cannot be told apart yet,
and what to check before the candidate takes all the traffic."""

from __future__ import annotations

import math
from collections.abc import Sequence

from closedloop.compare.evidence import KNOWN_SO_FAR, Evidence
from closedloop.compare.request import ACROSS_PERIODS, ComparisonRequest
from closedloop.compare.rows import BETTER, CHANGED, NOT_DISTINGUISHABLE, WORSE, Row

_PERCENT_UNITS = ("share",)


def formatted(value: float | None, unit: str) -> str:
    """A value as the report prints it: shares in percent, money in dollars, times in ms."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit in _PERCENT_UNITS:
        return f"{value:.2%}" if abs(value) < 0.1 else f"{value:.1%}"
    if unit.startswith("usd"):
        return f"${value:,.2f}"
    if unit == "ms":
        return f"{value:,.0f} ms"
    if unit in ("rows", "requests"):
        return f"{value:,.0f}"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:,.1f}"


def phrase(r: Row) -> str:
    where = f" in {r.segment}={r.segment_value}" if r.segment else ""
    where += " (estimated)" if r.section == "estimated" else ""
    p = "" if r.p_adjusted is None else f", adjusted p {r.p_adjusted:.3g}"
    return f"{r.metric}{where}: {formatted(r.baseline, r.unit)} -> {formatted(r.candidate, r.unit)}{p}"


def _headline(request: ComparisonRequest, rows: Sequence[Row], thresholds: dict) -> list[str]:
    """The sentences a stakeholder reads first: scores, the decision rate at the threshold, ranking."""
    base, cand = request.baseline, request.candidate
    found = {(r.section, r.metric): r for r in rows}
    out = []
    shift = found.get(("scores", "mean_logit"))
    if shift is not None and shift.difference is not None and shift.verdict != NOT_DISTINGUISHABLE:
        d = shift.difference.difference
        out.append(f"{cand}'s scores are on average {abs(d):.1f} logits {'lower' if d < 0 else 'higher'} than {base}'s")
    rate = found.get(("decisions", "decision_rate"))
    t_base, t_cand = thresholds.get("baseline"), thresholds.get("candidate")
    if rate is not None and t_base and t_cand:
        same = t_base["threshold"] == t_cand["threshold"]
        at = f"at the {'unchanged' if same else 'new'} threshold {t_cand['threshold']:g}"
        if rate.verdict == NOT_DISTINGUISHABLE:
            out.append(
                f"{at} its decision rate ({formatted(rate.candidate, 'share')}) is indistinguishable from {base}'s"
            )
        else:
            moves = "falls" if (rate.candidate or 0) < (rate.baseline or 0) else "rises"
            out.append(
                f"{at} its decision rate {moves} from {formatted(rate.baseline, 'share')} "
                f"to {formatted(rate.candidate, 'share')}"
            )
            keeps = thresholds.get("candidate_keeping_baseline_rate")
            if keeps:
                out.append(
                    f"threshold {keeps['threshold']:.3g} keeps {formatted(rate.baseline, 'share')} "
                    f"({formatted(keeps['decision_rate'], 'share')} of {cand}'s requests)"
                )
    auc = found.get(("quality", "roc_auc"))
    if auc is not None and auc.difference is not None:
        if auc.verdict == NOT_DISTINGUISHABLE:
            out.append(f"{cand}'s ranking (ROC AUC) is indistinguishable from {base}'s")
        else:
            out.append(f"{cand}'s ranking (ROC AUC) is {auc.verdict}: {phrase(auc)}")
    return out


def canary_lines(sequences: Sequence[dict]) -> list[str]:
    """Each followed difference: certain since which day, or not yet, with today's always-valid interval."""
    out = []
    for s in sequences:
        if not s["days"] or s["estimate"][-1] is None:
            continue
        unit = s["unit"]
        now = formatted(s["estimate"][-1], unit)
        band = f"[{formatted(s['lower'][-1], unit)}, {formatted(s['upper'][-1], unit)}]"
        when = f"certain from {s['first_certain_day']}" if s["first_certain_day"] else "not certain yet"
        out.append(f"{s['metric']}: {when}; difference after {s['days'][-1]} {now} {band}")
    return out


def verdict(
    request: ComparisonRequest,
    evidence: Evidence,
    rows: Sequence[Row],
    worse_slices: Sequence[Row],
    thresholds: dict,
    canary: Sequence[dict] = (),
    no_estimate: Sequence[str] = (),
) -> dict:
    """The verdict block of the JSON and the top of the report."""
    headline = _headline(request, rows, thresholds)
    by = {kind: [phrase(r) for r in rows if r.verdict == kind] for kind in (BETTER, WORSE, CHANGED)}
    undecided = [phrase(r) for r in rows if r.verdict == NOT_DISTINGUISHABLE]
    checks = []
    cand = evidence.candidate
    if evidence.label_set is None:
        checks.append(
            f"no quality verdict: fewer than the labels needed ({cand.version} has {cand.known.n_positive:.0f} "
            f"positive and {cand.known.n_negative:.0f} negative labels so far); wait for labels"
        )
    elif evidence.label_set == KNOWN_SO_FAR:
        share = cand.known.n_labeled / cand.known.n if cand.known.n else 0.0
        checks.append(
            f"quality rests on labels known so far, not matured ones ({share:.0%} of {cand.version}'s requests "
            "labeled): re-run the comparison once they mature"
        )
    checks += no_estimate
    if worse_slices:
        checks.append("worse in: " + "; ".join(phrase(r) for r in worse_slices[:5]))
    if request.population == ACROSS_PERIODS:
        checks.append("the versions ran on different days: read each difference beside the input drift")
    if request.left_out is not None:
        checks.append(
            f"{cand.version}'s shadow days ({request.left_out}) are not in this unpaired view; compare them "
            f"paired with --start {request.left_out.start} --end {request.left_out.end}"
        )
    t_base, t_cand = thresholds.get("baseline"), thresholds.get("candidate")
    if any(r.verdict == CHANGED and r.metric == "decision_rate" for r in rows) and t_base and t_cand:
        keeps = thresholds.get("candidate_keeping_baseline_rate")
        if keeps:
            checks.append(
                f"the decision rate moved: recalibrate {cand.version} or set its threshold to {keeps['threshold']:.3g}"
                " before 100%"
            )
    return {
        "summary": "; ".join(headline) if headline else "no difference could be measured",
        "headline": headline,
        "better": by[BETTER],
        "worse": by[WORSE],
        "changed": by[CHANGED],
        "not_distinguishable": undecided,
        "check_before_full_rollout": checks,
        "canary": canary_lines(canary),
    }
