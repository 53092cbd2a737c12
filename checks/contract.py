"""Contract checks on each model's ``predictions`` and ``labels``: GX suites plus lake-wide facts.

One multi-asset check per landing table validates every day of the run with the suite that
``closedloop.inputs.expectations`` derives from the registry and the baseline window, stores GX's
full result beside the partition (``<lake>/<model>/validations/<table>/<day>.json``) and
reports one result per predicate. Structural predicates are ERROR and block downstream
assets; distribution predicates are WARN unless the registry sets ``contract.severity: error``.
In a range run each predicate covers the whole range: its metadata lists the failing days.
"""

import datetime as dt
import json
from collections import defaultdict

import dagster as dg

from closedloop.inputs.gx_adapter import Outcome, validate
from closedloop.inputs.contract import learn_contract, repeated_prediction_ids, unregistered_columns
from closedloop.inputs.expectations import checks_for, label_expectations, prediction_expectations
from closedloop.core.lake import Lake
from closedloop.core.names import checked_day
from closedloop.inputs.quarantine import quarantine_shares
from closedloop.core.specs import ModelSpec
from wiring.partitions import run_days
from wiring.resources import LakeResource

_SEVERITY = {"error": dg.AssetCheckSeverity.ERROR, "warn": dg.AssetCheckSeverity.WARN}


def _lake_outcomes(lake: Lake, model: ModelSpec, table: str, days: list[dt.date], columns: dict) -> dict:
    """Per day, the verdicts that need the lake rather than one partition."""
    outcomes: dict[dt.date, list[Outcome]] = defaultdict(list)
    limit = model.contract.max_quarantine_share
    for share in quarantine_shares(lake, model.name, table, [d.isoformat() for d in days]):
        outcomes[share.day].append(
            Outcome(
                f"{table}_quarantine_share_within_limit",
                "quarantine share",
                None,
                share.share <= limit,
                {"max_share": limit},
                {"share": round(share.share, 6), "quarantined": share.quarantined, "accepted": share.accepted},
            )
        )
    if table == "predictions":
        for day, repeated in repeated_prediction_ids(lake, model, days).items():
            outcomes[day].append(
                Outcome("predictions_have_unique_ids", "ids unique across days", "prediction_id", repeated == 0, {"repeated": 0}, {"repeated": repeated})
            )
        for day in days:
            extra = unregistered_columns(model, columns[day])
            outcomes[day].append(
                Outcome(
                    "predictions_columns_match_registry",
                    "no unregistered columns",
                    None,
                    not extra,
                    {"columns": "only those in the registry"},
                    {"unregistered": extra, "hint": f"declare them under models.{model.name}.features or drop them from the log"}
                    if extra
                    else {"unregistered": []},
                )
            )
    return outcomes


def _result(model: ModelSpec, check, table: str, by_day: dict[dt.date, list[Outcome]]) -> dg.AssetCheckResult:
    failures = [(day, o) for day, outcomes in sorted(by_day.items()) for o in outcomes if not o.success]
    last_day = max(by_day)
    lines = ["| day | column | expectation | expected | observed |", "|---|---|---|---|---|"]
    lines += [
        f"| {day} | {o.column or ''} | {o.expectation} | {json.dumps(o.expected, default=str)} | {json.dumps(o.observed, default=str)} |"
        for day, o in (failures or [(last_day, o) for o in by_day[last_day]])
    ]
    failing_columns = sorted({o.column for _, o in failures if o.column})
    summary = {}
    if failures:
        day, first = failures[0]
        where = f"{day} ({first.column})" if first.column else str(day)
        summary["first_failure"] = (
            f"{where}: expected {json.dumps(first.expected, default=str)}, observed {json.dumps(first.observed, default=str)}"
        )
    return dg.AssetCheckResult(
        check_name=check.name,
        asset_key=dg.AssetKey([model.name, table]),
        passed=not failures,
        severity=_SEVERITY[check.severity(model)],
        description=check.description,
        metadata={
            "days_checked": len(by_day),
            "failing_days": dg.MetadataValue.json(sorted({str(day) for day, _ in failures})),
            "failing_columns": dg.MetadataValue.json(failing_columns),
            "expectations": len(by_day[last_day]),
            ("failures" if failures else f"results_{last_day}"): dg.MetadataValue.md("\n".join(lines)),
            **summary,
        },
    )


def _contract_check(model: ModelSpec, table: str) -> dg.AssetChecksDefinition:
    checks = checks_for(table)
    asset = dg.AssetKey([model.name, table])

    @dg.multi_asset_check(
        name=f"{model.name}__{table}_contract",
        specs=[dg.AssetCheckSpec(c.name, asset=asset, description=c.description, blocking=True) for c in checks],
        description=f"The input contract of {model.name}/{table}, validated with Great Expectations.",
    )
    def contract(context: dg.AssetCheckExecutionContext, lake: LakeResource):
        store = lake.get()
        days = [checked_day(key) for key in run_days(context)]
        learned = learn_contract(store, model) if table == "predictions" else None
        by_check: dict[str, dict[dt.date, list[Outcome]]] = {c.name: defaultdict(list) for c in checks}
        columns = {}
        for day in days:
            frame = store.read_partition(model.name, table, day).to_pandas()
            columns[day] = list(frame.columns)
            suite = prediction_expectations(model, day, learned) if table == "predictions" else label_expectations(model, day)
            outcomes, full = validate(frame, suite)
            store.write_file(
                store.document_path(model.name, "validations", f"{table}/{day.isoformat()}"),
                json.dumps(full, default=str, indent=1).encode(),
            )
            for outcome in outcomes:
                by_check[outcome.check][day].append(outcome)
            failed = sum(not o.success for o in outcomes)
            context.log.info(f"{model.name}/{table} {day}: {len(outcomes)} expectations, {failed} failed")
        for day, outcomes in _lake_outcomes(store, model, table, days, columns).items():
            for outcome in outcomes:
                by_check[outcome.check][day].append(outcome)
        for check in checks:
            found = by_check[check.name]
            for day in days:
                found.setdefault(day, [])
            yield _result(model, check, table, found)

    return contract


def build_contract_checks(model: ModelSpec) -> list[dg.AssetChecksDefinition]:
    return [_contract_check(model, table) for table in ("predictions", "labels")]
