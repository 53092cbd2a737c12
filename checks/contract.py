"""Contract checks on each model's ``predictions``, ``labels`` and ``shadow``: GX suites plus lake-wide facts.

One multi-asset check per landing table validates every day of the run with the suite that
``closedloop.inputs.expectations`` derives from the registry and the baseline window (consecutive
days with the same suite in one GX run: ``gx_adapter.validate_days``), stores GX's result beside
the partition (``<lake>/<model>/validations/<table>/<day>.json``) and
reports one result per predicate. Structural predicates are ERROR and block downstream
assets; distribution predicates are WARN unless the registry sets ``contract.severity: error``.
Each day gets its own result per predicate (``wiring.day_records``); in a range run a last one
covers the whole range: its metadata (``checks.results``) has the first failure's expected and
observed values, in words, and the failing days.
"""

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterator

import dagster as dg

from checks.results import check_result
from closedloop.core.lake import Lake
from closedloop.core.names import checked_day
from closedloop.core.specs import ModelSpec
from closedloop.inputs.contract import (
    SCORED_TABLES,
    landing_tables,
    learn_contract,
    repeated_prediction_ids,
    unregistered_columns,
)
from closedloop.inputs.expectations import checks_for, day_parameters, label_expectations, prediction_expectations
from closedloop.inputs.gx_adapter import Outcome, validate_days
from closedloop.inputs.quarantine import quarantine_shares
from wiring.day_records import check_spec, judged_day_by_day
from wiring.partitions import run_days
from wiring.progress import log_day
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
                Outcome(
                    "predictions_have_unique_ids",
                    "ids unique across days",
                    "prediction_id",
                    repeated == 0,
                    {"repeated": 0},
                    {"repeated": repeated},
                )
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
                    {
                        "unregistered": extra,
                        "hint": f"declare them under models.{model.name}.features or drop them from the log",
                    }
                    if extra
                    else {"unregistered": []},
                )
            )
    return outcomes


def _figures(outcome: Outcome) -> tuple:
    """The expected and observed of one verdict: numbers where the predicate has one, else its JSON.

    A GX predicate on a column's values wants at least ``mostly`` of the rows to meet it (all of
    them when it sets none), so what it observed is the share that did; the lake-wide verdicts hold
    their figure under a known key.
    """
    expected, observed = outcome.expected, outcome.observed
    if "unexpected_percent" in observed:
        return expected.get("mostly", 1.0), round(1.0 - observed["unexpected_percent"] / 100.0, 6)
    for wanted, seen in (("max_share", "share"), ("repeated", "repeated")):
        if wanted in expected and seen in observed:
            return expected[wanted], observed[seen]
    return _unwrapped(expected), _unwrapped(observed)


def _unwrapped(figures: dict):
    """A lone number as the number itself; anything else as it is (JSON in the metadata)."""
    if len(figures) == 1:
        [value] = figures.values()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
    return figures


def _result(model: ModelSpec, check, table: str, by_day: dict[dt.date, list[Outcome]]) -> dg.AssetCheckResult:
    failures = [(day, o) for day, outcomes in sorted(by_day.items()) for o in outcomes if not o.success]
    last_day = max(by_day)
    lines = ["| day | column | expectation | expected | observed |", "|---|---|---|---|---|"]
    lines += [
        f"| {day} | {o.column or ''} | {o.expectation} | {json.dumps(o.expected, default=str)} | "
        f"{json.dumps(o.observed, default=str)} |"
        for day, o in (failures or [(last_day, o) for o in by_day[last_day]])
    ]
    failing_columns = sorted({o.column for _, o in failures if o.column})
    first_failure = None
    # Passed: read by the latest day this predicate judged (days in the baseline window judge only structure).
    judged = [day for day, outcomes in sorted(by_day.items()) if outcomes]
    shown = by_day[judged[-1]][0] if judged else None
    if failures:
        day, shown = failures[0]
        where = f"{day} ({shown.column})" if shown.column else str(day)
        wanted, seen = json.dumps(shown.expected, default=str), json.dumps(shown.observed, default=str)
        first_failure = f"{where}: expected {wanted}, observed {seen}"
    expected, observed = _figures(shown) if shown else (None, None)
    return check_result(
        check.name,
        dg.AssetKey([model.name, table]),
        passed=not failures,
        severity=_SEVERITY[check.severity(model)],
        expected=expected,
        observed=observed,
        first_failure=first_failure,
        failing_periods=[str(day) for day, _ in failures],
        description=check.description,
        metadata={
            "days_checked": len(by_day),
            "failing_columns": dg.MetadataValue.json(failing_columns),
            "expectations": len(by_day[last_day]),
            **({"column": shown.column} if shown and shown.column else {}),
            ("failures" if failures else f"results_{last_day}"): dg.MetadataValue.md("\n".join(lines)),
        },
    )


def _spec(model: ModelSpec, asset: dg.AssetKey, check) -> dg.AssetCheckSpec:
    """Only an error blocks (Dagster ignores ``blocking`` for a warning), so only those say they block."""
    blocking = check.severity(model) == "error"
    effect = (
        "Blocking: a failure stops the day's downstream assets."
        if blocking
        else "Warning only: downstream assets still run."
    )
    return check_spec(model, check.name, asset=asset, description=f"{check.description} {effect}", blocking=blocking)


# Days validated together hold at most this many rows, so a range's memory stays that of a big day.
STACK_ROWS = 2_000_000


def _stacks(store: Lake, model: ModelSpec, table: str, days: list[dt.date], learned) -> Iterator[list[tuple]]:
    """The run's days as (day, frame, suite), in runs of consecutive days GX can validate together.

    Days go together while their suites and columns are the same and their rows fit ``STACK_ROWS``.
    """
    stack: list[tuple] = []
    rows = 0
    for day in days:
        frame = store.read_partition(model.name, table, day).to_pandas()
        suite = (
            prediction_expectations(model, day, learned, table) if table in SCORED_TABLES else label_expectations(model)
        )
        if stack and (
            suite != stack[-1][2] or list(frame.columns) != list(stack[-1][1].columns) or rows + len(frame) > STACK_ROWS
        ):
            yield stack
            stack, rows = [], 0
        stack.append((day, frame, suite))
        rows += len(frame)
    if stack:
        yield stack


def _contract_check(model: ModelSpec, table: str) -> dg.AssetChecksDefinition:
    checks = checks_for(table)
    asset = dg.AssetKey([model.name, table])

    @dg.multi_asset_check(
        name=f"{model.name}__{table}_contract",
        specs=[_spec(model, asset, c) for c in checks],
        description=f"The input contract of {model.name}/{table}, validated with Great Expectations.",
    )
    def contract(context: dg.AssetCheckExecutionContext, lake: LakeResource):
        store = lake.get()
        days = [checked_day(key) for key in run_days(context)]
        learned = learn_contract(store, model) if table == "predictions" else None
        by_check: dict[str, dict[dt.date, list[Outcome]]] = {c.name: defaultdict(list) for c in checks}
        columns = {}
        position = 0
        for stack in _stacks(store, model, table, days, learned):
            frames = [frame for _, frame, _ in stack]
            validated = validate_days(frames, stack[0][2], [day_parameters(day) for day, _, _ in stack])
            for (day, frame, _), (outcomes, full) in zip(stack, validated, strict=True):
                position += 1
                columns[day] = list(frame.columns)
                store.write_file(
                    store.document_path(model.name, "validations", f"{table}/{day.isoformat()}"),
                    json.dumps(full, default=str, indent=1).encode(),
                )
                for outcome in outcomes:
                    by_check[outcome.check][day].append(outcome)
                failed = sum(not o.success for o in outcomes)
                log_day(
                    context,
                    position,
                    len(days),
                    f"{model.name}/{table} {day}: {len(outcomes)} expectations, {failed} failed",
                    notable=failed > 0,
                )
        for day, outcomes in _lake_outcomes(store, model, table, days, columns).items():
            for outcome in outcomes:
                by_check[outcome.check][day].append(outcome)
        for found in by_check.values():
            for day in days:
                found.setdefault(day, [])

        def judge(keys: list[str]):
            judged = {checked_day(key) for key in keys}
            for check in checks:
                yield _result(model, check, table, {d: o for d, o in by_check[check.name].items() if d in judged})

        yield from judged_day_by_day(context, judge)

    return contract


def build_contract_checks(model: ModelSpec) -> list[dg.AssetChecksDefinition]:
    return [_contract_check(model, table) for table in landing_tables(model)]
