"""Hourly operational guards: ceilings on latency, errors, fallbacks and cost, and a daily budget.

The ceilings live in the registry (``models.<name>.ops``). Model-level ceilings watch all routes
together (route ``"all"``); a route listed under ``routes`` is watched on its own traffic with
exactly the ceilings listed there (nothing is inherited: a fallback route has a fallback rate of
100% by design). An hour with fewer than ``min_requests_per_hour`` requests (in the scope the
guard watches), or without the metric at all, is "not enough data": it passes and never alerts.
The budget guard fails as soon as the day's projected spend (``projected_daily_spend``) exceeds it.

A ceiling can be learned instead of written (``learned``): each hour's is the upper limit the
trailing ``periods`` hours of the scope's own traffic teach (mean + k sd, or a quantile; with
``seasonal: hour`` around the same hour's mean, so a night is not held to the day's latency).
Only hours with enough requests that stayed under their own ceiling teach it, so a spike never
teaches the guard to accept the next one; until ``periods`` such hours are in, the guard is
learning and judges nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from closedloop.core.bounds import Bound, LearnedLimits
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
    expected: float | None  # None while a learned ceiling is still learning
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
    learning_history: pa.Table | None = None,
) -> list[GuardResult]:
    """Every configured guard on each of ``hours`` (default: the latest complete hour of ``stats``).

    ``stats`` holds the ``ops_stats`` rows of the hours' days; ``history`` (earlier days' rows)
    shapes the budget projection, see ``projected_daily_spend``; ``learning_history`` (earlier
    days' rows, ``learning_days`` of them) is what learned ceilings learn from.
    """
    if hours is None:
        latest = latest_complete_hour(stats, now)
        hours = [] if latest is None else [latest]
    every_hour = stats if learning_history is None else pa.concat_tables([learning_history, stats])
    scopes: list[tuple[str, RouteGuards, pd.DataFrame]] = [(ALL, guards, ops_metrics(every_hour, by=("hour",)))]
    if guards.routes:
        by_route = ops_metrics(every_hour, by=("hour", "route"))
        scopes += [(route, ceilings, by_route[by_route["route"] == route]) for route, ceilings in guards.routes.items()]
    judged = [pd.Timestamp(h).tz_convert("UTC") for h in hours]
    learned = {
        (route, guard): learned_ceilings(limits, metrics, guard, guards.min_requests_per_hour, max(judged))
        for route, ceilings, metrics in scopes
        for guard, limits in ceilings.learned.items()
        if judged
    }
    results = []
    for hour in judged:
        for route, ceilings, metrics in scopes:
            row = metrics[metrics["hour"] == hour]
            requests = int(row["requests"].sum())
            for guard, field in CEILINGS.items():
                ceiling = getattr(ceilings, field)
                if guard in ceilings.learned:
                    ceiling = learned[route, guard].get(hour)
                elif ceiling is None:
                    continue
                observed = float(row[guard].iloc[0]) if len(row) else None
                results.append(_result(guards, guard, route, hour, ceiling, observed, requests))
            if route == ALL and guards.daily_budget_usd is not None:
                spend = projected_daily_spend(stats, hour.to_pydatetime(), history)
                results.append(_result(guards, BUDGET_GUARD, route, hour, guards.daily_budget_usd, spend, requests))
    return results


def learning_days(guards: OpsGuards) -> int:
    """Days of earlier ``ops_stats`` the learned ceilings need: twice their longest reference, in whole
    days, so that quiet hours (too few requests to teach) still leave a full reference."""
    periods = [limits.periods for scope in (guards, *guards.routes.values()) for limits in scope.learned.values()]
    return 0 if not periods else -(-2 * max(periods) // 24)


def learned_ceilings(
    limits: LearnedLimits, hourly: pd.DataFrame, guard: str, min_requests: int, through: pd.Timestamp
) -> dict[pd.Timestamp, float | None]:
    """Each hour's learned ceiling through ``through``, walking the hours in order: an hour is judged
    against the trailing hours that taught before it, and teaches only if it had enough requests and
    stayed under its ceiling. None while fewer than ``periods`` hours have taught."""
    ceiling_of = limits.model_copy(update={"side": "upper"})
    reference: list[tuple[pd.Timestamp, float]] = []
    ceilings: dict[pd.Timestamp, float | None] = {}
    for hour, value, requests in hourly.sort_values("hour")[["hour", guard, "requests"]].itertuples(index=False):
        if hour > through:
            break
        bound = None
        if len(reference) >= limits.periods:
            values = [v for _, v in reference]
            seasons = [limits.season(h) for h, _ in reference]
            bound = ceiling_of.bound(values, seasons, limits.season(hour))
        ceilings[hour] = None if bound is None or not isinstance(bound.error, float) else bound.error
        ceiling = ceilings[hour]
        if requests >= min_requests and not pd.isna(value) and (ceiling is None or value <= ceiling):
            reference = [*reference, (hour, float(value))][-limits.periods :]
    return ceilings


def _result(
    guards: OpsGuards,
    guard: str,
    route: str,
    hour: pd.Timestamp,
    ceiling: float | None,
    observed: float | None,
    requests: int,
) -> GuardResult:
    if observed is not None and pd.isna(observed):
        observed = None
    judged = broken = False
    if observed is not None and ceiling is not None and requests >= guards.min_requests_per_hour:
        judged, broken = True, Bound(type="upper", error=ceiling).breaks(observed)
    return GuardResult(
        guard=guard,
        route=route,
        hour=hour.to_pydatetime(),
        expected=ceiling,
        observed=observed,
        passed=not broken,
        severity=guards.severity,
        not_enough_data=not judged,
        requests=requests,
    )
