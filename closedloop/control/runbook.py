"""The runbook: what an opened incident does about itself, and how its owner hears of it (and is reminded).

The SLO's action is requested through ``closedloop.control.serving`` (applied at once in ``auto`` mode,
left pending for a person in ``propose`` mode) and its outcome is written on the incident, so
the message to the owner and ``closedloop status`` say what happened: applied, waiting for
approval (with the command that approves it), or why it could not be done (no earlier version
to roll back to, no matured labels to recalibrate on). An action that cannot be carried out
never stops the incident from being recorded or the owner from being told.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import cast

from closedloop.control.alerts import active_silence, is_reminder_due, read_silences, reminder_number, silenced_note
from closedloop.control.incidents import INCIDENTS_LOCK, find_incident, record_incident
from closedloop.control.serving import ControlError, read_serving, request_action
from closedloop.control.webhook import Delivery, incident_message
from closedloop.core.lake import Lake
from closedloop.core.names import ALL
from closedloop.core.specs import AlertRoute, AlertsSpec, ModelSpec, RunbookAction
from closedloop.evaluation.recalibration import RecalibrationError, recalibrate

INCIDENT_ACTOR = "closedloop incident job"


def carry_out(lake: Lake, model: ModelSpec, incident: Mapping, now: dt.datetime) -> dict:
    """Request the incident's runbook action once, however many runs try at once, and record the outcome."""
    with lake.locked(model.name, INCIDENTS_LOCK):
        return _carry_out(lake, model, incident, now)


def _carry_out(lake: Lake, model: ModelSpec, incident: Mapping, now: dt.datetime) -> dict:
    incident = _fresh(lake, incident)  # as the lake has it: an acknowledgement may have come in since it opened
    if incident["action_id"] is not None or incident["action_result"] is not None:
        return dict(incident)  # a re-run of the job: the action was requested already
    slo = next(s for s in model.slos if s.name == incident["slo"])
    action = slo.action
    if action.type == "notify":
        return record_incident(lake, {**incident, "action_result": "notify only"})
    try:
        if action.type == "recalibrate":
            action = _fitted(lake, model, incident, action, now)
        row = request_action(lake, model, action, why=incident["incident_id"], who=INCIDENT_ACTOR, now=now)
    except (ControlError, RecalibrationError) as exc:
        return record_incident(lake, {**incident, "action_result": f"failed: {exc}"})
    result = "applied" if row["state"] == "applied" else f"pending approval: closedloop approve {row['action_id']}"
    return record_incident(lake, {**incident, "action_id": row["action_id"], "action_result": result})


def _fitted(lake: Lake, model: ModelSpec, incident: Mapping, action: RunbookAction, now: dt.datetime) -> RunbookAction:
    """The recalibrate action with a calibrator fitted for the breaching version (else the serving one)."""
    version = (
        incident["version"] if incident["version"] not in (None, ALL) else read_serving(lake, model)["active_version"]
    )
    window_days = int(cast(int, action.params.get("window_days", max(model.evaluation.windows_days))))
    fitted = recalibrate(
        lake, model, version, incident["day"], window_days, str(action.params.get("method", "isotonic")), now
    )
    return RunbookAction(type="recalibrate", mode=action.mode, params={**action.params, **fitted.params})


PostFor = Callable[[AlertRoute], Callable[[dict], Delivery] | None]
"""Given a route, a function that posts one message to its webhook, or None when its URL is not set."""


def notify(
    lake: Lake,
    incident: Mapping,
    change: str,
    post_for: PostFor,
    alerts: AlertsSpec,
    now: dt.datetime,
) -> tuple[dict, Delivery | None]:
    """Tell the owner an incident was opened or closed, through its route, and record how that went.

    Only a message the incident still owes (``undelivered``) is sent, so runs telling the same
    change at once, or a re-run after it was delivered, send it once. One that fails stays owed,
    its failures counted, for the incident sensor (or a re-run) to send again. No message goes
    out while a silence covers the incident's SLO: the incident names the silence instead. A
    route whose URL is not set sends nothing either; the incident says so rather than pretending
    someone was told.
    """
    with lake.locked(incident["model"], INCIDENTS_LOCK):
        return _notify(lake, incident, change, post_for, alerts, now)


def _notify(
    lake: Lake, incident: Mapping, change: str, post_for: PostFor, alerts: AlertsSpec, now: dt.datetime
) -> tuple[dict, Delivery | None]:
    current = _fresh(lake, incident)
    if current["undelivered"] != change:
        return current, None  # told already
    silence = active_silence(read_silences(lake, current["model"]), current["slo"], now)
    if silence is not None:
        noted = {"notification": _noted(current, change, silenced_note(silence)), "silenced": silence["silence_id"]}
        return record_incident(lake, {**current, **noted, "undelivered": None, "delivery_failures": 0}), None
    outcome, delivery = _post(current, alerts, post_for, incident_message(current))
    failed = delivery is not None and not delivery.ok
    told = {
        "notification": _noted(current, change, outcome),
        "notified_at": now,
        "undelivered": change if failed else None,
        "delivery_failures": (current["delivery_failures"] or 0) + 1 if failed else 0,
    }
    return record_incident(lake, {**current, **told}), delivery


def remind(
    lake: Lake, incident: Mapping, number: int, post_for: PostFor, alerts: AlertsSpec, now: dt.datetime
) -> tuple[dict, Delivery | None] | None:
    """Send reminder ``number`` of a page incident still open and unacknowledged, and record it on the incident.

    None when the lake shows it is not due (acknowledged, closed, silenced, reminded already, or
    told too recently): a re-run, a restart or a lost cursor never reminds twice.
    """
    with lake.locked(incident["model"], INCIDENTS_LOCK):
        return _remind(lake, incident, number, post_for, alerts, now)


def _remind(
    lake: Lake, incident: Mapping, number: int, post_for: PostFor, alerts: AlertsSpec, now: dt.datetime
) -> tuple[dict, Delivery | None] | None:
    current = _fresh(lake, incident)
    silences = read_silences(lake, current["model"])
    if reminder_number(current) != number or not is_reminder_due(current, alerts, silences, now):
        return None
    outcome, delivery = _post(current, alerts, post_for, incident_message(current, reminder=number))
    told = {"notification": _noted(current, f"reminder {number}", outcome), "notified_at": now,
            "renotifications": number}  # fmt: skip
    return record_incident(lake, {**current, **told}), delivery


def _fresh(lake: Lake, incident: Mapping) -> dict:
    """The incident as the lake has it now: someone may have acknowledged it since it was read."""
    return find_incident(lake, incident["model"], incident["day"], incident["incident_id"]) or dict(incident)


def _post(incident: Mapping, alerts: AlertsSpec, post_for: PostFor, message: dict) -> tuple[str, Delivery | None]:
    route = alerts.route_for(incident["owner"], incident["severity"])
    via = f"route {route.name}: " if alerts.routes else ""  # without routes, the one webhook goes unnamed
    post = post_for(route)
    if post is None:
        return f"{via}no webhook configured (set {route.url_env})", None
    delivery = post(message)
    tries = f"{delivery.attempts} attempt{'s' if delivery.attempts != 1 else ''}"
    return via + (f"delivered ({tries})" if delivery.ok else f"failed after {tries}: {delivery.error}"), delivery


def _noted(incident: Mapping, change: str, outcome: str) -> str:
    return "; ".join(filter(None, [incident["notification"], f"{change}: {outcome}"]))
