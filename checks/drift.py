"""Drift checks on ``<model>/drift``: inputs, score, decision rate, and the inputs taken together.

A check fails with ERROR when any figure of the run's days passed its error limit and with WARN
when one passed only its warn limit; "not enough data" never fails. The day's figures are
judged; the trailing week's only where the day had too few rows. Distances, not p-values,
so a large day does not alert on a trivial shift. Metadata (``checks.results``) has the first
failing figure's limit and value and the failing days, and lists the worst drifting figures.
"""

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from checks.results import check_result
from closedloop.core.names import checked_day
from closedloop.core.specs import ModelSpec
from closedloop.drift.report import figures_of, judged_rows, unjudged_counts
from wiring.day_records import check_spec, judged_day_by_day
from wiring.partitions import run_days
from wiring.resources import LakeResource

_SHOWN = 15
# check name -> (the figures it judges, what it promises)
CHECKS = {
    "features_within_drift_limits": (
        "features",
        "Every feature and segment stays within its drift limits (day and trailing week).",
    ),
    "score_within_drift_limits": ("score", "The score distribution of every version stays within its drift limits."),
    "decision_rate_within_drift_limits": (
        "decision",
        "The decision rate of every version stays within its drift limits.",
    ),
    "inputs_indistinguishable_from_baseline": (
        "inputs_together",
        "A classifier cannot tell the day's inputs from the baseline's (domain AUC).",
    ),
}


def _result(model: ModelSpec, check: str, rows: pa.Table) -> dg.AssetCheckResult:
    alerts = rows.filter(pc.is_in(rows.column("status"), pa.array(["warn", "error"]))).sort_by(
        [("severity", "descending"), ("day", "ascending")]
    )
    statuses = set(alerts.column("status").to_pylist())
    lines = [
        "| day | column | version | window | metric | value | limit | status |",
        "|---|---|---|---|---|---:|---:|---|",
    ]
    lines += [
        f"| {r['day']} | {r['column']} | {r['version']} | {r['window']} | {r['metric']} | {r['value']:.4g} | "
        f"{r['threshold']:.4g} | {r['status']} |"
        for r in alerts.slice(0, _SHOWN).to_pylist()
    ]
    metadata = {
        "figures_judged": rows.num_rows,
        **unjudged_counts(rows),
        "failing_columns": dg.MetadataValue.json(sorted(set(alerts.column("column").to_pylist()))),
    }
    first_failure = None
    if alerts.num_rows:
        shown = alerts.sort_by([("day", "ascending"), ("severity", "descending")]).to_pylist()[0]
        first_failure = (
            f"{shown['day']} ({shown['column']}, {shown['version']}, {shown['window']}): "
            f"expected {shown['metric']} within {shown['threshold']:.4g}, observed {shown['value']:.4g}"
        )
        metadata["worst_drift"] = dg.MetadataValue.md("\n".join(lines))
    else:
        shown = _closest_to_its_limit(rows)
    if shown is not None:
        metadata["figure"] = f"{shown['day']} {shown['column']} {shown['version']} {shown['window']} {shown['metric']}"
    return check_result(
        check,
        dg.AssetKey([model.name, "drift"]),
        passed=not statuses,
        severity=dg.AssetCheckSeverity.ERROR if "error" in statuses else dg.AssetCheckSeverity.WARN,
        expected=shown["threshold"] if shown else None,
        observed=shown["value"] if shown else None,
        first_failure=first_failure,
        failing_periods=[str(d) for d in alerts.column("day").to_pylist()],
        description=f"Passed: {rows.num_rows} figure(s) judged, none past its warn limit.",
        metadata=metadata,
    )


def _closest_to_its_limit(rows: pa.Table) -> dict | None:
    """The latest day's judged figure that came nearest its limit (the one a passing check is read by)."""
    judged = rows.filter(pc.and_(pc.equal(rows.column("status"), "ok"), pc.is_valid(rows.column("severity"))))
    if not judged.num_rows:
        return None
    latest = judged.filter(pc.equal(judged.column("day"), pc.max(judged.column("day"))))
    return latest.sort_by([("severity", "descending")]).to_pylist()[0]


def build_drift_checks(model: ModelSpec) -> list[dg.AssetChecksDefinition]:
    asset = dg.AssetKey([model.name, "drift"])

    @dg.multi_asset_check(
        name=f"{model.name}__drift_limits",
        specs=[check_spec(model, name, asset=asset, description=text) for name, (_, text) in CHECKS.items()],
        description=f"Drift of {model.name} judged against the registry's drift: limits.",
    )
    def drift_limits(context: dg.AssetCheckExecutionContext, lake: LakeResource):
        store = lake.get()
        reports = [store.read_partition(model.name, "drift", checked_day(key)) for key in run_days(context)]
        report = pa.concat_tables([r for r in reports if r is not None])
        judged = judged_rows(report)

        def judge(keys: list[str]):
            days = pa.array([checked_day(key) for key in keys], pa.date32())
            rows = judged.filter(pc.is_in(judged.column("day"), days))
            for check, (figures, _) in CHECKS.items():
                yield _result(model, check, figures_of(rows, figures))

        yield from judged_day_by_day(context, judge)

    return [drift_limits]
