"""Drift figures for the report and the Dagster UI, as PNG bytes.

``history`` is the concatenation of daily ``drift_report`` tables. Distributions are drawn on the
baseline's own buckets (quantile bins, or top values): the baseline is flat by construction, so
what stands out is what moved.
"""

from __future__ import annotations

import datetime as dt
from typing import cast

import numpy as np
import pandas as pd
import pyarrow as pa

from closedloop.core.names import ALL
from closedloop.core.plotting import new_figure, no_data, percent_axis, to_png, version_colours
from closedloop.core.specs import DRIFT_OUTPUT_COLUMNS, ModelSpec
from closedloop.drift.baseline import Baseline
from closedloop.drift.measures import ColumnProfile
from closedloop.drift.profiles import merge_profiles
from closedloop.drift.report import DAY_WINDOW

TOP_VALUES_SHOWN = 12


def _rows(history: pa.Table, metric: str, window: str = DAY_WINDOW) -> pd.DataFrame:
    frame = history.to_pandas()
    return frame[(frame["metric"] == metric) & (frame["window"] == window)]


PSI_COLOUR_CAP = 0.5


def psi_heatmap(history: pa.Table, *, days: int = 30, end: dt.date | None = None, model: str = "") -> bytes:
    """PSI of every watched column by day (all versions) over the ``days`` days to ``end`` (default: the last
    day of ``history``); a day past the warn limit is marked ``o``, past the error limit ``x``."""
    psi = _rows(history, "psi")
    psi = psi[psi["version"] == ALL]
    last = pd.Timestamp(end) if end else pd.Timestamp(psi["day"].max()) if len(psi) else pd.Timestamp.today()
    in_view = pd.to_datetime(psi["day"])
    psi = psi[(in_view > last - pd.Timedelta(days=days)) & (in_view <= last)]
    title = f"{model + ': ' if model else ''}PSI against the baseline, {days} days to {last:%Y-%m-%d}"
    if psi.empty:
        figure, axes = new_figure(figsize=(6.0, 3.0))
        no_data(axes, "No drift computed in these days.")
        axes.set_title(title)
        return to_png(figure)
    values = psi.pivot_table(index="column", columns="day", values="value", aggfunc="first")
    figure, axes = new_figure(figsize=(max(6.0, 0.3 * values.shape[1] + 3), max(3.0, 0.3 * values.shape[0] + 1.5)))
    # Capped at 0.5 (twice the usual error limit): one column far beyond it must not wash out the rest.
    image = axes.imshow(values.to_numpy(dtype=float), aspect="auto", cmap="magma_r", vmin=0.0, vmax=PSI_COLOUR_CAP)
    marks = {"warn": "o", "error": "x"}
    for key, status in psi.set_index(["column", "day"])["status"].items():
        column, day = cast(tuple, key)
        if status in marks:
            axes.text(
                values.columns.get_loc(day),
                values.index.get_loc(column),
                marks[status],
                ha="center",
                va="center",
                color="tab:cyan",
                fontsize=9,
                fontweight="bold",
            )
    axes.set_yticks(range(len(values.index)), values.index)
    axes.set_xticks(
        range(len(values.columns)), [pd.Timestamp(d).strftime("%m-%d") for d in values.columns], rotation=90
    )
    axes.grid(False)
    axes.set_title(f"{title}\no: past the warn limit, x: past the error limit (PSI, another drift figure or both)")
    figure.colorbar(image, ax=axes, label=f"PSI (capped at {PSI_COLOUR_CAP})", extend="max")
    return to_png(figure)


def _bucket_labels(baseline: Baseline, column: str) -> list[str]:
    if column in baseline.numeric:
        edges = baseline.numeric[column].edges
        return [f"<{edges[0]:.3g}"] + [f"{e:.3g}" for e in edges[:-1]] + [f"≥{edges[-1]:.3g}"] if edges else ["all"]
    return [*baseline.categorical[column].top, "other"]


def _draw_buckets(axes, baseline: Baseline, column: str, curves: dict[str, np.ndarray]) -> None:
    """Shares per baseline bucket, one bar group per curve; only the top values are shown for categoricals."""
    labels = _bucket_labels(baseline, column)
    shown = list(range(len(labels)))
    if column in baseline.categorical and len(labels) > TOP_VALUES_SHOWN + 1:
        shown = list(range(TOP_VALUES_SHOWN)) + [len(labels) - 1]
    width = 0.8 / len(curves)
    for i, (name, shares) in enumerate(curves.items()):  # each bucket's bars are centred on its index
        axes.bar(np.arange(len(shown)) + (i - (len(curves) - 1) / 2) * width, shares[shown], width=width, label=name)
    axes.set_xticks(np.arange(len(shown)), [labels[j] for j in shown], rotation=90, fontsize=7)
    axes.set_ylabel("share")


def _shares(profile: ColumnProfile) -> np.ndarray:
    return profile.shares if profile.shares is not None else np.zeros_like(profile.counts)


def distribution_figure(
    baseline: Baseline, profiles: pa.Table, history: pa.Table, *, top: int = 4, day: dt.date | None = None
) -> bytes:
    """Baseline against current distribution of the ``top`` input columns with the highest PSI on ``day``
    (default: the last day of ``history``); ``profiles`` is that day's."""
    psi = _rows(history, "psi")
    shown_day = day or psi["day"].max()
    psi = psi[(psi["version"] == ALL) & (psi["day"] == shown_day) & ~psi["column"].isin(DRIFT_OUTPUT_COLUMNS)]
    columns = psi.sort_values("value", ascending=False)["column"].head(top).tolist()
    current = {
        row["column"]: ColumnProfile.from_row(row)
        for row in merge_profiles([profiles], across_versions=True).to_pylist()
    }
    reference = {row["column"]: ColumnProfile.from_row(row) for row in baseline.profile.to_pylist()}
    figure, axes = new_figure(1, max(len(columns), 1), figsize=(4.0 * max(len(columns), 1), 4.0), squeeze=False)
    drifting = psi["status"].isin(["warn", "error"]).any()
    quiet = "" if drifting else " (no input past its PSI limits)"
    figure.suptitle(f"{baseline.model}: top inputs by PSI on {shown_day}, baseline against the day{quiet}")
    if not columns:
        no_data(axes[0][0], "No drift computed for this day.")
        return to_png(figure)
    for ax, column in zip(axes[0], columns, strict=False):
        curves = {"baseline": _shares(reference[column])}
        if column in current:
            curves["current"] = _shares(current[column])
        _draw_buckets(ax, baseline, column, curves)
        value = psi.loc[psi["column"] == column, "value"].iloc[0]
        ax.set_title(f"{column} (PSI {value:.2f})")
    axes[0][0].legend()
    return to_png(figure)


def score_distribution_figure(model: ModelSpec, baseline: Baseline, profiles: pa.Table) -> bytes:
    """Score shares per baseline score bucket for each version against the baseline; dashed lines mark thresholds."""
    curves = {
        "baseline": _shares(
            ColumnProfile.from_row(next(r for r in baseline.profile.to_pylist() if r["column"] == "score"))
        )
    }
    for row in merge_profiles([profiles]).to_pylist():
        if row["column"] == "score":
            curves[row["model_version"]] = _shares(ColumnProfile.from_row(row))
    figure, axes = new_figure(figsize=(10, 4.5))
    _draw_buckets(axes, baseline, "score", curves)
    edges = list(baseline.numeric["score"].edges)
    for threshold in sorted({spec.threshold for spec in model.versions.values()} & set(edges)):
        versions = ", ".join(v for v, spec in model.versions.items() if spec.threshold == threshold)
        position = edges.index(threshold) + 0.5  # bucket i + 1 starts at edges[i]; bars sit at bucket positions
        axes.axvline(position, color="tab:red", linestyle="--", linewidth=1)
        axes.annotate(
            f"threshold {threshold:g} ({versions})",
            (position + 0.1, 0.95),
            xycoords=("data", "axes fraction"),
            fontsize=7,
        )
    axes.set_title(f"{model.name}: score distribution by version on the baseline's score buckets")
    axes.legend()
    return to_png(figure)


def decision_rate_figure(model: ModelSpec, baseline: Baseline, history: pa.Table) -> bytes:
    """Daily decision rate per version; the baseline rate, with the warn and error limits of decision_rate_ratio."""
    rates = _rows(history, "decision_rate")
    figure, axes = new_figure()
    axes.set_title(f"{model.name}: decision rate by day")
    if rates.empty:
        no_data(axes, "No drift computed in these days.")
        return to_png(figure)
    colours = version_colours(model.versions_by_release)
    for version, rows in rates.groupby("version"):
        rows = rows.sort_values("day")
        axes.plot(
            pd.to_datetime(rows["day"]), rows["value"], marker=".", label=version, color=colours.get(str(version)),
            linewidth=2 if version == ALL else 1,
        )  # fmt: skip
    base = baseline.numeric["decision"].mean
    limit = model.drift.limit("decision_rate_ratio", "decision")
    if base is not None:
        axes.axhline(base, color="black", linewidth=1, label="baseline")
        for level, style in (("warn", ":"), ("error", "--")):
            factor = getattr(limit, level) if limit else None
            if factor:
                axes.axhline(
                    base * factor, color="tab:red", linestyle=style, linewidth=1, label=f"{level} limit (x{factor:g})"
                )
                axes.axhline(base / factor, color="tab:red", linestyle=style, linewidth=1)
    axes.set_ylabel("decision rate (share of predictions)")
    axes.set_ylim(bottom=0)
    percent_axis(axes.yaxis)
    figure.autofmt_xdate()
    axes.legend(fontsize=7)
    return to_png(figure)
