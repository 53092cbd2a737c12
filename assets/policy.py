"""What every asset of a model shares: key prefix, group, owners, tags, partitions, backfill policy."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import dagster as dg

from closedloop.core.lake import Lake
from closedloop.core.specs import ModelSpec
from closedloop.inputs.ingest import IngestResult
from wiring.day_records import record_day
from wiring.partitions import daily_partitions, run_days
from wiring.progress import log_day


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
    """Ingest every day of the run (one day, or a whole backfill range) and report it, each day on its own page.

    Each day is written whole before the next is read, so a day that fails leaves the days before
    it ingested: the step's failure carries their figures (``days_ingested``), which the run's
    summary reports as measured rather than guessed from the lake.
    """
    results: list[IngestResult] = []
    days = run_days(context)
    for position, day in enumerate(days, 1):
        try:
            result = ingest(lake, model, day)
        except Exception as exc:
            raise dg.Failure(
                description=str(exc),
                metadata={
                    "failed_day": str(day),
                    "days_ingested": dg.MetadataValue.json([{"day": str(r.day), **ingest_figures(r)} for r in results]),
                },
            ) from exc
        log_day(context, position, len(days), result.describe(), notable=result.quarantined > 0)
        record_day(context, day, ingest_day_metadata(lake, result))
        results.append(result)
    metadata = ingest_metadata(results)
    stray = lake.misnamed_landing(model.name, results[0].table) if results else []
    if stray:
        context.log.warning(
            f"{model.name}: {len(stray)} entr{'y' if len(stray) == 1 else 'ies'} in the landing zone no day reads "
            f"(a day is a folder date=YYYY-MM-DD): {', '.join(str(p) for p in stray[:5])}"
        )
        metadata["landing_not_read"] = dg.MetadataValue.json([str(p) for p in stray])
    return dg.MaterializeResult(metadata=metadata)


def ingest_day_metadata(lake: Lake, result: IngestResult) -> dict[str, Any]:
    """One day of an ingest: what landed, what was kept, what was quarantined and why, and where it is."""
    return {
        **ingest_figures(result),
        "partition_file": dg.MetadataValue.path(str(lake.partition_path(result.model, result.table, result.day))),
    }


def ingest_figures(result: IngestResult) -> dict[str, Any]:
    """The counts of one day's ingest under the names its metadata uses (read back by the run's summary)."""
    return {
        "landing_rows": result.landing_rows,
        "accepted_rows": result.accepted,
        "quarantined_rows": result.quarantined,
        "duplicates_dropped": result.duplicates_dropped,
        "quarantine_reasons": result.quarantine_reasons,
        "labels_for_unknown_predictions": result.unknown_predictions,
    }


def ingest_metadata(results: list[IngestResult]) -> dict[str, Any]:
    """Run metadata for an ingest: the range it covers and one line per day (each day's own figures are its own)."""
    lines = ["| day | landed | accepted | quarantined | duplicates |", "|---|---:|---:|---:|---:|"]
    lines += [
        f"| {r.day} | {r.landing_rows} | {r.accepted} | {r.quarantined} | {r.duplicates_dropped} |" for r in results
    ]
    days = [r.day for r in results]
    return {"run_range": f"{min(days)}..{max(days)}", "per_day": dg.MetadataValue.md("\n".join(lines))}
