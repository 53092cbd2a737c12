"""Operational guards on ``<model>/ops_stats``: latency, errors, fallbacks, cost and budget per hour.

The hourly refresh tags its run with ``closedloop/as_of`` (the tick's time): the guards then
judge the latest hour that had ended by then, so an alert comes within the hour. Any other run
(the daily run, a backfill) judges every hour of its days and lists the hours that broke a guard.
"""

import datetime as dt

import dagster as dg
import pandas as pd
import pyarrow.compute as pc

from checks.results import check_result
from closedloop.core.names import checked_day
from closedloop.core.periods import hours_to_judge, period_in_words
from closedloop.core.specs import ModelSpec
from closedloop.ops.guards import BUDGET_GUARD, CEILINGS, GuardResult, evaluate_guards, learning_days
from closedloop.ops.stats import read_ops_stats
from wiring.day_records import check_spec, judged_day_by_day
from wiring.partitions import run_days
from wiring.resources import LakeResource
from wiring.tags import AS_OF_TAG

BUDGET_HISTORY_DAYS = 7
GUARD_CHECK_NAMES = {
    "latency_p95_ms": "latency_p95_within_ceiling",
    "error_rate": "error_rate_within_ceiling",
    "fallback_rate": "fallback_rate_within_ceiling",
    "cost_per_1k": "cost_per_1k_within_ceiling",
    BUDGET_GUARD: "projected_daily_spend_within_budget",
}
_SHOWN_HOURS = 24


def configured_guards(model: ModelSpec) -> list[str]:
    """The guards the registry sets for ``model`` (on the model or any route)."""
    scopes = [model.ops, *model.ops.routes.values()]
    guards = [
        g
        for g, field in CEILINGS.items()
        if any(getattr(scope, field) is not None or g in scope.learned for scope in scopes)
    ]
    return guards + ([BUDGET_GUARD] if model.ops.daily_budget_usd is not None else [])


def _result(model: ModelSpec, guard: str, results: list[GuardResult]) -> dg.AssetCheckResult:
    judged = [r for r in results if not r.not_enough_data]
    broken = [r for r in judged if not r.passed]
    lines = ["| hour (UTC) | route | expected at most | observed | requests |", "|---|---|---:|---:|---:|"]
    lines += [
        f"| {r.hour:%Y-%m-%d %H:00} | {r.route} | {r.expected:,.4g} | {r.observed:,.4g} | {r.requests:,} |"
        for r in broken[:_SHOWN_HOURS]
    ]
    latest = max(judged, key=lambda r: r.hour) if judged else None
    shown = broken[0] if broken else latest
    metadata = {
        "hours_judged": len({r.hour for r in judged}),
        "hours_not_enough_data": len({r.hour for r in results if r.not_enough_data}),
        "hours_learning": len({r.hour for r in results if r.expected is None}),
        "hours_broken": len({r.hour for r in broken}),
    }
    if latest is not None:
        metadata["latest_hour"] = period_in_words(latest.hour)
    first_failure = None
    if broken:
        first = broken[0]
        first_failure = (
            f"{period_in_words(first.hour)} ({first.route}): "
            f"expected at most {first.expected:,.4g}, observed {first.observed:,.4g}"
        )
        metadata["broken_hours"] = dg.MetadataValue.md("\n".join(lines))
    return check_result(
        GUARD_CHECK_NAMES[guard],
        dg.AssetKey([model.name, "ops_stats"]),
        passed=not broken,
        severity=dg.AssetCheckSeverity.ERROR if model.ops.severity == "page" else dg.AssetCheckSeverity.WARN,
        expected=shown.expected if shown else next((r.expected for r in results if r.expected is not None), None),
        observed=float(shown.observed) if shown else None,
        first_failure=first_failure,
        failing_periods=[period_in_words(r.hour) for r in broken],
        description=f"Passed: {metadata['hours_judged']} hour(s) judged, none past its limit."
        if latest is not None
        else "Passed: no hour had enough requests to judge.",
        metadata=metadata,
    )


def build_ops_guard_checks(model: ModelSpec) -> list[dg.AssetChecksDefinition]:
    guards = configured_guards(model)
    if not guards:
        return []
    asset = dg.AssetKey([model.name, "ops_stats"])

    @dg.multi_asset_check(
        name=f"{model.name}__ops_guards",
        specs=[
            check_spec(
                model,
                GUARD_CHECK_NAMES[g],
                asset=asset,
                description=(
                    f"{g} stays within models.{model.name}.ops (per hour; the budget on the projected day's spend)."
                ),
            )
            for g in guards
        ],
        description=f"Hourly operational guards of {model.name}.",
    )
    def ops_guards(context: dg.AssetCheckExecutionContext, lake: LakeResource):
        store = lake.get()
        tag = context.run.tags.get(AS_OF_TAG)
        as_of = pd.Timestamp(tag).to_pydatetime() if tag else None
        results: list[GuardResult] = []
        for key in run_days(context):
            day = checked_day(key)
            stats = read_ops_stats(store, model.name, day, day)
            history_days = max(BUDGET_HISTORY_DAYS, learning_days(model.ops))
            earlier = read_ops_stats(
                store, model.name, day - dt.timedelta(days=history_days), day - dt.timedelta(days=1)
            )
            budget_from = pd.Timestamp(day - dt.timedelta(days=BUDGET_HISTORY_DAYS), tz="UTC")
            history = earlier.filter(pc.greater_equal(earlier["hour"], budget_from))
            results += evaluate_guards(
                stats,
                model.ops,
                hours_to_judge(day, as_of),
                history=history if history.num_rows else None,
                learning_history=earlier if earlier.num_rows else None,
            )

        def judge(keys: list[str]):
            days = {checked_day(key) for key in keys}
            for guard in guards:
                yield _result(model, guard, [r for r in results if r.guard == guard and r.hour.date() in days])

        yield from judged_day_by_day(context, judge)

    return [ops_guards]
