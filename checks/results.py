"""One vocabulary for the result of every asset check closedloop emits.

Each result's metadata starts with the same four keys, with the same meaning in every family
(contract, drift, ops guards, SLOs):

- ``expected``: what the check wanted (a number where it is one, else text or JSON), taken from
  the first failure when there is one, else from the latest judged period;
- ``observed``: what it saw, for the same period;
- ``first_failure``: the first failing period in words, or ``"none"`` when nothing failed;
- ``failing_periods``: the failing periods (``YYYY-MM-DD`` days, ``YYYY-MM-DD HH:00`` hours), as JSON.

A failed result's description is that first failure as a sentence, so the check's row in the
Dagster UI says what broke and when. The same function makes each day's result and a range's
(``wiring.day_records.judged_day_by_day`` files the days under their partitions).
"""

from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg

from wiring.day_records import metadata_value

NO_FAILURE = "none"
VOCABULARY = ("expected", "observed", "first_failure", "failing_periods")


def check_result(
    check_name: str,
    asset_key: dg.AssetKey,
    *,
    passed: bool,
    severity: dg.AssetCheckSeverity,
    expected: Any,
    observed: Any,
    first_failure: str | None,
    failing_periods: Iterable[str],
    description: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> dg.AssetCheckResult:
    """The ``AssetCheckResult`` of one check, its metadata in the shared vocabulary.

    ``first_failure`` is given exactly when the check failed, and so is at least one failing
    period. ``description`` is the passing result's description; a failed result's is its first
    failure. ``metadata`` adds what is particular to the family (tables, counts), after the four keys.
    """
    periods = sorted(set(failing_periods))
    if passed != (first_failure is None) or passed != (not periods):
        raise ValueError(
            f"{check_name}: a check fails exactly when it has a first failure and failing periods "
            f"(passed={passed}, first_failure={first_failure!r}, failing_periods={periods})"
        )
    extra = dict(metadata or {})
    clash = set(extra) & set(VOCABULARY)
    if clash:
        raise ValueError(f"{check_name}: extra metadata may not set {sorted(clash)}; pass them as arguments")
    if not passed:
        more = f" ({len(periods)} failing periods in all)" if len(periods) > 1 else ""
        description = f"Failed on {first_failure}{more}."
    return dg.AssetCheckResult(
        check_name=check_name,
        asset_key=asset_key,
        passed=passed,
        severity=severity,
        description=description,
        metadata={
            "expected": metadata_value(expected),
            "observed": metadata_value(observed),
            "first_failure": NO_FAILURE if first_failure is None else first_failure,
            "failing_periods": dg.MetadataValue.json(periods),
            **extra,
        },
    )
