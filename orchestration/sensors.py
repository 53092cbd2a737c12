"""Sensors that close the loop: SLO transitions open and close incidents, page incidents left alone are
reminded of, failed runs are reported.

``closedloop_incidents`` reads new rows of every model's ``slo_evaluations`` in the lake (not
Dagster's check history: reading that needs deprecated calls that break on the default
run-sharded storage) and launches the ``incident`` job once per SLO and subject that became
breached or recovered. Its cursor is, per model, the newest modification time of the partitions it has
read, kept by Dagster, so a restart resumes where it stopped; a transition the lake already shows handled (an incident
opened by an in-process run, say) is not launched again. A message the webhook did not take is
launched again, as the same transition with a run key that counts the failures, once its wait
has passed (``closedloop.control.alerts.redeliveries_due``). Runs are requested in period order
and tagged ``closedloop/slo``; the instance's run queue (``data/dagster_home/dagster.yaml``)
runs one per SLO at a time (whatever the subject), so an incident is opened before it is closed.

``closedloop_reminders`` reads every model's open incidents, acknowledgements and silences from
the lake on each tick (no cursor to lose) and launches the ``renotify`` job for each page
incident that stays open, unacknowledged and unsilenced ``alerts.renotify_after`` after its last
message. The run key names the incident and the reminder's number, and the job sends nothing the
lake shows sent already, so a restart never reminds twice. Every sensor runs by default.
"""

import datetime as dt
import json

import dagster as dg

from closedloop.control.alerts import redeliveries_due, reminder_number, reminders_due
from closedloop.control.incidents import OPENED, transition_incident_id, transitions, unhandled
from closedloop.control.slo import BREACHED, RECOVERED
from closedloop.control.webhook import run_failure_message
from closedloop.core.specs import Registry
from wiring.resources import LakeResource, WebhookResource
from wiring.tags import MODEL_TAG, SLO_TAG

INCIDENT_SENSOR = "closedloop_incidents"
RUN_FAILURE_SENSOR = "closedloop_run_failures"
REMINDER_SENSOR = "closedloop_reminders"


def incident_run_requests(
    registry: Registry, lake: LakeResource, cursor: str | None, now: dt.datetime
) -> tuple[list[dg.RunRequest], str]:
    """The incident runs to launch for transitions recorded since ``cursor`` and for messages due to be
    sent again at ``now``, and the next cursor."""
    seen = json.loads(cursor) if cursor else {}
    store = lake.get()
    requests = []
    for model in registry.models.values():
        rows, newest = transitions(store, model.name, seen.get(model.name))
        for row in unhandled(store, rows):
            key = f"{transition_incident_id(row)}:{row['transition']}"
            requests.append(
                _transition_request(key, model.name, row["slo"], row["period"], row["subject"], row["transition"])
            )
        for incident in redeliveries_due(store, model.name, now):
            opened = incident["undelivered"] == OPENED
            transition = BREACHED if opened else RECOVERED
            key = f"{incident['incident_id']}:{transition}:redelivery {incident['delivery_failures']}"
            period = incident["opened"] if opened else incident["closed"]
            requests.append(
                _transition_request(key, model.name, incident["slo"], period, incident["subject"], transition)
            )
        if newest is not None:
            seen[model.name] = newest
    return requests, json.dumps(seen, sort_keys=True)


def _transition_request(
    run_key: str, model: str, slo: str, period: str, subject: str | None, transition: str
) -> dg.RunRequest:
    """An ``incident`` run for the transition of ``slo`` (and ``subject``) at ``period``."""
    config = {"model": model, "slo": slo, "period": period, "subject": subject or ""}
    return dg.RunRequest(
        run_key=run_key,
        run_config={"ops": {"open_or_close_incident": {"config": config}}},
        tags={MODEL_TAG: model, SLO_TAG: f"{model}.{slo}", "closedloop/transition": transition},
    )


def build_incident_sensor(registry: Registry, job: dg.JobDefinition) -> dg.SensorDefinition:
    @dg.sensor(
        name=INCIDENT_SENSOR,
        job=job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Launches the incident job for every SLO that became breached or recovered in slo_evaluations.",
    )
    def closedloop_incidents(context: dg.SensorEvaluationContext, lake: LakeResource):
        requests, cursor = incident_run_requests(registry, lake, context.cursor, dt.datetime.now(dt.UTC))
        context.update_cursor(cursor)
        if not requests:
            return dg.SkipReason("no SLO became breached or recovered since the last tick")
        return requests

    return closedloop_incidents


def reminder_run_requests(registry: Registry, lake: LakeResource, now: dt.datetime) -> list[dg.RunRequest]:
    """The ``renotify`` runs due at ``now``: one per open page incident left unacknowledged and unsilenced."""
    store = lake.get()
    return [
        dg.RunRequest(
            run_key=f"{incident['incident_id']}:reminder {reminder_number(incident)}",
            run_config={
                "ops": {
                    "remind_owner": {
                        "config": {
                            "model": model,
                            "incident_id": incident["incident_id"],
                            "number": reminder_number(incident),
                        }
                    }
                }
            },
            tags={
                MODEL_TAG: model,
                SLO_TAG: f"{model}.{incident['slo']}",
                "closedloop/reminder": str(reminder_number(incident)),
            },
        )
        for model in registry.models
        for incident in reminders_due(store, registry.alerts, model, now)
    ]


def build_reminder_sensor(registry: Registry, job: dg.JobDefinition) -> dg.SensorDefinition:
    @dg.sensor(
        name=REMINDER_SENSOR,
        job=job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Launches the renotify job for every page incident left open, unacknowledged and unsilenced "
        "for the registry's alerts.renotify_after.",
    )
    def closedloop_reminders(context: dg.SensorEvaluationContext, lake: LakeResource):
        if registry.alerts.renotify_after is None:
            return dg.SkipReason("reminders are off (no alerts.renotify_after in the registry)")
        requests = reminder_run_requests(registry, lake, dt.datetime.now(dt.UTC))
        return requests or dg.SkipReason("no page incident is due for a reminder")

    return closedloop_reminders


def build_run_failure_sensor(registry: Registry) -> dg.SensorDefinition:
    """Failed runs go to the default alert route (the registry's catch-all route, else CLOSEDLOOP_WEBHOOK_URL)."""
    route = registry.alerts.default_route

    @dg.run_failure_sensor(
        name=RUN_FAILURE_SENSOR,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Posts every failed closedloop run (a pipeline, an incident, a decision) to the default "
        "alert route.",
    )
    def closedloop_run_failures(context: dg.RunFailureSensorContext, webhook: WebhookResource):
        run = context.dagster_run
        error = context.failure_event.message or "the run failed"
        post = webhook.poster(route.url_env)
        if post is None:
            context.log.info(f"run {run.run_id} of {run.job_name} failed; no webhook configured ({route.url_env})")
            return
        delivery = post(run_failure_message(run.job_name, run.run_id, error, run.tags.get(MODEL_TAG)))
        if not delivery.ok:
            context.log.warning(
                f"could not report failed run {run.run_id}: {delivery.error} after {delivery.attempts} attempts"
            )

    return closedloop_run_failures
