"""Evaluation figures for reports and the Dagster UI (PNG bytes in the house style).

What a model owner looks at when quality or the review rate moves: is the model still
calibrated (reliability diagram), how do positives and negatives score (histogram), did the
decision rate move and with which version (decision rate over time), and what would another
threshold give, including the one that keeps the approved decision rate (threshold trade-off).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa

from closedloop.core.lake import Lake
from closedloop.core.names import ALL, checked_day
from closedloop.core.plotting import new_figure, no_data, percent_axis, to_png, version_colours
from closedloop.core.specs import ModelSpec
from closedloop.evaluation.eval_stats import score_counts
from closedloop.evaluation.metrics import ece, reliability_curve, threshold_curve, threshold_for_rate
from closedloop.evaluation.rolling_eval import daily_decision_rates, pooled_threshold, window_stats
from closedloop.evaluation.score_bins import ScoreCounts, coarsen


def reliability_figure(
    populations: Mapping[str, ScoreCounts],
    title: str = "Reliability",
    colours: Mapping[str, str] | None = None,
    labels_note: str = "",
) -> bytes:
    """Observed positive share against mean score per calibration bin, one curve per population.

    ``labels_note`` says which labels the curves rest on (e.g. known so far, not matured).
    """
    figure, axes = new_figure(figsize=(6.5, 5.5))
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    drawn = 0
    for name, counts in populations.items():
        curve = reliability_curve(counts)
        if curve.empty:
            continue
        drawn += 1
        error = ece(counts).value
        axes.errorbar(
            curve["mean_score"],
            curve["positive_share"],
            yerr=[curve["positive_share"] - curve["lower"], curve["upper"] - curve["positive_share"]],
            marker="o",
            capsize=2,
            color=(colours or {}).get(name),
            label=f"{name} (ECE {error:.3f}, {int(counts.n_labeled):,} labels)",
        )
    axes.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean score in bin", ylabel="observed positive share")
    axes.set_title(f"{title}\n{labels_note}" if labels_note else title)
    if not drawn:
        no_data(axes, "No labels in this window yet: nothing to calibrate against.")
    else:
        axes.legend(loc="upper left")
    return to_png(figure)


def score_histogram_figure(
    counts: ScoreCounts, threshold: float | None, title: str = "Scores by label", bins: int = 50
) -> bytes:
    """Score distribution of positives, negatives and unlabeled rows (each normalised), with the threshold."""
    figure, axes = new_figure()
    if counts.n == 0:
        no_data(axes, "No predictions in this window.")
        axes.set_title(title)
        return to_png(figure)
    edges = np.arange(bins + 1) / bins
    for name, values in (
        ("positive", counts.pos),
        ("negative", counts.neg),
        ("unlabeled", counts.unlabeled.sum(axis=0)),
    ):
        coarse = coarsen(values, bins)
        if coarse.sum() > 0:
            axes.stairs(coarse / coarse.sum(), edges, label=f"{name} ({int(coarse.sum()):,})")
    if threshold is not None:
        axes.axvline(threshold, color="black", linestyle=":", label=f"threshold {threshold:g}")
    axes.set(xlim=(0, 1), xlabel="score", ylabel="share of the group's rows", title=title)
    axes.legend()
    return to_png(figure)


def decision_rate_figure(
    daily: pa.Table,
    thresholds: Mapping[str, float | None],
    approved_rate: float | None = None,
    title: str = "Decision rate",
    colours: Mapping[str, str] | None = None,
) -> bytes:
    """Daily decision rate per version (and all versions), each labeled with its threshold."""
    frame = daily.to_pandas()
    figure, axes = new_figure()
    axes.set_title(title)
    frame = frame[frame["n"] > 0]
    if frame.empty:
        no_data(axes, "No predictions in this window.")
        return to_png(figure)
    colours = colours or {}
    overall = frame.groupby("prediction_date")[["n", "decided"]].sum()
    if frame["model_version"].nunique() > 1:
        axes.plot(
            overall.index, overall["decided"] / overall["n"], color=colours.get(ALL, "black"), linewidth=2,
            label="all versions",
        )  # fmt: skip
    for version, rows in frame.groupby("model_version"):
        threshold = thresholds.get(version)
        suffix = f" (threshold {threshold:g})" if threshold is not None else ""
        axes.plot(
            rows["prediction_date"], rows["decision_rate"], marker=".", color=colours.get(version),
            label=f"{version}{suffix}",
        )  # fmt: skip
    if approved_rate is not None:
        axes.axhline(approved_rate, color="grey", linestyle="--", label=f"approved rate {approved_rate:.2%}")
    axes.set(xlabel="prediction day", ylabel="decision rate (share of predictions)")
    axes.set_ylim(bottom=0)
    percent_axis(axes.yaxis)
    figure.autofmt_xdate()
    axes.legend()
    return to_png(figure)


def threshold_figure(
    counts: ScoreCounts, threshold: float | None, approved_rate: float | None = None, title: str = "Threshold trade-off"
) -> bytes:
    """Precision, recall and share flagged against the threshold, current and rate-keeping thresholds marked."""
    figure, axes = new_figure()
    if counts.n_labeled == 0:
        no_data(axes, "No labels in this window yet: precision and recall need them.")
        axes.set_title(title)
        return to_png(figure)
    curve = threshold_curve(counts)
    for column in ("precision", "recall", "f1"):
        axes.plot(curve["threshold"], curve[column], label=column)
    axes.plot(curve["threshold"], curve["above"], color="grey", label="share flagged")
    if threshold is not None:
        axes.axvline(threshold, color="black", linestyle=":", label=f"current threshold {threshold:g}")
    if approved_rate is not None:
        keeping = threshold_for_rate(counts, approved_rate)
        if keeping is not None:
            label = f"threshold {keeping:g} keeps {approved_rate:.2%} flagged"
            axes.axvline(keeping, color="tab:red", linestyle="--", label=label)
    axes.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="threshold", ylabel="value", title=title)
    axes.legend()
    return to_png(figure)


def eval_figures(
    lake: Lake, model: ModelSpec, day: str | dt.date, window_days: int | None = None, approved_rate: float | None = None
) -> dict[str, bytes]:
    """The standard evaluation figures of a window ending on ``day`` (default: the longest registry window).

    Calibration and label histograms use every label known so far (matured and immature), so a
    new version's miscalibration shows before its labels mature.
    """
    day = checked_day(day)
    window_days = window_days or max(model.evaluation.windows_days)
    stats, _ = window_stats(lake, model, day, window_days)
    known = score_counts(stats, "known")
    versions = {version: counts for (version, segment, _), counts in known.items() if segment == ALL and version != ALL}
    pooled = known.get((ALL, ALL, ALL), ScoreCounts.empty())
    threshold = pooled_threshold(model, ALL)
    period = f"{model.name}, {window_days} days to {day}"
    colours = version_colours(model.versions_by_release)
    matured = score_counts(stats, "matured").get((ALL, ALL, ALL), ScoreCounts.empty())
    note = (
        f"{int(pooled.n_labeled):,} labels so far, {int(matured.n_labeled):,} matured "
        f"(labels mature at {model.labels.maturity_days} days)"
    )
    return {
        "reliability": reliability_figure(versions, f"Reliability, {period}", colours, note),
        "score_histogram": score_histogram_figure(pooled, threshold, f"Scores by label, {period}\n{note}"),
        "decision_rate": decision_rate_figure(
            daily_decision_rates(lake, model, day, window_days),
            {version: spec.threshold for version, spec in model.versions.items()},
            approved_rate,
            f"Decision rate, {period}",
            colours,
        ),
        "threshold_tradeoff": threshold_figure(
            pooled, threshold, approved_rate, f"Threshold trade-off, {period}\n{note}"
        ),
    }


def write_eval_figures(
    lake: Lake, model: ModelSpec, day: str | dt.date, window_days: int | None = None, approved_rate: float | None = None
) -> dict[str, Path]:
    """Write ``eval_figures`` to the lake's figure paths; returns name -> path."""
    return {
        name: lake.write_file(lake.figure_path(model.name, name, day), png)
        for name, png in eval_figures(lake, model, day, window_days, approved_rate).items()
    }
