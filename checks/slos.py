"""SLO checks on the assets that produce each SLO's metric: judged per period, recorded in the lake.

An SLO on ``rolling_eval.roc_auc[7d]`` is a check on ``rolling_eval``, one on ``ops.latency_p95_ms``
a check on ``ops_stats``, one on a business SQL metric a check on ``predictions``, and so on, so
the UI shows each SLO beside the numbers it is about. Each check judges the run's days (and, for
hourly SLOs, their hours; an hourly run only the hour that just ended), records every evaluation
in ``<lake>/<model>/slo_evaluations`` (the record the incident sensor and ``closedloop status``
read) and fails, with the SLO's severity, when the SLO was breached in the run. SLO checks
never block: a broken SLO is an incident, not a reason to stop computing the numbers.
"""

import datetime as dt

import dagster as dg
import pandas as pd

from checks.results import check_result
from closedloop.control.metric_catalog import metric_table
from closedloop.control.slo import record_evaluations
from closedloop.control.slo_evaluation import evaluate_periods
from closedloop.core.names import checked_day
from closedloop.core.periods import hours_to_judge, period_in_words, period_start
from closedloop.core.specs import ModelSpec, SLOSpec
from wiring.day_records import check_spec, judged_day_by_day
from wiring.partitions import run_days
from wiring.resources import LakeResource
from wiring.tags import AS_OF_TAG

_SEVERITY = {"page": dg.AssetCheckSeverity.ERROR, "warn": dg.AssetCheckSeverity.WARN}


def _result(model: ModelSpec, slo: SLOSpec, asset: dg.AssetKey, rows: list[dict]) -> dg.AssetCheckResult:
    mine = [r for r in rows if r["slo"] == slo.name]
    breached = [r for r in mine if r["state"] == "breached"]
    judged = [r for r in mine if r["value"] is not None]
    periods = lambda rows: sorted({r["period"] for r in rows}, key=period_start)  # noqa: E731
    metadata = {
        "bound": slo.describe_bound(),
        "periods_judged": len(periods(judged)),
        "periods_breached": len(periods(breached)),
    }
    latest = judged[-1] if judged else None
    if latest is not None:
        metadata.update({"latest_period": period_in_words(latest["period"]), "state": latest["state"]})
    if any(r["subject"] for r in breached):
        metadata["subjects_breached"] = dg.MetadataValue.json(sorted({r["subject"] for r in breached if r["subject"]}))
    first_failure = None
    if breached:
        # A run that starts inside a breach may open on a period without data: the first with a value says more.
        first = next((r for r in breached if r["value"] is not None), breached[0])
        whose = first["subject"] or (first["version"] if first["version"] not in ("all", None) else None)
        scope = f" ({whose})" if whose else ""
        seen = "no data" if first["value"] is None else f"{first['value']:.4g}"
        first_failure = (
            f"{period_in_words(first['period'])}: expected {slo.metric}{scope} {slo.describe_bound()}, observed {seen}"
        )
    transitions = [
        f"{period_in_words(r['period'])} {r['transition']}"
        + (f" [{r['subject']}]" if r["subject"] else "")
        + f" ({r['value']:.4g})"
        for r in mine
        if r["transition"]
    ]
    if transitions:
        metadata["transitions"] = dg.MetadataValue.json(transitions)
    shown = first if breached else latest
    return check_result(
        slo.name,
        asset,
        passed=not breached,
        severity=_SEVERITY[slo.severity],
        expected=slo.describe_bound() if slo.band else slo.threshold,
        observed=shown["value"] if shown else None,
        first_failure=first_failure,
        failing_periods=[period_in_words(r["period"]) for r in breached],
        description=f"Passed: not breached in the {len(judged)} period(s) judged ({slo.metric} {slo.describe_bound()})."
        if judged
        else f"Passed: no period had enough data to judge {slo.metric}.",
        metadata=metadata,
    )


def _slo_check(model: ModelSpec, table: str, slos: list[SLOSpec]) -> dg.AssetChecksDefinition:
    asset = dg.AssetKey([model.name, table])

    @dg.multi_asset_check(
        name=f"{model.name}__{table}_slos",
        specs=[
            check_spec(
                model,
                slo.name,
                asset=asset,
                description=f"SLO: {slo.metric}{' of every version' if slo.per_version else ''} {slo.describe_bound()} "
                f"({slo.severity}; breached after {slo.for_periods} bad period(s); runbook: {slo.action.type}, "
                f"{slo.action.mode}). Every evaluation is recorded in slo_evaluations.",
            )
            for slo in slos
        ],
        description=f"The SLOs of {model.name} whose metric comes from {table}.",
    )
    def slo_check(context: dg.AssetCheckExecutionContext, lake: LakeResource):
        store = lake.get()
        tag = context.run.tags.get(AS_OF_TAG)
        as_of = pd.Timestamp(tag).to_pydatetime() if tag else None
        now = dt.datetime.now(dt.UTC)
        # One pass over the run's days and their hours, each state carried from the period before:
        # the lake's earlier evaluations are read once, not once per day of a backfill.
        days = [checked_day(key) for key in run_days(context)]
        periods = [period for day in days for period in (day, *hours_to_judge(day, as_of))]
        evaluations = evaluate_periods(store, model, periods, slos, now)
        if evaluations.num_rows:
            record_evaluations(store, model.name, evaluations)
        rows = evaluations.to_pylist()
        for row in rows:
            if row["transition"]:
                about = f" [{row['subject']}]" if row["subject"] else ""
                context.log.warning(
                    f"{model.name}: {row['slo']}{about} {row['transition']} at {row['period']} ({row['metric']} = "
                    f"{row['value']:.4g})"
                )

        def judge(keys: list[str]):
            days = set(keys)
            for slo in slos:
                yield _result(model, slo, asset, [r for r in rows if r["period"][:10] in days])

        yield from judged_day_by_day(context, judge)

    return slo_check


def build_slo_checks(model: ModelSpec) -> list[dg.AssetChecksDefinition]:
    by_table: dict[str, list[SLOSpec]] = {}
    for slo in model.slos:
        by_table.setdefault(metric_table(model, slo.metric), []).append(slo)
    return [_slo_check(model, table, slos) for table, slos in by_table.items()]
