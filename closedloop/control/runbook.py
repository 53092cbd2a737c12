"""The runbook: what an opened incident does about itself, and how its owner hears of it.

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

from closedloop.control.incidents import record_incident
from closedloop.control.serving import ControlError, read_serving, request_action
from closedloop.control.webhook import Delivery, incident_message
from closedloop.core.lake import Lake
from closedloop.core.names import ALL
from closedloop.core.specs import ModelSpec, RunbookAction
from closedloop.evaluation.recalibration import RecalibrationError, recalibrate

INCIDENT_ACTOR = "closedloop incident job"


def carry_out(lake: Lake, model: ModelSpec, incident: Mapping, now: dt.datetime) -> dict:
    """Request the incident's runbook action once and record the outcome on the incident."""
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


def notify(
    lake: Lake, incident: Mapping, change: str, post: Callable[[dict], Delivery] | None
) -> tuple[dict, Delivery | None]:
    """Tell the owner an incident was opened or closed, and record how that went on the incident.

    ``post`` is None when no webhook is configured; the incident says so rather than pretending
    someone was told.
    """
    if post is None:
        outcome, delivery = "no webhook configured (set CLOSEDLOOP_WEBHOOK_URL)", None
    else:
        delivery = post(incident_message(incident))
        tries = f"{delivery.attempts} attempt{'s' if delivery.attempts != 1 else ''}"
        outcome = f"delivered ({tries})" if delivery.ok else f"failed after {tries}: {delivery.error}"
    noted = "; ".join(filter(None, [incident["notification"], f"{change}: {outcome}"]))
    return record_incident(lake, {**incident, "notification": noted}), delivery
