"""The comparison's figures: the baseline always blue, the candidate always orange, thresholds drawn.

Scores are drawn on the logit scale: a calibration shift moves the whole distribution sideways
there, where on the probability scale it only squeezes everything against zero.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from closedloop.compare.evidence import Evidence
from closedloop.compare.request import ComparisonRequest
from closedloop.core.plotting import new_figure, to_png
from closedloop.evaluation.metrics import reliability_curve, threshold_curve
from closedloop.evaluation.score_bins import MIDPOINT_LOGITS, logit

BASELINE_COLOUR = "#1f77b4"
CANDIDATE_COLOUR = "#ff7f0e"
_LOGIT_EDGES = np.linspace(-12, 6, 73)
_DRAWN_LOGITS = np.clip(MIDPOINT_LOGITS, _LOGIT_EDGES[0], _LOGIT_EDGES[-1])  # the tails fall in the end bins


def _versions(request: ComparisonRequest, evidence: Evidence):
    return (
        (evidence.baseline, BASELINE_COLOUR, f"{request.baseline} (baseline)"),
        (evidence.candidate, CANDIDATE_COLOUR, f"{request.candidate} (candidate)"),
    )


def _thresholds(axes, evidence: Evidence, scale) -> None:
    """Each version's threshold as a dotted line in its colour; one black line when they are the same."""
    b, c = evidence.baseline, evidence.candidate
    if b.threshold == c.threshold:
        axes.axvline(scale(b.threshold), color="black", linestyle=":", label=f"threshold {b.threshold:g} (both)")
        return
    for v, colour in ((b, BASELINE_COLOUR), (c, CANDIDATE_COLOUR)):
        axes.axvline(scale(v.threshold), color=colour, linestyle=":", label=f"{v.version} threshold {v.threshold:g}")


def scores_figure(request: ComparisonRequest, evidence: Evidence) -> bytes:
    figure, axes = new_figure()
    for v, colour, name in _versions(request, evidence):
        rows = v.whole.rows
        if not rows.sum():
            continue
        shares, _ = np.histogram(_DRAWN_LOGITS, _LOGIT_EDGES, weights=rows)
        axes.stairs(
            shares / rows.sum(), _LOGIT_EDGES, color=colour, linewidth=1.8, label=f"{name}, {int(rows.sum()):,}"
        )
    _thresholds(axes, evidence, lambda t: float(logit(np.array(t))))
    axes.set(
        xlabel="score (logit scale; 0 = score 0.5)",
        ylabel="share of the version's requests",
        title=f"{request.model}: score distributions",
    )
    axes.legend(loc="upper left")
    return to_png(figure)


def reliability_figure(request: ComparisonRequest, evidence: Evidence) -> bytes | None:
    if evidence.label_set is None:
        return None
    figure, axes = new_figure(figsize=(5.5, 5))
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    for v, colour, name in _versions(request, evidence):
        curve = reliability_curve(v.whole)
        if curve.empty:
            continue
        axes.errorbar(
            curve["mean_score"],
            curve["positive_share"],
            yerr=[curve["positive_share"] - curve["lower"], curve["upper"] - curve["positive_share"]],
            color=colour,
            marker="o",
            capsize=2,
            label=f"{name}, {int(v.whole.n_labeled):,} labels",
        )
    axes.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="mean score in bin",
        ylabel="observed positive share",
        title=f"{request.model}: reliability (labels {evidence.label_set})",
    )
    axes.legend(loc="upper left")
    return to_png(figure)


def decisions_figure(request: ComparisonRequest, evidence: Evidence, thresholds: dict) -> bytes:
    """Share of requests at or above each threshold, per version, with both thresholds and the rate-keeping one."""
    figure, axes = new_figure()
    for v, colour, name in _versions(request, evidence):
        if not v.whole.n:
            continue
        curve = threshold_curve(v.whole)
        axes.plot(curve["threshold"], curve["above"], color=colour, label=name)
    _thresholds(axes, evidence, float)
    keeps = thresholds.get("candidate_keeping_baseline_rate")
    baseline = thresholds.get("baseline")
    if keeps and baseline:
        axes.axhline(baseline["decision_rate"], color="grey", linestyle="--", linewidth=1)
        axes.axvline(
            keeps["threshold"],
            color=CANDIDATE_COLOUR,
            linestyle="--",
            label=f"{request.candidate} threshold {keeps['threshold']:.3g} keeps {baseline['decision_rate']:.2%}",
        )
    axes.set(
        xscale="log",
        yscale="log",
        xlim=(1e-4, 1),
        xlabel="threshold (log scale)",
        ylabel="share of requests at or above it (log scale)",
        title=f"{request.model}: decision rate against the threshold",
    )
    axes.yaxis.set_major_formatter(lambda value, _: f"{value:.2%}" if value < 0.01 else f"{value:.0%}")
    axes.legend(loc="lower left")
    return to_png(figure)


def segments_figure(request: ComparisonRequest, rows: list[dict]) -> bytes | None:
    """The decision rate's difference per segment value, with its interval; significantly different ones filled."""
    shown = [r for r in rows if r["metric"] == "decision_rate" and r["difference"] is not None]
    if not shown:
        return None
    figure, axes = new_figure(figsize=(9, 0.35 * len(shown) + 1.5))
    y = np.arange(len(shown))
    for i, r in enumerate(shown):
        significant = r["p_adjusted"] is not None and r["p_adjusted"] < 0.05
        axes.errorbar(
            r["difference"],
            i,
            xerr=[[r["difference"] - r["lower"]], [r["upper"] - r["difference"]]],
            fmt="o",
            color=CANDIDATE_COLOUR,
            markerfacecolor=CANDIDATE_COLOUR if significant else "white",
            capsize=3,
        )
    axes.axvline(0, color="grey", linewidth=1)
    axes.set_yticks(y, [f"{r['segment']}={r['segment_value']}" for r in shown])
    axes.xaxis.set_major_formatter(lambda value, _: f"{value:+.2%}")
    axes.set(
        xlabel=f"decision rate, {request.candidate} minus {request.baseline} (filled: adjusted p < 0.05)",
        title=f"{request.model}: decision rate by segment",
    )
    return to_png(figure)


def canary_figure(request: ComparisonRequest, sequences: list[dict]) -> bytes | None:
    """Each followed difference's running estimate and its always-valid band; the first certain day marked."""
    shown = [s for s in sequences if any(v is not None for v in s["lower"])][:4]
    if not shown:
        return None
    figure, grid = new_figure(1, len(shown), figsize=(4.2 * len(shown), 3.6), squeeze=False)
    for axes, s in zip(grid[0], shown, strict=False):
        days = [dt.date.fromisoformat(d) for d in s["days"]]
        nan = float("nan")
        lower = [nan if v is None else v for v in s["lower"]]
        upper = [nan if v is None else v for v in s["upper"]]
        estimate = [nan if v is None else v for v in s["estimate"]]
        axes.fill_between(days, lower, upper, color=CANDIDATE_COLOUR, alpha=0.25, label="valid on every day")
        axes.plot(days, estimate, color=CANDIDATE_COLOUR, marker=".", label="difference so far")
        axes.axhline(0, color="grey", linewidth=1)
        if s["first_certain_day"]:
            axes.axvline(dt.date.fromisoformat(s["first_certain_day"]), color="black", linestyle=":",
                         label=f"certain from {s['first_certain_day']}")  # fmt: skip
        if s["unit"] == "share":
            axes.yaxis.set_major_formatter(lambda value, _: f"{value:+.2%}")
        axes.set(title=s["metric"], xlabel="day", ylabel=f"{request.candidate} - {request.baseline}")
        axes.tick_params(axis="x", labelrotation=45)
        axes.legend(fontsize=7, loc="upper left")
    figure.suptitle(f"{request.model}: the canary day by day (95% confidence sequences)")
    return to_png(figure)


def comparison_figures(request: ComparisonRequest, evidence: Evidence, document: dict) -> dict[str, bytes]:
    figures = {
        "scores": scores_figure(request, evidence),
        "reliability": reliability_figure(request, evidence),
        "decisions": decisions_figure(request, evidence, document["thresholds"]),
        "segments": segments_figure(request, document["segments"]["rows"]),
        "canary": canary_figure(request, document["canary"]),
    }
    return {name: png for name, png in figures.items() if png is not None}
