"""What every asset of a model shares: key prefix, group, owners, tags, partitions, backfill policy."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import dagster as dg

from closedloop.core.lake import Lake
from closedloop.core.specs import ModelSpec
from closedloop.inputs.ingest import IngestResult
from wiring.partitions import daily_partitions, run_days


def model_asset_args(model: ModelSpec, name: str) -> dict[str, Any]:
    """Keyword arguments for ``@dg.asset`` that put asset ``name`` in ``model``'s graph.

    Backfills run as one run per range: assets loop over the run's partition keys, so 60 days
    cost one run's overhead rather than sixty.
    """
    return {
        "key": dg.AssetKey([model.name, name]),
        "group_name": model.name,
        "owners": [model.owner],
        "tags": {**model.tags, "model": model.name},
        "partitions_def": daily_partitions(model),
        "backfill_policy": dg.BackfillPolicy.single_run(),
    }


def figure_metadata(lake: Lake, model: ModelSpec, name: str, day, png: bytes) -> dg.MetadataValue:
    """Keep a figure in the lake and show it inline in the asset's metadata (Markdown image)."""
    path = lake.write_file(lake.figure_path(model.name, name, day), png)
    encoded = base64.b64encode(png).decode("ascii")
    return dg.MetadataValue.md(f"![{name}](data:image/png;base64,{encoded})\n\n`{path}`")


def ingest_run_days(
    context: dg.AssetExecutionContext,
    lake: Lake,
    model: ModelSpec,
    ingest: Callable[[Lake, ModelSpec, str], IngestResult],
) -> dg.MaterializeResult:
    """Ingest every day of the run (one day, or a whole backfill range) and report it."""
    results = []
    for day in run_days(context):
        result = ingest(lake, model, day)
        context.log.info(result.describe())
        results.append(result)
    return dg.MaterializeResult(metadata=ingest_metadata(results))


def ingest_metadata(results: list[IngestResult]) -> dict[str, Any]:
    """Run metadata for an ingest: totals, quarantine reasons, and one line per day."""
    reasons: dict[str, int] = {}
    for result in results:
        for reason, count in result.quarantine_reasons.items():
            reasons[reason] = reasons.get(reason, 0) + count
    lines = ["| day | landed | accepted | quarantined | duplicates |", "|---|---:|---:|---:|---:|"]
    lines += [
        f"| {r.day} | {r.landing_rows} | {r.accepted} | {r.quarantined} | {r.duplicates_dropped} |" for r in results
    ]
    days = [r.day for r in results]
    return {
        # In a range run Dagster attaches one set of metadata to every partition of the range,
        # so the totals say which range they cover and the per-day table has each day's figures.
        "run_range": f"{min(days)}..{max(days)}",
        "days": len(results),
        "landing_rows": sum(r.landing_rows for r in results),
        "accepted_rows": dg.MetadataValue.int(sum(r.accepted for r in results)),
        "quarantined_rows": sum(r.quarantined for r in results),
        "duplicates_dropped": sum(r.duplicates_dropped for r in results),
        "quarantine_reasons": dg.MetadataValue.json(reasons),
        "per_day": dg.MetadataValue.md("\n".join(lines)),
        "labels_for_unknown_predictions": sum(r.unknown_predictions for r in results),
    }
