"""A run's log shows its progress through the days without a line per day of every step.

Each log line is an event in the Dagster instance (a write to its storage), so a year's backfill
that logged every day of every step would write thousands of them. A step logs its first and
last day and about every tenth of the way, plus any day with something a reader must see; every
day's own figures are in that day's metadata either way (``wiring.day_records``).
"""

from __future__ import annotations

import math

import dagster as dg

PROGRESS_LINES = 10


def log_day(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
    position: int,
    total: int,
    message: str,
    *,
    notable: bool = False,
) -> None:
    """Log the ``position``-th of ``total`` days (1-based) when it marks progress, or always when ``notable``."""
    every = math.ceil(total / PROGRESS_LINES)
    if notable:
        context.log.warning(message)
    elif position in (1, total) or position % every == 0:
        context.log.info(f"{message} (day {position} of {total})")
