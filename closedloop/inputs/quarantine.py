"""How much of each landed partition was quarantined, read back from the lake."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from closedloop.core.lake import LANDING_TABLES, Lake
from closedloop.core.names import checked_day
from closedloop.core.sql import connect, query


@dataclass(frozen=True)
class QuarantineShare:
    day: dt.date
    accepted: int
    quarantined: int

    @property
    def share(self) -> float:
        total = self.accepted + self.quarantined
        return self.quarantined / total if total else 0.0


def quarantine_shares(lake: Lake, model: str, table: str, days: list[str]) -> list[QuarantineShare]:
    """Accepted and quarantined row counts per day (exact duplicates are neither)."""
    shares = []
    for key in days:
        day = checked_day(key)
        shares.append(
            QuarantineShare(
                day=day,
                accepted=lake.row_count(lake.partition_path(model, table, day)),
                quarantined=lake.row_count(lake.quarantine_path(model, table, day)),
            )
        )
    return shares


def quarantine_counts(lake: Lake, model: str, day: dt.date | None = None) -> list[dict]:
    """Quarantined rows by table, day and reason (every day, or one)."""
    files = [
        str(path)
        for table in LANDING_TABLES
        for path in ([lake.quarantine_path(model, table, day)] if day else lake.quarantine_files(model, table))
        if path.exists()
    ]
    if not files:
        return []
    with connect() as con:
        con.register("quarantine", con.read_parquet(files, hive_partitioning=True))
        rows = con.sql(query(__package__, "quarantine_counts")).fetchall()
    return [{"table": t, "date": d.isoformat(), "reason": r, "rows": n} for t, d, r, n in rows]
