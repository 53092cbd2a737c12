"""How much of each landed partition was quarantined, read back from the lake."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from closedloop.lake import Lake
from closedloop.names import checked_day


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
