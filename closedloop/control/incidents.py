"""Incidents: one per model, SLO and subject from the moment it is breached until it has recovered.

Incidents follow the ``slo_evaluations`` record, never the raw metric: the evaluation where a
subject's state turns breached (transition ``breached``) opens an incident named after the SLO,
the subject (a version, an input column; none for a pooled SLO) and that period, and the one
where it turns ok again (``recovered``) closes it. While a breach lasts the state stays breached
and nothing new opens for that subject (no alert storms); another subject breaking the same SLO
meanwhile opens its own incident, so the second fault is told too. Handling a transition is
idempotent, so a re-evaluated day, a sensor restart or a re-run never opens or closes an
incident twice; a re-run does finish what an earlier run left undone (the action, or a message
the webhook did not take, which the incident keeps as ``undelivered`` until it is delivered).
An incident lives in the ``incidents`` partition of the day it was opened; closing it, carrying
out its action and notifying its owner rewrite that row.

Every read-then-write of an incident (open or close it, take its action, tell its owner,
acknowledge it) holds the model's ``incidents`` lock in the lake from the read to the write, so
runs handling the same transition at once (two backfills, a rerun, the daemon beside the command
line) open it once, act once and tell once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from closedloop.control.slo import BREACHED, RECOVERED, SLO_EVALUATIONS_SCHEMA
from closedloop.core.lake import Lake, conformed
from closedloop.core.periods import period_start
from closedloop.core.specs import ModelSpec

INCIDENTS_SCHEMA = pa.schema(
    [
        ("incident_id", pa.string()),
        ("model", pa.string()),
        ("slo", pa.string()),
        ("subject", pa.string()),  # who breached: a version, an input column (null for a pooled SLO)
        ("metric", pa.string()),
        ("version", pa.string()),  # whose value breached: 'all' (pooled) or the subject's version
        ("value", pa.float64()),
        ("detail", pa.string()),
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
        ("action_id", pa.string()),  # the audit row in ``actions``
        ("action_result", pa.string()),  # applied, pending approval, or why it could not be carried out
        ("notification", pa.string()),  # how telling the owner went: the opening, each reminder, the closing
        ("notified_at", pa.timestamp("us", tz="UTC")),  # the last message sent (or tried): reminders count from it
        ("undelivered", pa.string()),  # the message its owner has not received yet (opened, closed): sent again
        ("delivery_failures", pa.int32()),  # failed attempts at that message in a row: the wait before the next
        ("renotifications", pa.int32()),  # reminders sent for a page incident left open and unacknowledged
        ("acknowledged_by", pa.string()),  # who said they are on it (``closedloop ack``): no more reminders
        ("acknowledged_at", pa.timestamp("us", tz="UTC")),
        ("silenced", pa.string()),  # the silence (maintenance window) that held back its last message
        ("state", pa.string()),  # open, closed
        ("day", pa.date32()),  # the day it was opened: its lake partition
    ]
)
OPENED, CLOSED = "opened", "closed"
INCIDENTS_LOCK = "incidents"  # the model's lock that every read-then-write of its incidents holds


def incident_id(model: str, slo: str, subject: str | None, opened: str) -> str:
    """A stable id: the same breach always names the same incident, so reprocessing never duplicates it."""
    return f"{model}/{slo}/{opened}" if subject is None else f"{model}/{slo}[{subject}]/{opened}"


@dataclass(frozen=True)
class IncidentChange:
    """What handling one transition did: ``opened`` or ``closed`` the incident (as recorded); ``resumed``
    when an earlier run had done that but left its action or its message undone."""

    change: str
    incident: dict
    resumed: bool = False


def read_incidents(lake: Lake, model: str, state: str | None = None) -> list[dict]:
    """The model's incidents in the order they were opened, optionally only ``open`` or ``closed`` ones."""
    rows = lake.read_range(model, "incidents", schema=INCIDENTS_SCHEMA).to_pylist()
    ordered = sorted(rows, key=lambda r: (period_start(r["opened"]), r["slo"], r["subject"] or ""))
    return [row for row in ordered if state is None or row["state"] == state]


def record_incident(lake: Lake, incident: Mapping) -> dict:
    """Write (or rewrite) one incident in the partition of the day it was opened."""
    table = pa.Table.from_pylist([dict(incident)], schema=INCIDENTS_SCHEMA)
    lake.upsert_partition(incident["model"], "incidents", incident["day"], table, ("incident_id",))
    return dict(incident)


def incident_location(identifier: str) -> tuple[str, dt.date]:
    """The model and opened day (its partition) an incident id names; ValueError when it names none.

    The id is ``model/slo[subject]/opened``: the model before the first ``/``, the opened period
    after the last (a subject may hold a ``/``, e.g. ``v12/amount``).
    """
    model, _, rest = identifier.partition("/")
    opened = rest.rpartition("/")[2]
    try:
        return model, period_start(opened).date()
    except ValueError:
        example = "model/slo/opened, e.g. fraud/auc_30d_floor/2026-09-20"
        raise ValueError(f"{identifier!r} is not an incident id ({example})") from None


def find_incident(lake: Lake, model: str, opened_day: dt.date, identifier: str) -> dict | None:
    table = lake.read_partition(model, "incidents", opened_day)
    if table is None:
        return None
    found = conformed(table.filter(pc.equal(table["incident_id"], identifier)), INCIDENTS_SCHEMA).to_pylist()
    return found[0] if found else None


def transition_incident_id(evaluation: Mapping) -> str:
    """The incident a ``breached`` or ``recovered`` evaluation opens or closes."""
    return incident_id(evaluation["model"], evaluation["slo"], evaluation.get("subject"), evaluation["breached_since"])


def is_handled(lake: Lake, evaluation: Mapping) -> bool:
    """Whether the lake already shows the transition's effect (the incident opened, or closed)."""
    incident = find_incident(
        lake, evaluation["model"], period_start(evaluation["breached_since"]).date(), transition_incident_id(evaluation)
    )
    if evaluation["transition"] == BREACHED:
        return incident is not None
    return incident is not None and incident["state"] == "closed"


def apply_transition(lake: Lake, model: ModelSpec, evaluation: Mapping, now: dt.datetime) -> IncidentChange | None:
    """Open or close the incident an evaluation's transition names; None when that is already done.

    When an earlier run opened (or closed) it but did not finish, the change is returned again,
    ``resumed``, so the rest is done: the action not taken yet, the message not delivered. A
    recovery whose incident was never opened (the SLO was breached before incidents were kept)
    changes nothing.
    """
    with lake.locked(model.name, INCIDENTS_LOCK):
        return _apply_transition(lake, model, evaluation, now)


def _apply_transition(lake: Lake, model: ModelSpec, evaluation: Mapping, now: dt.datetime) -> IncidentChange | None:
    identifier = transition_incident_id(evaluation)
    opened_day = period_start(evaluation["breached_since"]).date()
    existing = find_incident(lake, model.name, opened_day, identifier)
    if evaluation["transition"] == BREACHED:
        if existing is not None:
            unfinished = existing["state"] == "open" and (
                existing["action_result"] is None or existing["undelivered"] == OPENED
            )
            return IncidentChange(OPENED, existing, resumed=True) if unfinished else None
        slo = next(s for s in model.slos if s.name == evaluation["slo"])
        return IncidentChange(
            OPENED, record_incident(lake, _opened(identifier, evaluation, slo.action.type, slo.action.mode, now))
        )
    if evaluation["transition"] == RECOVERED:
        if existing is None:
            return None
        if existing["state"] == "closed":
            return IncidentChange(CLOSED, existing, resumed=True) if existing["undelivered"] == CLOSED else None
        closed = {**existing, "state": "closed", "closed": evaluation["period"], "closed_at": now,
                  "undelivered": CLOSED, "delivery_failures": 0}  # fmt: skip
        return IncidentChange(CLOSED, record_incident(lake, closed))
    raise ValueError(f"evaluation of {evaluation['slo']} at {evaluation['period']} has no transition")


def _opened(identifier: str, row: Mapping, action: str, mode: str, now: dt.datetime) -> dict:
    fields = (
        "model",
        "slo",
        "subject",
        "metric",
        "version",
        "value",
        "detail",
        "comparison",
        "threshold",
        "band_low",
        "band_high",
        "owner",
        "severity",
    )
    return {
        "incident_id": identifier,
        **{name: row[name] for name in fields},
        "opened": row["period"],
        "opened_at": now,
        "closed": None,
        "closed_at": None,
        "action": action,
        "action_mode": mode,
        "action_id": None,
        "action_result": None,
        "notification": None,
        "notified_at": None,
        "undelivered": OPENED,
        "delivery_failures": 0,
        "renotifications": 0,
        "acknowledged_by": None,
        "acknowledged_at": None,
        "silenced": None,
        "state": "open",
        "day": period_start(row["period"]).date(),
    }


def transitions(lake: Lake, model: str, after_ns: int | None = None) -> tuple[list[dict], int | None]:
    """Evaluations with a transition in the ``slo_evaluations`` partitions written after ``after_ns``
    (a file modification time in nanoseconds; every partition without it), in period order, and
    the newest modification time seen: the cursor for the next call.

    A sensor tick costs a few file listings however long the history; a rewritten partition
    (today's, every hour) is read again whole, and its transitions already handled are skipped
    by ``unhandled``.
    """
    files = lake.partition_files(model, "slo_evaluations", modified_after_ns=after_ns)
    newest = max((path.stat().st_mtime_ns for path in files), default=after_ns)
    rows = lake.read_files(files, schema=SLO_EVALUATIONS_SCHEMA).to_pylist()
    changes = [r for r in rows if r["transition"] is not None]
    return sorted(changes, key=lambda r: (period_start(r["period"]), r["slo"], r["subject"] or "")), newest


def unhandled(lake: Lake, evaluations: Iterable[Mapping]) -> list[dict]:
    """The transitions whose effect the lake does not show yet."""
    return [dict(row) for row in evaluations if not is_handled(lake, row)]
