"""Great Expectations 1.x, driven directly: an ephemeral context validating an in-memory batch.

The ``dagster-ge`` integration targets GX below 1.0, so closedloop runs GX itself. GX is
imported here, lazily, because importing it takes seconds and the code location must load fast.
The context writes no files and opens no connections; its progress bars are turned off.
Results are GX's BASIC format: counts, shares and a few unexpected values, which is all a check
reports; the default SUMMARY also tallies every unexpected value and doubles a day's validation.
"""

import json
import uuid
import warnings
from dataclasses import dataclass
from functools import cache
from typing import Any

import pandas as pd

from closedloop.inputs.expectations import Expectation

_SHOWN_VALUES = 5


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
    validation, ours = _validation(expectations)
    with warnings.catch_warnings():
        # GX's pandas engine reads tz-aware columns through Series.values, which pandas 3 deprecates.
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        result = validation.run(
            batch_parameters={"dataframe": frame}, expectation_parameters=parameters, result_format="BASIC"
        ).to_json_dict()
    by_id = {r["expectation_config"]["id"]: r for r in result["results"]}
    return [_outcome(expectation, by_id[key], parameters) for key, expectation in ours.items()], result


_validations: dict[str, tuple[Any, dict[str, Expectation]]] = {}


def _validation(expectations: list[Expectation]) -> tuple[Any, dict[str, Expectation]]:
    """The validation of this suite, built once per process: days whose suites differ only in parameters share it.

    GX may report results in another order than the suite's, so each expectation is kept by its GX id.
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe

    key = json.dumps([(e.check, e.type, e.kwargs) for e in expectations], sort_keys=True, default=str)
    if key not in _validations:
        context, batch_definition = _batch_definition()
        name = f"closedloop_{uuid.uuid4().hex}"
        suite = context.suites.add(
            gx.ExpectationSuite(name=name, expectations=[getattr(gxe, e.type)(**e.kwargs) for e in expectations])
        )
        ours = {added.id: expectation for added, expectation in zip(suite.expectations, expectations, strict=True)}
        _validations[key] = (gx.ValidationDefinition(name=name, data=batch_definition, suite=suite), ours)
    return _validations[key]


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
