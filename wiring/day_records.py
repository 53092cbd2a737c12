"""Each day of a run keeps its own record in the Dagster instance: its numbers and its check results.

A range is one run (single-run backfill), and Dagster files what the step returns under every
partition of the range: one set of metadata for sixty days, and check results that belong to no
day. The UI would then show the range's figures on every day's page and no day's own verdict.
So every asset adds each day's own numbers to that day's materialization (``record_day``, public
API), and every check is partitioned like its asset and, in a range run, also records each day's
own evaluation against that day's materialization (``judged_day_by_day``). Partitioned checks
are a preview in Dagster 1.13 and the per-day evaluation needs its private target type: both are
used here only.
"""

from __future__ import annotations

import datetime as dt
import numbers
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from closedloop.core.specs import ModelSpec
from wiring.partitions import daily_partitions, run_days


def metadata_value(value: Any) -> Any:
    """A number stays a number (int or float, also from NumPy), text stays text, anything else is JSON."""
    if value is None or isinstance(value, (bool, str, dg.MetadataValue)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return dg.MetadataValue.json(value)


def record_day(context: dg.AssetExecutionContext, day: str | dt.date, metadata: Mapping[str, Any]) -> None:
    """Give one day's partition its own metadata, over the run's metadata of the same name.

    Numbers stay numbers, so the UI plots them over the partitions.
    """
    key = day if isinstance(day, str) else day.isoformat()
    context.add_asset_metadata({name: metadata_value(v) for name, v in metadata.items()}, partition_key=key)


def check_spec(
    model: ModelSpec, name: str, *, asset: dg.AssetKey, description: str, blocking: bool = False
) -> dg.AssetCheckSpec:
    """A check partitioned like ``model``'s assets, so the UI shows each day's result (preview in Dagster 1.13)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(
            name, asset=asset, description=description, blocking=blocking, partitions_def=daily_partitions(model)
        )


def judged_day_by_day(
    context: dg.AssetCheckExecutionContext, judge: Callable[[list[str]], Iterable[dg.AssetCheckResult]]
) -> Iterator[dg.AssetCheckEvaluation | dg.AssetCheckResult]:
    """Each day's own evaluations (in a range run), then the run's results.

    ``judge(days)`` gives the results of the checks over ``days``. A one-day run's results are
    that day's, and Dagster files them under it. A range run's results belong to no day, so each
    day is judged alone first and filed against that day's latest materialization (what the UI's
    partition status needs); the range's results come last, for the run's summary.
    """
    days = run_days(context)
    if len(days) > 1:
        blocking = {spec.key: spec.blocking for spec in context.check_specs}
        assets = {key.asset_key for key in blocking}
        targets = {asset: _latest_materializations(context.instance, asset, days) for asset in assets}
        for day in days:
            for result in judge([day]):
                asset_key = result.asset_key
                check_name = result.check_name
                if asset_key is None or check_name is None:
                    raise ValueError(f"a check result judged day by day must name its asset and check: {result}")
                yield dg.AssetCheckEvaluation(
                    asset_key=asset_key,
                    check_name=check_name,
                    passed=result.passed,
                    metadata=result.metadata,
                    severity=result.severity,
                    description=result.description,
                    blocking=blocking[dg.AssetCheckKey(asset_key, check_name)],
                    partition=day,
                    target_materialization_data=targets[asset_key].get(day),
                )
    yield from judge(days)


def _latest_materializations(
    instance: dg.DagsterInstance, asset: dg.AssetKey, days: list[str]
) -> dict[str, AssetCheckEvaluationTargetMaterializationData]:
    """Per day, the asset's latest materialization: the one that day's evaluation judged."""
    found: dict[str, AssetCheckEvaluationTargetMaterializationData] = {}
    cursor = None
    while len(found) < len(days):
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset, asset_partitions=days), limit=len(days), cursor=cursor
        )
        for record in page.records:  # newest first
            if record.partition_key is not None and record.partition_key not in found:
                found[record.partition_key] = AssetCheckEvaluationTargetMaterializationData(
                    run_id=record.run_id, storage_id=record.storage_id, timestamp=record.timestamp
                )
        if not page.has_more:
            break
        cursor = page.cursor
    return found
