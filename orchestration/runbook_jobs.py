"""Jobs that close the loop: ``incident`` (record, act, tell the owner), ``renotify`` (remind the owner of a
page incident left alone) and ``decide_action`` (approve or reject).

The incident sensor launches ``incident`` once per SLO transition found in ``slo_evaluations``;
the reminder sensor launches ``renotify`` once per reminder due; a person (or the CLI's
``closedloop approve``) launches ``decide_action`` for a proposed action. Each step is
idempotent, so re-running a run changes nothing twice.
"""

import datetime as dt
from typing import Literal

import dagster as dg
import pyarrow.compute as pc

from closedloop.control.incidents import OPENED, apply_transition, find_incident, incident_location
from closedloop.control.runbook import carry_out, notify, remind
from closedloop.control.serving import ControlError, approve, reject
from closedloop.control.slo import SLO_EVALUATIONS_SCHEMA
from closedloop.core.lake import Lake, conformed
from closedloop.core.periods import period_start
from closedloop.core.specs import Registry
from wiring.resources import LakeResource, WebhookResource

INCIDENT_JOB = "incident"
RENOTIFY_JOB = "renotify"
DECIDE_ACTION_JOB = "decide_action"


class TransitionConfig(dg.Config):
    """The ``slo_evaluations`` row whose transition the run handles (``subject`` empty for a pooled SLO)."""

    model: str
    slo: str
    period: str
    subject: str = ""


class ReminderConfig(dg.Config):
    """The incident to remind its owner of, and the reminder's number (1 for the first)."""

    model: str
    incident_id: str
    number: int


class DecisionConfig(dg.Config):
    model: str
    action_id: str
    decision: Literal["approve", "reject"]
    who: str


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _evaluation(lake: Lake, config: TransitionConfig) -> dict:
    table = lake.read_partition(config.model, "slo_evaluations", period_start(config.period).date())
    if table is not None:
        mask = pc.and_(pc.equal(table["slo"], config.slo), pc.equal(table["period"], config.period))
        rows = conformed(table.filter(mask), SLO_EVALUATIONS_SCHEMA).to_pylist()
        rows = [r for r in rows if (r["subject"] or "") == config.subject and r["transition"] is not None]
        if rows:
            return rows[0]
    about = f" [{config.subject}]" if config.subject else ""
    raise dg.Failure(
        f"slo_evaluations of {config.model} has no transition of SLO {config.slo!r}{about} at {config.period}"
    )


def build_incident_job(registry: Registry) -> dg.JobDefinition:
    @dg.op(description="Open the incident of a newly breached SLO, or close the one of a recovered SLO, in the lake.")
    def open_or_close_incident(
        context: dg.OpExecutionContext, config: TransitionConfig, lake: LakeResource
    ) -> dict | None:
        store = lake.get()
        model = registry.model(config.model)
        change = apply_transition(store, model, _evaluation(store, config), _now())
        if change is None:
            about = f" [{config.subject}]" if config.subject else ""
            context.log.info(f"{config.model}/{config.slo}{about} at {config.period}: already recorded, nothing to do")
            return None
        incident = change.incident
        done = f"{change.change} earlier; finishing what is left" if change.resumed else change.change
        context.log.info(f"{done} incident {incident['incident_id']} ({incident['metric']} = {incident['value']})")
        return {"change": change.change, "incident": incident}

    @dg.op(description="Carry out the SLO's runbook action for an opened incident (auto) or propose it (propose).")
    def carry_out_runbook_action(
        context: dg.OpExecutionContext, handled: dict | None, lake: LakeResource
    ) -> dict | None:
        if handled is None or handled["change"] != OPENED:
            return handled
        incident = carry_out(lake.get(), registry.model(handled["incident"]["model"]), handled["incident"], _now())
        log = context.log.warning if incident["action_result"].startswith("failed") else context.log.info
        log(f"{incident['action']} ({incident['action_mode']}): {incident['action_result']}")
        return {**handled, "incident": incident}

    @dg.op(description="Post the incident to the owner's webhook (Slack-compatible JSON) and record how that went.")
    def notify_owner(
        context: dg.OpExecutionContext, handled: dict | None, lake: LakeResource, webhook: WebhookResource
    ) -> None:
        if handled is None:
            return
        incident, delivery = notify(
            lake.get(), handled["incident"], handled["change"], webhook.route_poster, registry.alerts, _now()
        )
        context.log.info(f"notification: {incident['notification']}")
        problems = []
        if delivery is not None and not delivery.ok:
            problems.append(
                f"the owner was not told ({delivery.error} after {delivery.attempts} attempts; the "
                "closedloop_incidents sensor sends it again)"
            )
        if (incident["action_result"] or "").startswith("failed"):
            problems.append(f"the runbook action was not carried out ({incident['action_result']})")
        if problems:
            raise dg.Failure(
                f"incident {incident['incident_id']} is recorded, but " + " and ".join(problems),
                metadata={"incident": dg.MetadataValue.json({k: str(v) for k, v in incident.items()})},
            )

    @dg.job(
        name=INCIDENT_JOB,
        description="Records an SLO's incident (opened or closed), carries out its runbook action and tells its owner. "
        "Launched by the closedloop_incidents sensor.",
        tags={"closedloop/kind": "incident"},
    )
    def incident():
        notify_owner(carry_out_runbook_action(open_or_close_incident()))

    return incident


def build_renotify_job(registry: Registry) -> dg.JobDefinition:
    @dg.op(
        description="Remind the owner of a page incident still open that nobody acknowledged, through its route, "
        "and record the reminder on the incident."
    )
    def remind_owner(
        context: dg.OpExecutionContext, config: ReminderConfig, lake: LakeResource, webhook: WebhookResource
    ) -> None:
        store = lake.get()
        registry.model(config.model)
        try:
            model, day = incident_location(config.incident_id)
        except ValueError as exc:
            raise dg.Failure(str(exc)) from None
        incident = find_incident(store, model, day, config.incident_id)
        if incident is None:
            raise dg.Failure(f"incidents of {config.model} has no incident {config.incident_id!r}")
        reminded = remind(store, incident, config.number, webhook.route_poster, registry.alerts, _now())
        if reminded is None:
            context.log.info(f"reminder {config.number} of {config.incident_id} is not due (any more): nothing to do")
            return
        incident, delivery = reminded
        context.log.info(f"notification: {incident['notification']}")
        if delivery is not None and not delivery.ok:
            raise dg.Failure(
                f"incident {config.incident_id} is still open and unacknowledged, but the reminder did not reach "
                f"its owner ({delivery.error} after {delivery.attempts} attempts)"
            )

    @dg.job(
        name=RENOTIFY_JOB,
        description="Reminds the owner of a page incident that stays open and unacknowledged "
        "(the registry's alerts.renotify_after). Launched by the closedloop_reminders sensor.",
        tags={"closedloop/kind": "reminder"},
    )
    def renotify():
        remind_owner()

    return renotify


def build_decide_action_job(registry: Registry) -> dg.JobDefinition:
    @dg.op(
        description=(
            "Apply a proposed runbook action to the serving file, or reject it; the audit log records who and when."
        )
    )
    def decide(context: dg.OpExecutionContext, config: DecisionConfig, lake: LakeResource) -> None:
        model = registry.model(config.model)
        decide_with = approve if config.decision == "approve" else reject
        try:
            row = decide_with(lake.get(), model, config.action_id, who=config.who, now=_now())
        except ControlError as exc:
            raise dg.Failure(str(exc)) from None
        context.log.info(f"{config.action_id} ({row['type']}) {row['state']} by {config.who}")

    @dg.job(
        name=DECIDE_ACTION_JOB,
        description="Approves or rejects a proposed runbook action (rollback, dial, fallback, recalibrate).",
        tags={"closedloop/kind": "decision"},
    )
    def decide_action():
        decide()

    return decide_action
