"""The daily report's own figures: SLO trends with their bounds, quality over time, labels, spend.

Every figure ends on the report's day (a dotted line marks it), names the model, draws the
bound it is judged against, and says so in the axes when there is nothing to draw.
"""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd

from closedloop.core.names import ALL
from closedloop.core.plotting import new_figure, no_data, percent_axis, to_png, version_colours
from closedloop.core.specs import ModelSpec, SLOSpec
from closedloop.reports.health import BREACHED, BREACHING

SHARE_UNITS = ("share",)
READABLE_UNITS = ("ms", "usd", "usd per 1,000", "columns", "rows", "requests")
RECENT_DAYS = 30  # shaded in the trends: the month a reader compares with


def _day_span(axes, day: dt.date, days: int, times) -> None:
    """The window on the x axis (from the first of ``times`` when the data starts later), the last
    ``RECENT_DAYS`` shaded, the report's day marked."""
    end = pd.Timestamp(day) + pd.Timedelta(days=1)
    first = pd.to_datetime(pd.Series(times)).min()
    first = first.tz_localize(None) if first.tzinfo else first
    start = max(end - pd.Timedelta(days=days), first.normalize() - pd.Timedelta(days=1))
    axes.set_xlim(start, end)
    if end - start > pd.Timedelta(days=RECENT_DAYS + 7):
        axes.axvspan(end - pd.Timedelta(days=RECENT_DAYS), end, color="#f2f2f2", zorder=0)
    axes.axvline(end, color="#444444", linestyle=":", linewidth=1)
    axes.tick_params(axis="x", labelrotation=30, labelsize=7)


def _draw_bound(axes, slo: SLOSpec) -> None:
    """The SLO's written bound, when every subject is held to the same one."""
    if slo.band is not None:
        axes.axhspan(*slo.band, color="tab:green", alpha=0.08, zorder=0)
        for edge in slo.band:
            axes.axhline(edge, color="tab:red", linestyle="--", linewidth=1)
    elif slo.threshold is not None:
        axes.axhline(slo.threshold, color="tab:red", linestyle="--", linewidth=1)


def _draw_judged_limits(axes, rows: pd.DataFrame, colour: str) -> None:
    """The limits each period was judged against (a version's own bound, learned limits), as steps."""
    for column in ("band_low", "band_high", "threshold"):
        limits = rows.dropna(subset=[column])
        if len(limits):
            axes.step(limits["time"], limits[column], where="post", color=colour, linestyle="--", linewidth=0.8)


def subject_lines(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The lines an SLO's trend draws: one per version subject (or one pooled); an SLO judged per
    input column draws how many columns broke their limits each period, the worst state marked."""
    if rows.empty or rows["subject"].isna().all():
        return {ALL: rows}
    if (rows["subject"] == rows["version"]).all():
        return {str(subject): part for subject, part in rows.groupby("subject", sort=True)}
    counted = rows.assign(rank=rows["state"].map({BREACHING: 1, BREACHED: 2}).fillna(0))
    worst = counted.sort_values("rank").groupby("period", as_index=False).last()
    totals = counted.groupby("period", as_index=False).agg(value=("value", "sum"))
    merged = worst.drop(columns=["value"]).merge(totals, on="period").sort_values("time")
    return {"inputs past a limit": merged.assign(breach=merged["rank"] > 0)}


def slo_trends_figure(model: ModelSpec, history: pd.DataFrame, units: dict[str, str], day: dt.date, days: int) -> bytes:
    """One panel per SLO: the judged value over ``days`` days, its bound dashed, breaching and breached periods
    marked; the last month shaded."""
    slos = list(model.slos)
    columns = 2 if len(slos) > 1 else 1
    rows = math.ceil(max(len(slos), 1) / columns)
    figure, axes = new_figure(rows, columns, figsize=(6.0 * columns, 2.8 * rows), squeeze=False)
    figure.suptitle(f"{model.name}: SLOs up to {days} days to {day} (shaded: the last {RECENT_DAYS} days)")
    for index, slo in enumerate(slos):
        ax = axes[index // columns][index % columns]
        mine = history[history["slo"] == slo.name]
        judged = mine.dropna(subset=["value"])
        unit = units.get(slo.name, "")
        ax.set_title(f"{slo.name}: {slo.metric} {slo.describe_bound()} ({slo.severity})", fontsize=8)
        if judged.empty:
            no_data(ax, "No period with enough data to judge in this window.")
            continue
        lines = subject_lines(judged)
        colours = version_colours(model.versions_by_release)
        for name, line in lines.items():
            colour = colours.get(name, "#1f77b4")
            ax.plot(line["time"], line["value"], color=colour, linewidth=1, marker=".", markersize=3, label=name)
            if slo.learned is not None or slo.versions:
                _draw_judged_limits(ax, line, colour)
        for state, colour in ((BREACHING, "tab:orange"), (BREACHED, "tab:red")):
            bad = pd.concat(lines.values())
            bad = bad[(bad["state"] == state) & bad["breach"].fillna(False).astype(bool)]
            if len(bad):
                ax.scatter(bad["time"], bad["value"], color=colour, s=14, zorder=3, label=state)
        if slo.learned is None and not slo.versions:
            _draw_bound(ax, slo)
        _day_span(ax, day, days, history["time"])
        ax.set_ylabel(slo.metric + (f" ({unit})" if unit in READABLE_UNITS else ""), fontsize=8)
        if unit in SHARE_UNITS:
            percent_axis(ax.yaxis)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
    for index in range(len(slos), rows * columns):
        axes[index // columns][index % columns].set_visible(False)
    figure.tight_layout()
    return to_png(figure)


def quality_over_time_figure(
    model: ModelSpec, history: pd.DataFrame, metric: str, window_days: int, day: dt.date, days: int, floor: float | None
) -> bytes:
    """``metric`` over the ``window_days`` window ending on each day, per version: matured labels solid with
    their 95% band, labels known so far dotted, the estimate from calibrated scores dashed."""
    figure, axes = new_figure(figsize=(9, 4))
    axes.set_title(f"{model.name}: {metric} over {window_days}-day windows, {days} days to {day}")
    if history.empty:
        no_data(axes, f"No {metric} yet: no window had enough labels of both classes, and no estimate.")
        return to_png(figure)
    colours = version_colours(model.versions_by_release)
    if history["model_version"].nunique() == 2:  # one version and the pool: the same line twice
        history = history[history["model_version"] != ALL]
    styles = {"matured": "-", "immature": ":", "estimated": "--"}
    names = {"matured": "matured labels", "immature": "labels so far", "estimated": "estimated"}
    for (version, labels), rows in history.groupby(["model_version", "labels"]):
        rows = rows.sort_values("window_end")
        times = pd.to_datetime(rows["window_end"])
        colour = colours.get(str(version))
        axes.plot(
            times, rows["value"], styles.get(str(labels), "-"), color=colour, label=f"{version}, {names[str(labels)]}"
        )
        if labels == "matured" and rows["lower"].notna().any():
            axes.fill_between(times, rows["lower"], rows["upper"], color=colour, alpha=0.15, linewidth=0)
    if floor is not None:
        axes.axhline(floor, color="tab:red", linestyle="--", linewidth=1, label=f"SLO floor {floor:g}")
    _day_span(axes, day, days, history["window_end"])
    axes.set_ylabel(metric)
    axes.legend(fontsize=7, loc="lower left", ncol=2)
    return to_png(figure)


def label_coverage_figure(model: ModelSpec, coverage: pd.DataFrame, day: dt.date, days: int) -> bytes:
    """Share of each prediction day labeled by the end of the report's day; days whose labels have matured
    are left of the dashed line."""
    figure, axes = new_figure(figsize=(9, 3.6))
    axes.set_title(
        f"{model.name}: labels known by the end of {day}, by prediction day "
        f"(labels mature after {model.labels.maturity_days} days)"
    )
    if coverage.empty:
        no_data(axes, "No outcomes in this window: no prediction day has been joined to labels yet.")
        return to_png(figure)
    times = pd.to_datetime(coverage["prediction_date"]) + pd.Timedelta(hours=12)
    axes.bar(times, coverage["coverage"], width=0.8, color="#1f77b4", label="labeled by then")
    mature = pd.Timestamp(day) - pd.Timedelta(days=model.labels.maturity_days - 1)
    axes.axvline(mature, color="tab:red", linestyle="--", linewidth=1)
    axes.annotate(
        f"← mature ({model.labels.maturity_days} days)", (mature, 0.97), xycoords=("data", "axes fraction"),
        ha="right", fontsize=7, color="tab:red", annotation_clip=True,
    )  # fmt: skip
    _day_span(axes, day, days, coverage["prediction_date"])
    axes.set_ylim(0, 1)
    axes.set_ylabel("share of predictions labeled")
    percent_axis(axes.yaxis)
    return to_png(figure)


def daily_spend_figure(model: ModelSpec, spend: pd.DataFrame, day: dt.date, days: int) -> bytes:
    """Spend per day with the daily budget; a day over budget is red."""
    figure, axes = new_figure(figsize=(9, 3.4))
    axes.set_title(f"{model.name}: spend per day, {days} days to {day}")
    budget = model.ops.daily_budget_usd
    logged = spend.dropna(subset=["cost_usd"]) if len(spend) else spend
    if logged.empty or not (logged["cost_usd"] > 0).any():
        no_data(axes, "No cost logged in these days.")
        return to_png(figure)
    over = (logged["cost_usd"] > budget) if budget is not None else pd.Series(False, index=logged.index)
    times = pd.to_datetime(logged["day"]) + pd.Timedelta(hours=12)
    axes.bar(times, logged["cost_usd"], width=0.8, color=["tab:red" if o else "#1f77b4" for o in over])
    if budget is not None:
        axes.axhline(budget, color="tab:red", linestyle="--", linewidth=1, label=f"daily budget ${budget:,.0f}")
        axes.legend(fontsize=7)
    _day_span(axes, day, days, logged["day"])
    axes.set_ylabel("USD per day")
    return to_png(figure)


def slo_sparkline(slo: SLOSpec, history: pd.DataFrame, day: dt.date, days: int = RECENT_DAYS) -> bytes:
    """A thumbnail of the SLO's last ``days`` days for the status table: the value on its own scale, the
    bound where it falls inside it, breached periods in red."""
    figure, axes = new_figure(figsize=(2.2, 0.55))
    judged = history[(history["slo"] == slo.name)].dropna(subset=["value"])
    judged = judged[pd.to_datetime(judged["time"]).dt.tz_localize(None) > pd.Timestamp(day) - pd.Timedelta(days=days)]
    axes.axis("off")
    if len(judged):
        lines = subject_lines(judged)
        for line in lines.values():
            axes.plot(line["time"], line["value"], color="#1f77b4", linewidth=1.5)
            bad = line[line["state"] == BREACHED]
            axes.scatter(bad["time"], bad["value"], color="tab:red", s=12, zorder=3)
        drawn = pd.concat(lines.values())
        low, high = drawn["value"].min(), drawn["value"].max()
        pad = (high - low) * 0.15 or abs(high) * 0.1 or 1.0
        if slo.learned is None and not slo.versions:
            _draw_bound(axes, slo)
        axes.set_ylim(low - pad, high + pad)
    figure.subplots_adjust(0, 0, 1, 1)
    return to_png(figure)
