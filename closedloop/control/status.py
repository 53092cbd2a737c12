"""Where a model stands: each SLO's latest judged state (and its subjects'), its incidents, its silences,
who owns an action.

The answers ``closedloop status`` and ``closedloop actions`` print, kept here so that any other
front end (a report, a job) gives the same answer.
"""

from __future__ import annotations

import datetime as dt

from closedloop.control.alerts import read_silences
from closedloop.control.incidents import read_incidents
from closedloop.control.metric_catalog import metric_definition
from closedloop.control.serving import read_actions
from closedloop.control.slo import latest_per_subject, read_evaluations, subjects_worst_first
from closedloop.core.lake import Lake
from closedloop.core.specs import ModelSpec

INCIDENT_FIELDS = (
    "incident_id", "model", "slo", "subject", "metric", "version", "value", "detail", "opened", "closed",
    "severity", "action", "action_mode", "action_id", "action_result", "notification", "renotifications",
    "acknowledged_by", "acknowledged_at", "silenced", "undelivered", "delivery_failures", "state",
)  # fmt: skip


def slo_status(lake: Lake, model: ModelSpec) -> list[dict]:
    """Each SLO of ``model`` with its latest judged evaluation (``no data`` until one had data).

    An SLO judged per subject (version, input column) stands as its worst subject; ``subjects``
    lists each one's own state, worst first.
    """
    latest = latest_per_subject(read_evaluations(lake, model.name).to_pylist(), judged_only=True)
    metrics = {m.name: m for m in model.metrics}
    status = []
    for slo in model.slos:
        subjects = subjects_worst_first(latest, slo.name)
        row = subjects[0] if subjects else None
        definition = metric_definition(model, metrics[slo.metric])
        status.append(
            {
                "model": model.name,
                "slo": slo.name,
                "metric": slo.metric,
                "unit": definition.unit,
                "better": definition.better,
                "severity": slo.severity,
                "state": row["state"] if row else "no data",
                "period": row["period"] if row else None,
                "version": row["version"] if row else None,
                "value": row["value"] if row else None,
                "consecutive_breaches": row["consecutive_breaches"] if row else 0,
                "subjects": [
                    {key: r[key] for key in ("subject", "state", "period", "version", "value", "detail")}
                    for r in subjects
                    if r["subject"] is not None
                ],
            }
        )
    return status


def incident_summaries(lake: Lake, models: list[str]) -> list[dict]:
    """The incidents of ``models`` in the order they were opened, with the fields a person reads.

    An action proposed for approval is told as the audit log has it now: approved or rejected since
    the incident recorded it pending, it no longer waits for anyone.
    """
    summaries = []
    for name in models:
        actions = {row["action_id"]: row for row in read_actions(lake, name)}
        for incident in read_incidents(lake, name):
            summary = {key: incident[key] for key in INCIDENT_FIELDS}
            decided = actions.get(incident["action_id"] or "")
            waited = (incident["action_result"] or "").startswith("pending approval")
            if waited and decided is not None and decided["state"] != "pending":
                when = f"{decided['decided_at']:%Y-%m-%d %H:%M}" if decided["decided_at"] else "?"
                summary["action_result"] = f"{decided['state']} by {decided['decided_by'] or '?'} at {when}"
            summaries.append(summary)
    return summaries


def action_owner(lake: Lake, models: list[str], action_id: str) -> str | None:
    """The model whose audit log holds ``action_id``, or None."""
    return next((name for name in models for row in read_actions(lake, name) if row["action_id"] == action_id), None)


def current_silences(lake: Lake, models: list[str], now: dt.datetime) -> list[dict]:
    """The silences of ``models`` that have not ended by ``now`` (those still to start too), soonest end first."""
    rows = [row for name in models for row in read_silences(lake, name) if row["until"] > now]
    return sorted(rows, key=lambda r: (r["until"], r["silence_id"]))
