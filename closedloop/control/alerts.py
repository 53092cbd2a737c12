"""What people say back to alerts: acknowledgements and silences, and the reminders they stop.

An incident's owner hears of it once when it opens; a ``page`` incident that stays open with
nobody acknowledging it is told again every ``alerts.renotify_after`` (registry) after its last
message. ``closedloop ack`` records who is on it: no more reminders (the closing is still told).
A silence is a maintenance window for a model (or one of its SLOs), from a time until a time,
with who asked for it and why: its SLOs are still evaluated and its incidents still opened,
closed and acted on, but no message goes out while it lasts and the incident says which silence
held it back. Both live in the lake (``acknowledgements``, ``silences``; each row is the audit
record of one person's decision, who, when and why), so the sensors read them, and a restart,
a lost cursor or a second sensor tick changes nothing.

A message the webhook did not take (refused, timed out, 5xx after the poster's own retries)
stays on the incident as ``undelivered``; the incident sensor sends it again once
``redelivery_wait`` has passed since the last attempt, a wait that doubles with each failure
up to an hour, until it is delivered.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence

import pyarrow as pa

from closedloop.control.incidents import (
    INCIDENTS_LOCK,
    find_incident,
    incident_location,
    read_incidents,
    record_incident,
)
from closedloop.core.lake import Lake
from closedloop.core.specs import AlertRoute, AlertsSpec, ModelSpec

SILENCES_SCHEMA = pa.schema(
    [
        ("silence_id", pa.string()),
        ("model", pa.string()),
        ("slo", pa.string()),  # null: every SLO of the model
        ("starts", pa.timestamp("us", tz="UTC")),
        ("until", pa.timestamp("us", tz="UTC")),
        ("who", pa.string()),
        ("why", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("day", pa.date32()),  # the day it was asked for: its lake partition
    ]
)
ACKNOWLEDGEMENTS_SCHEMA = pa.schema(
    [
        ("incident_id", pa.string()),
        ("model", pa.string()),
        ("who", pa.string()),
        ("at", pa.timestamp("us", tz="UTC")),
        ("day", pa.date32()),  # the day it was acknowledged: its lake partition
    ]
)


class AlertError(ValueError):
    """An acknowledgement or silence that cannot be recorded; the message says why and what to do."""


# Routes


def slo_owner(model: ModelSpec, slo: str) -> str:
    """Who an SLO's incidents belong to (what a route's ``owner`` matches): the SLO's owner, else its metric's."""
    spec = next(s for s in model.slos if s.name == slo)
    return spec.owner or next(m.owner for m in model.metrics if m.name == spec.metric)


def route_plan(alerts: AlertsSpec, models: Iterable[ModelSpec], *, every_route: bool) -> list[tuple[AlertRoute, list]]:
    """Each route with the SLOs (``model/slo``) whose incidents it takes, in the order routes are tried.

    ``every_route`` lists the routes that take none of these SLOs too (and the default route,
    which run failures go to); otherwise only the routes the models' incidents go through.
    """
    taken: dict[str, list[str]] = {}
    for model in models:
        for slo in model.slos:
            route = alerts.route_for(slo_owner(model, slo.name), slo.severity)
            taken.setdefault(route.name, []).append(f"{model.name}/{slo.name}")
    routes = list(alerts.routes)
    if alerts.default_route not in routes:
        routes.append(alerts.default_route)
    return [(route, taken.get(route.name, [])) for route in routes if every_route or route.name in taken]


# Silences


def silence_id(model: str, slo: str | None, starts: dt.datetime, until: dt.datetime, created_at: dt.datetime) -> str:
    digest = hashlib.sha256(f"{model}|{slo}|{starts.isoformat()}|{until.isoformat()}|{created_at.isoformat()}".encode())
    return f"sil_{digest.hexdigest()[:10]}"


def add_silence(
    lake: Lake,
    model: ModelSpec,
    *,
    slo: str | None,
    until: dt.datetime,
    who: str,
    why: str,
    now: dt.datetime,
    starts: dt.datetime | None = None,
) -> dict:
    """Record a maintenance window for ``model`` (or one SLO of it) from ``starts`` (default now) to ``until``."""
    starts = starts or now
    for name, moment in (("until", until), ("starts", starts)):
        if moment.tzinfo is None:
            raise AlertError(f"{name} {moment} has no time zone; give one, e.g. 2026-09-20T18:00+00:00")
    if until <= now:
        raise AlertError(f"until {until.isoformat()} is not in the future (now {now.isoformat(timespec='seconds')})")
    if until <= starts:
        raise AlertError(f"until {until.isoformat()} is not after the silence starts ({starts.isoformat()})")
    if slo is not None and slo not in {s.name for s in model.slos}:
        raise AlertError(f"{model.name} has no SLO {slo!r}; its SLOs: {[s.name for s in model.slos]}")
    if not why.strip():
        raise AlertError("say why (the reason goes to the audit log and every held-back message)")
    row = {
        "silence_id": silence_id(model.name, slo, starts, until, now),
        "model": model.name,
        "slo": slo,
        "starts": starts,
        "until": until,
        "who": who,
        "why": why,
        "created_at": now,
        "day": now.date(),
    }
    table = pa.Table.from_pylist([row], schema=SILENCES_SCHEMA)
    lake.upsert_partition(model.name, "silences", now.date(), table, ("silence_id",))
    return row


def read_silences(lake: Lake, model: str) -> list[dict]:
    """Every silence of ``model`` in the order they were asked for."""
    rows = lake.read_range(model, "silences", schema=SILENCES_SCHEMA).to_pylist()
    return sorted(rows, key=lambda r: (r["created_at"], r["silence_id"]))


def active_silence(silences: Sequence[Mapping], slo: str, at: dt.datetime) -> Mapping | None:
    """The silence that covers ``slo`` at ``at`` (the one lasting longest when several do), or None."""
    covering = [s for s in silences if s["slo"] in (None, slo) and s["starts"] <= at < s["until"]]
    return max(covering, key=lambda s: s["until"], default=None)


def silenced_note(silence: Mapping) -> str:
    """What an incident says instead of a message: ``silenced until T by W: reason``."""
    return f"silenced until {silence['until']:%Y-%m-%d %H:%M} UTC by {silence['who']}: {silence['why']}"


# Acknowledgements


def acknowledge(lake: Lake, models: Mapping[str, ModelSpec], identifier: str, *, who: str, now: dt.datetime) -> dict:
    """Record that ``who`` is on the incident: it is not told again (its closing still is).

    Acknowledging an incident twice keeps the first acknowledgement and returns the incident as it is.
    """
    try:
        model, day = incident_location(identifier)
    except ValueError as exc:
        raise AlertError(str(exc)) from None
    if model not in models:
        raise AlertError(f"no incident {identifier!r}; the open ones are listed by `closedloop status`")
    with lake.locked(model, INCIDENTS_LOCK):
        return _acknowledge(lake, model, day, identifier, who, now)


def _acknowledge(lake: Lake, model: str, day: dt.date, identifier: str, who: str, now: dt.datetime) -> dict:
    incident = find_incident(lake, model, day, identifier)
    if incident is None:
        raise AlertError(f"no incident {identifier!r}; the open ones are listed by `closedloop status`")
    if incident["acknowledged_by"] is not None:
        return incident
    if incident["state"] != "open":
        raise AlertError(f"incident {identifier} closed at {incident['closed']}; there is nothing left to acknowledge")
    row = {"incident_id": identifier, "model": model, "who": who, "at": now, "day": now.date()}
    table = pa.Table.from_pylist([row], schema=ACKNOWLEDGEMENTS_SCHEMA)
    lake.upsert_partition(model, "acknowledgements", now.date(), table, ("incident_id",))
    return record_incident(lake, {**incident, "acknowledged_by": who, "acknowledged_at": now})


def read_acknowledgements(lake: Lake, model: str) -> list[dict]:
    """The audit log of ``model``'s acknowledgements, oldest first."""
    rows = lake.read_range(model, "acknowledgements", schema=ACKNOWLEDGEMENTS_SCHEMA).to_pylist()
    return sorted(rows, key=lambda r: (r["at"], r["incident_id"]))


# Messages not delivered

REDELIVERY_FIRST_WAIT = dt.timedelta(minutes=1)
REDELIVERY_LONGEST_WAIT = dt.timedelta(hours=1)


def redelivery_wait(failures: int) -> dt.timedelta:
    """How long after a failed attempt the message is tried again: one minute, doubling, at most an hour."""
    return min(REDELIVERY_FIRST_WAIT * 2 ** max(failures - 1, 0), REDELIVERY_LONGEST_WAIT)


def redeliveries_due(lake: Lake, model: str, now: dt.datetime) -> list[dict]:
    """The model's incidents whose owner still has a message to receive and whose wait has passed."""
    return [
        incident
        for incident in read_incidents(lake, model)
        if incident["undelivered"] is not None
        and now - last_told(incident) >= redelivery_wait(incident["delivery_failures"] or 0)
    ]


# Reminders


def last_told(incident: Mapping) -> dt.datetime:
    """When the owner last heard of the incident (its opening, if no message was ever sent)."""
    return incident["notified_at"] or incident["opened_at"]


def reminders_due(lake: Lake, alerts: AlertsSpec, model: str, now: dt.datetime) -> list[dict]:
    """The model's open ``page`` incidents that nobody acknowledged, that no silence covers now, and
    whose owner last heard of them ``renotify_after`` ago or longer; none when reminders are off."""
    if alerts.renotify_after is None:
        return []
    open_incidents = read_incidents(lake, model, "open")
    silences = read_silences(lake, model) if open_incidents else []
    return [incident for incident in open_incidents if is_reminder_due(incident, alerts, silences, now)]


def is_reminder_due(incident: Mapping, alerts: AlertsSpec, silences: Sequence[Mapping], now: dt.datetime) -> bool:
    return (
        alerts.renotify_after is not None
        and incident["state"] == "open"
        and incident["severity"] == "page"
        and incident["acknowledged_by"] is None
        and active_silence(silences, incident["slo"], now) is None
        and now - last_told(incident) >= alerts.renotify_after
    )


def reminder_number(incident: Mapping) -> int:
    """The number the incident's next reminder has (1 for the first)."""
    return (incident["renotifications"] or 0) + 1
