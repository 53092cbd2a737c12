"""Great Expectations 1.x, driven directly: an ephemeral context validating an in-memory batch.

The ``dagster-ge`` integration targets GX below 1.0, so closedloop runs GX itself. GX is
imported here, lazily, because importing it takes seconds and the code location must load fast.
The context writes no files and opens no connections; its progress bars are turned off.
Results are GX's BASIC format: counts, shares and a few unexpected values, which is all a check
reports; the default SUMMARY also tallies every unexpected value and doubles a day's validation.

GX's cost is mostly per expectation and validation (about 6 ms each, whatever the rows), so a
year of small days validated one by one spends minutes building the same metric graphs.
``validate_days`` validates the expectations that judge each row on its own once, on the days
stacked, and gives each day GX's verdict on that day's share of the unexpected rows; those that
judge a day as a whole (ids unique within the day, bounds that are the day's own parameters,
pairs of columns) are validated day by day, with GX's results as they are.
"""

import json
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from closedloop.inputs.expectations import Expectation

_SHOWN_VALUES = 5
_PARTIAL_UNEXPECTED = 20  # GX's default length of partial_unexpected_list
# Expectations whose verdict on a row depends on that row alone: stacked days give each day its own.
ROW_BY_ROW = ("ExpectColumnValuesToNotBeNull", "ExpectColumnValuesToBeBetween", "ExpectColumnValuesToBeInSet")


@dataclass(frozen=True)
class Outcome:
    """One expectation's verdict on one partition, in the words of a check's metadata."""

    check: str
    expectation: str
    column: str | None
    success: bool
    expected: dict[str, Any]
    observed: dict[str, Any]


@cache
def _batch_definition():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    asset = context.data_sources.add_pandas("closedloop").add_dataframe_asset("partition")
    return context, asset.add_batch_definition_whole_dataframe("whole_partition")


def validate(
    frame: pd.DataFrame, expectations: list[Expectation], parameters: dict[str, Any]
) -> tuple[list[Outcome], dict]:
    """Run ``expectations`` with suite ``parameters`` on ``frame``: the outcomes in order, and GX's full result."""
    run, ours = _run(frame, expectations, parameters, "BASIC")
    result = run.to_json_dict()
    by_id = {r["expectation_config"]["id"]: r for r in result["results"]}
    return [_outcome(expectation, by_id[key], parameters) for key, expectation in ours.items()], result


def validate_days(
    frames: Sequence[pd.DataFrame], expectations: list[Expectation], parameters: Sequence[dict[str, Any]]
) -> list[tuple[list[Outcome], dict]]:
    """``validate`` of each frame (days with the same suite and columns), with GX run once for the rows' verdicts.

    A day's document is in GX's shape; the results of the stacked expectations carry that day's
    counts and unexpected values, and ``stacked_days`` says how many days were validated together.
    """
    if len(frames) == 1:
        return [validate(frames[0], expectations, parameters[0])]
    stacked = [i for i, e in enumerate(expectations) if _stackable(e)]
    alone = [e for e in expectations if not _stackable(e)]
    shared = _stacked_results(frames, [expectations[i] for i in stacked])
    out = []
    for day, (frame, day_parameters) in enumerate(zip(frames, parameters, strict=True)):
        own_outcomes, own = validate(_narrowed(frame, alone), alone, day_parameters) if alone else ([], {"results": []})
        outcomes: dict[int, Outcome] = dict(
            zip((i for i in range(len(expectations)) if i not in stacked), own_outcomes, strict=True)
        )
        results = [per_day[day] for per_day in shared]
        for position, result in zip(stacked, results, strict=True):
            outcomes[position] = _outcome(expectations[position], result, day_parameters)
        document = {
            **own,
            "success": all(o.success for o in outcomes.values()),
            "results": own["results"] + results,
            "stacked_days": len(frames),
        }
        out.append(([outcomes[i] for i in range(len(expectations))], document))
    return out


def _stackable(expectation: Expectation) -> bool:
    """Judges each row alone with the same arguments every day (no suite parameters), or is about columns only."""
    fixed = not any(isinstance(v, dict) and "$PARAMETER" in v for v in expectation.kwargs.values())
    return fixed and (expectation.type in ROW_BY_ROW or expectation.type == "ExpectTableColumnsToMatchSet")


def _stacked_results(frames: Sequence[pd.DataFrame], expectations: list[Expectation]) -> list[list[dict]]:
    """Per expectation, each frame's result in GX's shape, from one GX run on the frames stacked.

    The stacked run lists every unexpected row (COMPLETE); a day's count is its rows among them, and
    its verdict is GX's rule for a map expectation: vacuously true without rows to judge, else the
    share of judged rows that met it at least ``mostly``. Not-null judges every row; the others only
    non-null ones. The columns (``ExpectTableColumnsToMatchSet``) are the same for every frame: they
    are judged once, on none of the rows; the rows' verdicts see only the columns they read.
    """
    if not expectations:
        return []
    rows = [e for e in expectations if e.type in ROW_BY_ROW]
    tables = [e for e in expectations if e.type not in ROW_BY_ROW]
    stack = pd.concat([_narrowed(f, rows) for f in frames], ignore_index=True)
    edges = np.cumsum([0] + [len(f) for f in frames])
    found: dict[int, Any] = {}
    for subset, frame, result_format in ((rows, stack, "COMPLETE"), (tables, frames[0].iloc[:0], "BASIC")):
        if subset:
            run, ours = _run(frame, subset, {}, result_format)
            by_id = {r.expectation_config.id: r for r in run.results}
            # ours follows the suite's order, which is the subset's (its Expectations may be an earlier, equal suite's)
            found |= {id(mine): by_id[key] for mine, key in zip(subset, ours, strict=True)}
    results = []
    for expectation in expectations:
        result = found[id(expectation)]
        config = result.expectation_config.to_json_dict()
        exception = dict(result.exception_info or {})
        results.append(
            [
                {"expectation_config": config, "success": success, "result": day, "exception_info": exception}
                for success, day in _per_frame(expectation, result, stack, edges)
            ]
        )
    return results


def _narrowed(frame: pd.DataFrame, expectations: list[Expectation]) -> pd.DataFrame:
    """Only the columns ``expectations`` read: GX filters and hashes the whole frame for every metric."""
    wanted = {e.kwargs[k] for e in expectations for k in ("column", "column_A", "column_B") if k in e.kwargs}
    return frame[[c for c in frame.columns if c in wanted]]


def _per_frame(expectation: Expectation, found, stack: pd.DataFrame, edges: np.ndarray):
    """Each frame's (success, result) of one expectation of the stacked run."""
    frames = len(edges) - 1
    result = found.result or {}
    if expectation.type not in ROW_BY_ROW or found.exception_info.get("raised_exception"):
        shown = {k: v for k, v in result.items() if k in ("observed_value", "details")}
        return [(bool(found.success), shown)] * frames
    # COMPLETE lists every unexpected row's index but only the first 200 values: the values come from the rows.
    unexpected_rows = np.asarray(result.get("unexpected_index_list") or [], dtype=np.int64)
    column = stack[expectation.column]
    owner = np.searchsorted(edges, unexpected_rows, side="right") - 1
    unexpected = np.bincount(owner, minlength=frames)
    elements = np.diff(edges)
    if expectation.type == "ExpectColumnValuesToNotBeNull":
        judged = elements
    else:
        judged = np.diff(np.concatenate([[0], np.cumsum(column.notna().to_numpy())])[edges])
    mostly = expectation.kwargs.get("mostly", 1.0)
    out = []
    for frame in range(frames):
        considered, missed = int(judged[frame]), int(unexpected[frame])
        success = considered == 0 or (considered - missed) / considered >= mostly
        mine = unexpected_rows[np.flatnonzero(owner == frame)[:_PARTIAL_UNEXPECTED]]
        out.append(
            (
                success,
                {
                    "element_count": int(elements[frame]),
                    "unexpected_count": missed,
                    "unexpected_percent": 100.0 * missed / considered if considered else None,
                    "partial_unexpected_list": [_plain(v) for v in column.iloc[mine]],
                },
            )
        )
    return out


def _plain(value: Any) -> Any:
    """A value as GX's JSON results show it: NumPy scalars as Python ones, a missing value as None."""
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _run(frame: pd.DataFrame, expectations: list[Expectation], parameters: dict[str, Any], result_format: str):
    """GX's result of the suite on ``frame``, and our expectations by GX id.

    The batch validates the suite itself: a ``ValidationDefinition`` would also file every result
    in the context's store, serialising it whole (for a stacked run, every unexpected row's index)
    and keeping it for the life of the process.
    """
    suite, ours = _suite(expectations)
    _, batch_definition = _batch_definition()
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    with warnings.catch_warnings():
        # GX's pandas engine reads tz-aware columns through Series.values, which pandas 3 deprecates.
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        return batch.validate(suite, expectation_parameters=parameters, result_format=result_format), ours


_suites: dict[str, tuple[Any, dict[str, Expectation]]] = {}


def _suite(expectations: list[Expectation]) -> tuple[Any, dict[str, Expectation]]:
    """The GX suite of these expectations, built once per process: days whose suites differ only in parameters share it.

    GX may report results in another order than the suite's, so each expectation is kept by its GX id.
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe

    key = json.dumps([(e.check, e.type, e.kwargs) for e in expectations], sort_keys=True, default=str)
    if key not in _suites:
        context, _ = _batch_definition()
        suite = context.suites.add(
            gx.ExpectationSuite(
                name=f"closedloop_{uuid.uuid4().hex}",
                expectations=[getattr(gxe, e.type)(**e.kwargs) for e in expectations],
            )
        )
        ours = {added.id: expectation for added, expectation in zip(suite.expectations, expectations, strict=True)}
        _suites[key] = (suite, ours)
    return _suites[key]


def _outcome(expectation: Expectation, result: dict, parameters: dict[str, Any]) -> Outcome:
    details = result.get("result") or {}
    observed: dict[str, Any] = {}
    if "observed_value" in details:
        observed["observed_value"] = details["observed_value"]
    if "unexpected_count" in details:
        observed["unexpected_count"] = details["unexpected_count"]
        observed["unexpected_percent"] = round(details.get("unexpected_percent") or 0.0, 4)
        shown = [v for v in details.get("partial_unexpected_list") or [] if v is not None][:_SHOWN_VALUES]
        if shown:
            observed["unexpected_examples"] = shown
    if expectation.type == "ExpectColumnToExist" and not result["success"]:
        observed["present"] = False
    exception = result.get("exception_info") or {}
    if exception.get("raised_exception"):
        observed["error"] = exception.get("exception_message")
    expected = {k: _resolved(v, parameters) for k, v in expectation.kwargs.items() if k != "column"}
    if "value_set" in expected and len(expected["value_set"]) > _SHOWN_VALUES:
        expected["value_set"] = f"{len(expected['value_set'])} values learned from the baseline"
    return Outcome(
        check=expectation.check,
        expectation=expectation.type,
        column=expectation.column,
        success=bool(result["success"]),
        expected=expected,
        observed=observed,
    )


def _resolved(value: Any, parameters: dict[str, Any]) -> Any:
    """A suite parameter's value for this validation; any other argument as it is."""
    if isinstance(value, dict) and set(value) == {"$PARAMETER"}:
        return parameters[value["$PARAMETER"]]
    return value
