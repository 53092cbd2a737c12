"""What a run did, read back from the landing zone and the lake (for the CLI and the demo)."""

import datetime as dt

import duckdb
import pyarrow.parquet as pq

from closedloop.lake import LANDING_TABLES, Lake


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def ingest_summary(lake: Lake, models: list[str], start: dt.date, end: dt.date) -> dict:
    """Per model and landing table: rows landed, accepted, quarantined (by reason), duplicates.

    Duplicates are what is left of the landed rows after accepted and quarantined ones: exact
    copies are the only rows ingest drops.
    """
    summary: dict = {}
    for model in models:
        summary[model] = {}
        for table in LANDING_TABLES:
            days = _days(start, end)
            landed = sum(pq.ParquetFile(f).metadata.num_rows for d in days for f in lake.landing_files(model, table, d))
            accepted = sum(lake.row_count(lake.partition_path(model, table, d)) for d in days)
            quarantine_files = [str(p) for d in days if (p := lake.quarantine_path(model, table, d)).exists()]
            reasons = {}
            if quarantine_files:
                with duckdb.connect() as con:
                    rows = con.execute(
                        "SELECT reason, count(*) FROM read_parquet($files) GROUP BY reason ORDER BY 2 DESC, 1",
                        {"files": quarantine_files},
                    ).fetchall()
                reasons = dict(rows)
            quarantined = sum(reasons.values())
            summary[model][table] = {
                "landed": landed,
                "accepted": accepted,
                "quarantined": quarantined,
                "duplicates": landed - accepted - quarantined,
                "quarantine_reasons": reasons,
            }
    return summary
