"""The contract as expectation suites: what each landing table's partition must satisfy, as data.

Each expectation names a Great Expectations 1.x expectation class and its arguments, and the
asset check it belongs to. Checks are predicates about a partition: the structural ones
(``*_match_contract``, ``*_have_unique_ids``, ...) are errors that block downstream work; the
distribution ones (null rates, ranges, new values) are warnings unless the registry says
``contract.severity: error``. The GX adapter in ``checks/`` runs them; this module decides them.
"""

import datetime as dt
from dataclasses import dataclass, field

from closedloop.core.bounds import LearnedLimits
from closedloop.core.specs import ContractSpec, ModelSpec
from closedloop.inputs.contract import (
    REQUIRED_LABEL_COLUMNS,
    LearnedColumn,
    LearnedContract,
    pairing_columns,
    required_prediction_columns,
)


@dataclass(frozen=True)
class ContractCheck:
    """One asset check: a predicate about a day's partition of a landing table."""

    name: str
    table: str
    description: str
    structural: bool

    def severity(self, model: ModelSpec) -> str:
        return "error" if self.structural or model.contract.severity == "error" else "warn"


@dataclass(frozen=True)
class Expectation:
    check: str
    type: str
    kwargs: dict = field(default_factory=dict)

    @property
    def column(self) -> str | None:
        return self.kwargs.get("column") or self.kwargs.get("column_A")


CONTRACT_CHECKS = (
    ContractCheck(
        "predictions_match_contract",
        "predictions",
        "Every required column is present; ids, versions, timestamps and scores are present and valid: "
        "score in [0, 1], decision 0 or 1, model_version registered, ts inside the partition's UTC day.",
        structural=True,
    ),
    ContractCheck(
        "predictions_have_unique_ids",
        "predictions",
        "prediction_id is unique within the day and appears in no other day's partition.",
        structural=True,
    ),
    ContractCheck(
        "predictions_quarantine_share_within_limit",
        "predictions",
        "At most contract.max_quarantine_share of the day's rows were quarantined.",
        structural=True,
    ),
    ContractCheck(
        "predictions_landed",
        "predictions",
        "The day has predictions: a day with none had nothing landed for it (or all of it was quarantined), and "
        "every figure of that day is 'no data'.",
        structural=False,
    ),
    ContractCheck(
        "predictions_columns_match_registry",
        "predictions",
        "The log has no columns the registry does not know (an added column is kept, but should be registered).",
        structural=False,
    ),
    ContractCheck(
        "predictions_null_rates_within_ceilings",
        "predictions",
        "Each feature's and segment's null rate stays under its baseline rate plus contract.null_rate_margin, or "
        "contract.null_rate_sd standard deviations of the baseline days' own rates, whichever is wider.",
        structural=False,
    ),
    ContractCheck(
        "predictions_values_within_baseline_ranges",
        "predictions",
        "Numeric features stay within the baseline's range widened by contract.range_margin.",
        structural=False,
    ),
    ContractCheck(
        "predictions_categories_mostly_known",
        "predictions",
        "At most contract.new_value_share of a categorical column's values were never seen in the baseline.",
        structural=False,
    ),
    # Shadow scores pair with the served rows, whose inputs the predictions checks already watch.
    ContractCheck(
        "shadow_match_contract",
        "shadow",
        "Every required column is present, the request key included; ids, versions, timestamps and scores are "
        "present and valid, as for predictions.",
        structural=True,
    ),
    ContractCheck(
        "shadow_have_unique_ids",
        "shadow",
        "prediction_id is unique within the day's shadow scores.",
        structural=True,
    ),
    ContractCheck(
        "shadow_quarantine_share_within_limit",
        "shadow",
        "At most contract.max_quarantine_share of the day's shadow rows were quarantined.",
        structural=True,
    ),
    ContractCheck(
        "labels_match_contract",
        "labels",
        "Every label row has a prediction_id, a label of 0 or 1 and a label_ts inside the arrival day.",
        structural=True,
    ),
    ContractCheck(
        "labels_have_unique_ids",
        "labels",
        "At most one label per prediction_id arrives in a day.",
        structural=True,
    ),
    ContractCheck(
        "labels_arrive_after_their_predictions",
        "labels",
        "No label is timestamped before the prediction it labels.",
        structural=True,
    ),
    ContractCheck(
        "labels_quarantine_share_within_limit",
        "labels",
        "At most contract.max_quarantine_share of the day's label rows were quarantined.",
        structural=True,
    ),
    ContractCheck(
        "labels_reference_known_predictions",
        "labels",
        "At most contract.max_unknown_label_share of the day's labels refer to predictions not in the lake yet.",
        structural=False,
    ),
)


def checks_for(table: str) -> tuple[ContractCheck, ...]:
    return tuple(check for check in CONTRACT_CHECKS if check.table == table)


# The day's UTC bounds are suite parameters, so one suite serves every day (GX builds it once per run).
DAY_START, DAY_END = {"$PARAMETER": "day_start"}, {"$PARAMETER": "day_end"}


def day_parameters(day: dt.date) -> dict[str, dt.datetime]:
    """The values of ``DAY_START`` and ``DAY_END`` for ``day``."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return {"day_start": start, "day_end": start + dt.timedelta(days=1)}


def prediction_expectations(
    model: ModelSpec, day: dt.date, learned: LearnedContract | None, table: str = "predictions"
) -> list[Expectation]:
    """The suite for one day of ``predictions`` or ``shadow``; learned bounds apply after the baseline window."""
    structural = f"{table}_match_contract"
    suite = [
        Expectation(
            structural,
            "ExpectTableColumnsToMatchSet",
            {"column_set": list(required_prediction_columns(model)), "exact_match": False},
        )
    ]
    suite += [
        Expectation(structural, "ExpectColumnValuesToNotBeNull", {"column": c})
        for c in ("prediction_id", "model_version", "ts", "score", "decision") + pairing_columns(model)
    ]
    suite += [
        Expectation(
            structural, "ExpectColumnValuesToBeBetween", {"column": "score", "min_value": 0.0, "max_value": 1.0}
        ),
        Expectation(structural, "ExpectColumnValuesToBeInSet", {"column": "decision", "value_set": [0, 1]}),
        Expectation(
            structural, "ExpectColumnValuesToBeInSet", {"column": "model_version", "value_set": sorted(model.versions)}
        ),
        Expectation(
            structural,
            "ExpectColumnValuesToBeBetween",
            {"column": "ts", "min_value": DAY_START, "max_value": DAY_END, "strict_max": True},
        ),
        Expectation(f"{table}_have_unique_ids", "ExpectColumnValuesToBeUnique", {"column": "prediction_id"}),
    ]
    if table == "predictions":  # shadow scores come only while a version is in shadow
        suite.append(Expectation("predictions_landed", "ExpectTableRowCountToBeBetween", {"min_value": 1}))
    if learned is None or day <= learned.end:
        return suite
    contract = model.contract
    for column in learned.columns.values():
        override = contract.columns.get(column.name)
        ceiling = _override(override, "max_null_rate", null_rate_ceiling(column, contract))
        suite.append(
            Expectation(
                "predictions_null_rates_within_ceilings",
                "ExpectColumnValuesToNotBeNull",
                {"column": column.name, "mostly": round(1.0 - ceiling, 6)},
            )
        )
        if column.kind == "numeric" and column.minimum is not None and column.maximum is not None:
            spread = (column.maximum - column.minimum) * _override(override, "range_margin", contract.range_margin)
            suite.append(
                Expectation(
                    "predictions_values_within_baseline_ranges",
                    "ExpectColumnValuesToBeBetween",
                    {
                        "column": column.name,
                        "min_value": column.minimum - spread,
                        "max_value": column.maximum + spread,
                        "mostly": round(1.0 - contract.out_of_range_share, 6),
                    },
                )
            )
        if column.kind == "categorical" and column.values:
            tolerated = column.outside_share + _override(override, "new_value_share", contract.new_value_share)
            suite.append(
                Expectation(
                    "predictions_categories_mostly_known",
                    "ExpectColumnValuesToBeInSet",
                    {
                        "column": column.name,
                        "value_set": list(column.values),
                        "mostly": round(max(0.0, 1.0 - tolerated), 6),
                    },
                )
            )
    return suite


def null_rate_ceiling(column: LearnedColumn, contract: ContractSpec) -> float:
    """The baseline rate plus the margin, or the baseline days' own variation when it is wider (NannyML-style
    mean + k sd), so a column that is 10% empty one day and 40% the next is not a warning every other day."""
    ceiling = column.null_rate + contract.null_rate_margin
    learned = LearnedLimits(method="sd", k=contract.null_rate_sd, side="upper").bound(list(column.daily_null_rates))
    if learned is not None and isinstance(learned.error, float):
        ceiling = max(ceiling, learned.error)
    return min(1.0, ceiling)


def _override(override, name: str, default: float) -> float:
    value = getattr(override, name) if override is not None else None
    return default if value is None else value


def label_expectations(model: ModelSpec) -> list[Expectation]:
    """The suite for a day of ``labels`` (by arrival date)."""
    structural = "labels_match_contract"
    suite = [
        Expectation(
            structural,
            "ExpectTableColumnsToMatchSet",
            {"column_set": list(REQUIRED_LABEL_COLUMNS), "exact_match": False},
        )
    ]
    suite += [Expectation(structural, "ExpectColumnValuesToNotBeNull", {"column": c}) for c in REQUIRED_LABEL_COLUMNS]
    suite += [
        Expectation(structural, "ExpectColumnValuesToBeInSet", {"column": "label", "value_set": [0, 1]}),
        Expectation(
            structural,
            "ExpectColumnValuesToBeBetween",
            {"column": "label_ts", "min_value": DAY_START, "max_value": DAY_END, "strict_max": True},
        ),
        Expectation("labels_have_unique_ids", "ExpectColumnValuesToBeUnique", {"column": "prediction_id"}),
        Expectation(
            "labels_arrive_after_their_predictions",
            "ExpectColumnPairValuesAToBeGreaterThanB",
            {
                "column_A": "label_ts",
                "column_B": "prediction_ts",
                "or_equal": True,
                "ignore_row_if": "either_value_is_missing",
            },
        ),
        Expectation(
            "labels_reference_known_predictions",
            "ExpectColumnValuesToNotBeNull",
            {"column": "model_version", "mostly": round(1.0 - model.contract.max_unknown_label_share, 6)},
        ),
    ]
    return suite
