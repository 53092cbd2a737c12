"""Incidents: one per model and SLO from the moment it is breached until it has recovered.

Incidents follow the ``slo_evaluations`` record, never the raw metric: a breached evaluation
opens an incident unless one is already open for that SLO (no alert storms while a breach
lasts), and an ok evaluation (the SLO has recovered for its ``recovery_periods``) closes it.
An incident lives in the ``incidents`` partition of the day it was opened; closing it
rewrites that row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

import pyarrow as pa
import pyarrow.compute as pc

from closedloop.lake import Lake
from closedloop.registry import ModelSpec

INCIDENTS_SCHEMA = pa.schema(
    [
        ("incident_id", pa.string()),
        ("model", pa.string()),
        ("slo", pa.string()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("comparison", pa.string()),
        ("threshold", pa.float64()),
        ("band_low", pa.float64()),
        ("band_high", pa.float64()),
        ("opened", pa.string()),  # the period of the evaluation that opened it
        ("opened_at", pa.timestamp("us", tz="UTC")),
        ("closed", pa.string()),  # the period of the evaluation that closed it
        ("closed_at", pa.timestamp("us", tz="UTC")),
        ("owner", pa.string()),
        ("severity", pa.string()),
        ("action", pa.string()),
        ("action_mode", pa.string()),
        ("state", pa.string()),  # open, closed
        ("day", pa.date32()),  # the day it was opened: its lake partition
    ]
)


def incident_id(model: str, slo: str, opened: str) -> str:
    """A stable id: the same breach always names the same incident, so reprocessing never duplicates it."""
    return f"{model}/{slo}/{opened}"


def update_incidents(
    model: ModelSpec, open_incidents: Iterable[Mapping], evaluations: pa.Table | Iterable[Mapping], now: dt.datetime
) -> list[dict]:
    """The incidents that change with ``evaluations``: newly opened ones, and open ones now closed.

    Evaluations are taken in period order; ``open_incidents`` are the model's incidents open
    before them (``read_incidents(..., state="open")``).
    """
    rows = evaluations.to_pylist() if isinstance(evaluations, pa.Table) else list(evaluations)
    slos = {slo.name: slo for slo in model.slos}
    current = {row["slo"]: dict(row) for row in open_incidents if row["state"] == "open"}
    changed: dict[str, dict] = {}
    for row in sorted(rows, key=lambda r: r["period"]):
        incident = current.get(row["slo"])
        if row["state"] == "breached" and incident is None:
            slo = slos[row["slo"]]
            incident = _opened(model.name, row, slo.action.type, slo.action.mode, now)
        elif row["state"] == "ok" and incident is not None:
            incident = {**incident, "state": "closed", "closed": row["period"], "closed_at": now}
        else:
            continue
        current[row["slo"]] = incident if incident["state"] == "open" else None
        changed[incident["incident_id"]] = incident
    return list(changed.values())


def _opened(model: str, row: Mapping, action: str, mode: str, now: dt.datetime) -> dict:
    return {
        "incident_id": incident_id(model, row["slo"], row["period"]),
        "model": model,
        "slo": row["slo"],
        "metric": row["metric"],
        "value": row["value"],
        "comparison": row["comparison"],
        "threshold": row["threshold"],
        "band_low": row["band_low"],
        "band_high": row["band_high"],
        "opened": row["period"],
        "opened_at": now,
        "closed": None,
        "closed_at": None,
        "owner": row["owner"],
        "severity": row["severity"],
        "action": action,
        "action_mode": mode,
        "state": "open",
        "day": row["day"],
    }


def record_incidents(lake: Lake, model: str, incidents: Iterable[Mapping]) -> list:
    """Write new and changed incidents to the partitions of the days they were opened."""
    table = pa.Table.from_pylist(list(incidents), schema=INCIDENTS_SCHEMA)
    return [
        lake.upsert_partition(model, "incidents", day, table.filter(pc.equal(table["day"], day)), ("incident_id",))
        for day in sorted(set(table["day"].to_pylist()))
    ]


def read_incidents(lake: Lake, model: str, state: str | None = None) -> list[dict]:
    """The model's incidents in the order they were opened, optionally only ``open`` or ``closed`` ones."""
    rows = lake.read_range(model, "incidents", schema=INCIDENTS_SCHEMA).to_pylist()
    return [row for row in sorted(rows, key=lambda r: (r["opened"], r["slo"])) if state is None or row["state"] == state]
