"""Drift checks on ``<model>/drift``: inputs, score, decision rate, and the inputs taken together.

A check fails with ERROR when any figure of the run's days passed its error limit and with WARN
when one passed only its warn limit; "not enough data" never fails. The day's figures are
judged; the trailing week's only where the day had too few rows. Distances, not p-values,
so a large day does not alert on a trivial shift. Metadata lists the worst drifting figures.
"""

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from closedloop.drift.report import ALL_INPUTS
from closedloop.core.names import checked_day
from closedloop.core.registry import DRIFT_OUTPUT_COLUMNS, ModelSpec
from wiring.partitions import run_days
from wiring.resources import LakeResource

_SHOWN = 15
CHECKS = {
    "features_within_drift_limits": "Every feature and segment stays within its drift limits (day and trailing week).",
    "score_within_drift_limits": "The score distribution of every version stays within its drift limits.",
    "decision_rate_within_drift_limits": "The decision rate of every version stays within its drift limits.",
    "inputs_indistinguishable_from_baseline": "A classifier cannot tell the day's inputs from the baseline's (domain AUC).",
}


def judged_rows(report: pa.Table) -> pa.Table:
    """The day's figures, and the trailing week's where the day alone had too few rows (a small canary).

    A trailing window keeps an incident in view for a week after it ended; judging it every day
    would alert on clean days, so it stands in only where the day cannot speak for itself.
    """
    frame = report.to_pandas()
    day = frame[frame["window"] == "day"]
    thin = day[day["status"] == "not_enough_data"][["day", "column", "version", "metric"]]
    week = frame[frame["window"] != "day"].merge(thin, on=["day", "column", "version", "metric"])
    judged = day[day["status"] != "not_enough_data"]
    return pa.Table.from_pandas(pd.concat([judged, week], ignore_index=True), schema=report.schema, preserve_index=False)


def _rows_of(check: str, report: pa.Table) -> pa.Table:
    column = report.column("column")
    if check == "score_within_drift_limits":
        return report.filter(pc.equal(column, "score"))
    if check == "decision_rate_within_drift_limits":
        return report.filter(pc.equal(column, "decision"))
    if check == "inputs_indistinguishable_from_baseline":
        return report.filter(pc.equal(column, ALL_INPUTS))
    return report.filter(pc.invert(pc.is_in(column, pa.array([*DRIFT_OUTPUT_COLUMNS, ALL_INPUTS]))))


def _result(model: ModelSpec, check: str, rows: pa.Table) -> dg.AssetCheckResult:
    alerts = rows.filter(pc.is_in(rows.column("status"), pa.array(["warn", "error"]))).sort_by(
        [("severity", "descending"), ("day", "ascending")]
    )
    statuses = set(alerts.column("status").to_pylist())
    lines = ["| day | column | version | window | metric | value | limit | status |", "|---|---|---|---|---|---:|---:|---|"]
    lines += [
        f"| {r['day']} | {r['column']} | {r['version']} | {r['window']} | {r['metric']} | {r['value']:.4g} | {r['threshold']:.4g} | {r['status']} |"
        for r in alerts.slice(0, _SHOWN).to_pylist()
    ]
    metadata = {
        "figures_judged": rows.num_rows,
        "not_enough_data": pc.sum(pc.equal(rows.column("status"), "not_enough_data")).as_py() or 0,
        "failing_days": dg.MetadataValue.json(sorted({str(d) for d in alerts.column("day").to_pylist()})),
        "failing_columns": dg.MetadataValue.json(sorted(set(alerts.column("column").to_pylist()))),
    }
    if alerts.num_rows:
        first = alerts.sort_by([("day", "ascending"), ("severity", "descending")]).to_pylist()[0]
        metadata["first_failure"] = (
            f"{first['day']} ({first['column']}, {first['version']}, {first['window']}): "
            f"expected {first['metric']} within {first['threshold']:.4g}, observed {first['value']:.4g}"
        )
        metadata["worst_drift"] = dg.MetadataValue.md("\n".join(lines))
    return dg.AssetCheckResult(
        check_name=check,
        asset_key=dg.AssetKey([model.name, "drift"]),
        passed=not statuses,
        severity=dg.AssetCheckSeverity.ERROR if "error" in statuses else dg.AssetCheckSeverity.WARN,
        metadata=metadata,
    )


def build_drift_checks(model: ModelSpec) -> list[dg.AssetChecksDefinition]:
    asset = dg.AssetKey([model.name, "drift"])

    @dg.multi_asset_check(
        name=f"{model.name}__drift_limits",
        specs=[dg.AssetCheckSpec(name, asset=asset, description=text) for name, text in CHECKS.items()],
        description=f"Drift of {model.name} judged against the registry's drift: limits.",
    )
    def drift_limits(context: dg.AssetCheckExecutionContext, lake: LakeResource):
        store = lake.get()
        reports = [store.read_partition(model.name, "drift", checked_day(key)) for key in run_days(context)]
        report = pa.concat_tables([r for r in reports if r is not None])
        judged = judged_rows(report)
        for check in CHECKS:
            yield _result(model, check, _rows_of(check, judged))

    return [drift_limits]
