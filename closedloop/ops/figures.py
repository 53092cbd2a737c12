"""Figures of the operational guards over a window of hours (the report draws the last 7 days).

Hours with fewer requests than the guards' ``min_requests_per_hour`` are gaps in the lines, as
the guards ignore them too: a p95 over a handful of requests is noise, not a trend.
"""

from __future__ import annotations

import math

import pandas as pd
import pyarrow as pa

from closedloop.core.names import ALL
from closedloop.core.plotting import new_figure, no_data, percent_axis, to_png
from closedloop.core.specs import OpsGuards, RouteGuards
from closedloop.ops.stats import ops_metrics


def _hourly(metrics: pd.DataFrame, guards: OpsGuards, hours: pd.DatetimeIndex) -> pd.DataFrame:
    """One row per hour of ``hours``, metrics blank where an hour lacks enough requests (a gap in the line)."""
    enough = metrics[metrics["requests"] >= guards.min_requests_per_hour]
    return enough.set_index("hour").reindex(hours).rename_axis("hour").reset_index()


def _window(stats: pa.Table) -> pd.DatetimeIndex:
    """Every hour from the first to the last hour of ``stats``."""
    hours = pd.DatetimeIndex(stats.column("hour").to_pandas())
    return pd.date_range(hours.min(), hours.max(), freq="h") if len(hours) else hours


def _per_scope(stats: pa.Table, guards: OpsGuards) -> list[tuple[str, RouteGuards, pd.DataFrame]]:
    """("all", model-level ceilings, hourly metrics), then one entry per route when there are several."""
    hours = _window(stats)
    scopes: list[tuple[str, RouteGuards, pd.DataFrame]] = [
        (ALL, guards, _hourly(ops_metrics(stats, by=("hour",)), guards, hours))
    ]
    routes = sorted(set(stats.column("route").to_pylist()))
    if len(routes) > 1:
        by_route = ops_metrics(stats, by=("hour", "route"))
        scopes += [
            (
                r,
                guards.routes.get(r, RouteGuards()),
                _hourly(by_route[by_route["route"] == r].drop(columns="route"), guards, hours),
            )
            for r in routes
        ]
    return scopes


def _ceiling(axes, value: float | None, label: str) -> None:
    if value is not None:
        axes.axhline(value, color="tab:red", linestyle="--", linewidth=1, label=label)


def _milliseconds(value: float, _position) -> str:
    """Plain numbers on the log-scaled latency axis (2,000 rather than 2x10^3); minor ticks at 2, 3, 5 only."""
    leading = value / 10 ** math.floor(math.log10(value)) if value > 0 else 0
    return f"{value:,.0f}" if round(leading) in (1, 2, 3, 5) else ""


def latency_cost_figure(stats: pa.Table, guards: OpsGuards, title: str = "") -> bytes:
    """Hourly latency p50/p95/p99 (top) and, when the model logs a cost, cost per 1k predictions (bottom), all
    routes and per route.

    One column per scope; the dashed red lines are the ceilings that apply to that scope.
    """
    scopes = _per_scope(stats, guards)
    costs = any(metrics["cost_per_1k"].notna().any() for _, _, metrics in scopes)
    rows = 2 if costs else 1
    figure, axes = new_figure(
        rows, len(scopes), figsize=(max(4.5 * len(scopes), 8.0), 3.4 * rows), sharex=True, squeeze=False,
        layout="constrained",
    )  # fmt: skip
    for column, (route, ceilings, metrics) in enumerate(scopes):
        top = axes[0][column]
        if metrics["latency_p95_ms"].isna().all():
            no_data(top, "No hour with enough requests to judge.")
            continue
        for q, style in (("50", ":"), ("95", "-"), ("99", "--")):
            top.plot(metrics["hour"], metrics[f"latency_p{q}_ms"], style, marker=".", markersize=3, label=f"p{q}")
        _ceiling(top, ceilings.max_latency_p95_ms, "p95 ceiling")
        top.set_yscale("log")
        top.yaxis.set_major_formatter(_milliseconds)
        low, high = top.get_ylim()
        if high < 10 * low:  # within a decade the major ticks alone are too few to read
            top.yaxis.set_minor_formatter(_milliseconds)
        if len(scopes) > 1:
            top.set_title(route)
        top.set_ylabel("latency (ms)")
        top.legend(loc="best", fontsize=7)
        top.tick_params(axis="x", labelrotation=30)
        if costs:
            bottom = axes[1][column]
            bottom.plot(metrics["hour"], metrics["cost_per_1k"], marker=".", markersize=3, label="cost per 1k")
            _ceiling(bottom, ceilings.max_cost_per_1k, "ceiling")
            bottom.set_ylabel("USD per 1,000 predictions")
            bottom.tick_params(axis="x", labelrotation=30)
    if title:
        figure.suptitle(title + ("" if costs else " (no cost logged)"))
    return to_png(figure)


def fallback_figure(stats: pa.Table, guards: OpsGuards, title: str = "") -> bytes:
    """Hourly fallback and error rates of all routes together, with their ceilings."""
    metrics = _hourly(ops_metrics(stats, by=("hour",)), guards, _window(stats))
    figure, axes = new_figure()
    if title:
        axes.set_title(title)
    rates = metrics[["fallback_rate", "error_rate"]]
    if rates.isna().all().all():
        no_data(axes, "No hour with enough requests to judge.")
        return to_png(figure)
    axes.plot(metrics["hour"], metrics["fallback_rate"], marker=".", markersize=3, label="fallback rate")
    axes.plot(metrics["hour"], metrics["error_rate"], marker=".", markersize=3, label="error rate")
    _ceiling(axes, guards.max_fallback_rate, "fallback ceiling")
    if guards.max_error_rate is not None:
        axes.axhline(guards.max_error_rate, color="tab:orange", linestyle="--", linewidth=1, label="error ceiling")
    if not (rates.fillna(0) > 0).any().any():
        axes.text(
            0.5, 0.6, "no fallbacks and no errors in these hours", ha="center", transform=axes.transAxes,
            color="#666666",
        )  # fmt: skip
    top = max(rates.max().max(), guards.max_fallback_rate or 0, guards.max_error_rate or 0)
    axes.set_ylim(0, top * 1.15 if top > 0 else 0.01)
    axes.set_ylabel("share of requests")
    percent_axis(axes.yaxis)
    axes.legend(loc="best", fontsize=7)
    axes.tick_params(axis="x", labelrotation=30)
    return to_png(figure)
