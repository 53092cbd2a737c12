"""Hourly operational guards: ceilings on latency, errors, fallbacks and cost, and a daily budget.

The ceilings live in the registry (``models.<name>.ops``). Model-level ceilings watch all routes
together (route ``"all"``); a route listed under ``routes`` is watched on its own traffic with
exactly the ceilings listed there (nothing is inherited: a fallback route has a fallback rate of
100% by design). An hour with fewer than ``min_requests_per_hour`` requests (in the scope the
guard watches), or without the metric at all, is "not enough data": it passes and never alerts.
The budget guard fails as soon as the day's projected spend (``projected_daily_spend``) exceeds it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from closedloop.core.bounds import Bound
from closedloop.core.names import ALL
from closedloop.core.periods import hour_has_ended
from closedloop.core.specs import OpsGuards, RouteGuards, Severity
from closedloop.ops.stats import ops_metrics, projected_daily_spend

BUDGET_GUARD = "daily_budget_usd"
# guard name (= the metric it bounds) -> the field holding its ceiling
CEILINGS = {
    "latency_p95_ms": "max_latency_p95_ms",
    "error_rate": "max_error_rate",
    "fallback_rate": "max_fallback_rate",
    "cost_per_1k": "max_cost_per_1k",
}


@dataclass(frozen=True)
class GuardResult:
    """One guard evaluated on one hour and one scope (a route, or ``"all"``)."""

    guard: str
    route: str
    hour: dt.datetime
    expected: float
    observed: float | None
    passed: bool
    severity: Severity
    not_enough_data: bool
    requests: int


def latest_complete_hour(stats: pa.Table, now: dt.datetime | None = None) -> dt.datetime | None:
    """The latest hour of ``stats`` that had ended by ``now`` (default: the current time)."""
    now = pd.Timestamp(now or dt.datetime.now(dt.UTC)).tz_convert("UTC")
    hours = stats.column("hour").to_pandas()
    complete = hours[[hour_has_ended(h, now) for h in hours]]
    return complete.max().to_pydatetime() if len(complete) else None


def evaluate_guards(
    stats: pa.Table,
    guards: OpsGuards,
    hours: list[dt.datetime] | None = None,
    *,
    now: dt.datetime | None = None,
    history: pa.Table | None = None,
) -> list[GuardResult]:
    """Every configured guard on each of ``hours`` (default: the latest complete hour of ``stats``).

    ``stats`` holds the ``ops_stats`` rows of the hours' days; ``history`` (earlier days' rows)
    shapes the budget projection, see ``projected_daily_spend``.
    """
    if hours is None:
        latest = latest_complete_hour(stats, now)
        hours = [] if latest is None else [latest]
    scopes: list[tuple[str, RouteGuards, pd.DataFrame]] = [(ALL, guards, ops_metrics(stats, by=("hour",)))]
    if guards.routes:
        by_route = ops_metrics(stats, by=("hour", "route"))
        scopes += [(route, ceilings, by_route[by_route["route"] == route]) for route, ceilings in guards.routes.items()]
    results = []
    for hour in (pd.Timestamp(h).tz_convert("UTC") for h in hours):
        for route, ceilings, metrics in scopes:
            row = metrics[metrics["hour"] == hour]
            requests = int(row["requests"].sum())
            for guard, field in CEILINGS.items():
                ceiling = getattr(ceilings, field)
                if ceiling is not None:
                    observed = float(row[guard].iloc[0]) if len(row) else None
                    results.append(_result(guards, guard, route, hour, ceiling, observed, requests))
            if route == ALL and guards.daily_budget_usd is not None:
                spend = projected_daily_spend(stats, hour.to_pydatetime(), history)
                results.append(_result(guards, BUDGET_GUARD, route, hour, guards.daily_budget_usd, spend, requests))
    return results


def _result(
    guards: OpsGuards, guard: str, route: str, hour: pd.Timestamp, ceiling: float, observed: float | None, requests: int
) -> GuardResult:
    if observed is not None and pd.isna(observed):
        observed = None
    not_enough_data = observed is None or requests < guards.min_requests_per_hour
    return GuardResult(
        guard=guard,
        route=route,
        hour=hour.to_pydatetime(),
        expected=ceiling,
        observed=observed,
        passed=observed is None or not_enough_data or not Bound(type="upper", error=ceiling).breaks(observed),
        severity=guards.severity,
        not_enough_data=not_enough_data,
        requests=requests,
    )
