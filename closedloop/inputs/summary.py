"""What a run did, read back from the landing zone and the lake (for the CLI and the demo)."""

import datetime as dt

import pyarrow.parquet as pq

from closedloop.core.lake import Lake
from closedloop.core.specs import ModelSpec
from closedloop.core.sql import connect
from closedloop.inputs.contract import landing_tables


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def ingest_summary(lake: Lake, models: list[ModelSpec], start: dt.date, end: dt.date) -> dict:
    """Per model and landing table it has: rows landed, accepted, quarantined (by reason), duplicates.

    Only days whose lake partition exists count (a failed run leaves its days out, and says how
    many). Duplicates are what is left of the landed rows after accepted and quarantined ones:
    exact copies are the only rows ingest drops.
    """
    summary: dict = {}
    for spec in models:
        model = spec.name
        summary[model] = {}
        for table in landing_tables(spec):
            days = [d for d in _days(start, end) if lake.partition_path(model, table, d).exists()]
            landed = sum(pq.ParquetFile(f).metadata.num_rows for d in days for f in lake.landing_files(model, table, d))
            accepted = sum(lake.row_count(lake.partition_path(model, table, d)) for d in days)
            quarantine_files = [str(p) for d in days if (p := lake.quarantine_path(model, table, d)).exists()]
            reasons = {}
            if quarantine_files:
                with connect() as con:
                    reasons = dict(
                        con.execute(
                            "SELECT reason, count(*) FROM read_parquet($files) GROUP BY reason ORDER BY 2 DESC, 1",
                            {"files": quarantine_files},
                        ).fetchall()
                    )
            quarantined = sum(reasons.values())
            summary[model][table] = {
                "days_ingested": len(days),
                "days_missing": (end - start).days + 1 - len(days),
                "landed": landed,
                "accepted": accepted,
                "quarantined": quarantined,
                "duplicates": landed - accepted - quarantined,
                "quarantine_reasons": reasons,
            }
    return summary
