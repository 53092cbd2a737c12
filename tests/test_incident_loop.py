"""The closed loop in Dagster: SLO transitions in the lake -> incident sensor -> incident job ->
lake record, serving file, audit row and a message on a real local webhook."""

import datetime as dt
import json

import dagster as dg
import pyarrow as pa
import pytest

from closedloop.control.incidents import read_incidents
from closedloop.control.serving import read_actions, read_serving
from closedloop.control.slo import SLO_EVALUATIONS_SCHEMA, record_evaluations
from closedloop.control.slo_evaluation import evaluate_periods
from closedloop.control.status import incident_summaries, slo_status
from closedloop.drift.report import REPORT_SCHEMA
from orchestration.definitions import build_definitions
from orchestration.runbook_jobs import DECIDE_ACTION_JOB, INCIDENT_JOB
from orchestration.sensors import INCIDENT_SENSOR, RUN_FAILURE_SENSOR
from tests.helpers import HOUR, tick_sensor
from tests.helpers import record_triage_evaluations as record
from tests.helpers import triage_evaluation as evaluation
from wiring.resources import WebhookResource

UTC = dt.UTC


@pytest.fixture
def loop(registry, lake):
    """The code location, an instance, and a way to tick the incident sensor and run what it asks for."""
    defs = build_definitions(registry)
    instance = dg.DagsterInstance.ephemeral()
    sensor = defs.get_sensor_def(INCIDENT_SENSOR)

    def tick(cursor: str | None, webhook: WebhookResource | None = None) -> tuple[list, str | None]:
        return tick_sensor(defs, instance, sensor, INCIDENT_JOB, cursor, webhook)

    return defs, instance, tick


def test_a_breach_opens_one_incident_and_a_recovery_closes_it(loop, registry, lake):
    _, _, tick = loop
    record(lake, evaluation("p95_latency_ceiling", HOUR, "breached", 12_600.0, "breached", HOUR))
    requests, cursor = tick(None)
    assert (
        len(requests) == 1 and requests[0].run_key == f"ticket_triage/p95_latency_ceiling/{HOUR.isoformat()}:breached"
    )
    [incident] = read_incidents(lake, "ticket_triage")
    assert (incident["state"], incident["value"], incident["action"], incident["action_result"]) == (
        "open",
        12_600.0,
        "fallback",
        "applied",
    )
    assert incident["notification"] == "opened: no webhook configured (set CLOSEDLOOP_WEBHOOK_URL)"
    # The fallback action (auto) flipped the kill switch and left an audit row naming the incident.
    assert read_serving(lake, registry.model("ticket_triage"))["fallback"] is True
    [action] = read_actions(lake, "ticket_triage")
    assert (action["type"], action["state"], action["why"]) == ("fallback", "applied", incident["incident_id"])

    # The same breach on the next tick, and the breach going on, launch nothing more.
    assert tick(cursor)[0] == []
    record(lake, evaluation("p95_latency_ceiling", HOUR + dt.timedelta(hours=1), "breached", 11_000.0, None, HOUR))
    requests, cursor = tick(cursor)
    assert requests == [] and len(read_incidents(lake, "ticket_triage")) == 1

    # After a restart (a new context with the stored cursor) the recovery closes the incident.
    recovered = HOUR + dt.timedelta(hours=6)
    record(lake, evaluation("p95_latency_ceiling", recovered, "ok", 2_300.0, "recovered", HOUR))
    requests, cursor = tick(cursor)
    assert [r.tags["closedloop/transition"] for r in requests] == ["recovered"]
    [incident] = read_incidents(lake, "ticket_triage")
    assert (incident["state"], incident["closed"]) == ("closed", recovered.isoformat())
    assert len(read_actions(lake, "ticket_triage")) == 1  # closing does not act again
    # Even a lost cursor re-launches nothing: the lake shows every transition handled.
    assert tick(None)[0] == []


def test_the_owner_gets_a_slack_compatible_message_on_a_local_webhook(loop, lake, webhook_server):
    url, handler = webhook_server
    _, _, tick = loop
    record(lake, evaluation("cost_ceiling", HOUR, "breached", 9.7, "breached", HOUR))
    tick(None, WebhookResource(url=url))
    [(content_type, message)] = handler.received
    assert content_type == "application/json"
    assert message["text"] == ":rotating_light: [page] ticket_triage: SLO cost_ceiling breached: latency_p95_ms = 9.7"
    details = message["blocks"][1]["text"]["text"]
    assert (
        "(SLO: <= 4000)" in details and "Owner: team:llm-platform" in details and "fallback (auto): applied" in details
    )
    [incident] = read_incidents(lake, "ticket_triage")
    assert incident["notification"] == "opened: delivered (1 attempt)"


def test_with_the_webhook_down_the_incident_is_still_recorded_and_the_run_fails_visibly(loop, lake, dead_webhook_url):
    defs, instance, tick = loop
    record(lake, evaluation("p95_latency_ceiling", HOUR, "breached", 12_600.0, "breached", HOUR))
    [request], _ = tick(None, WebhookResource(url=dead_webhook_url, retries=2, backoff_seconds=0.01, timeout_seconds=1))
    assert request.tags["run_success"] == "False"
    [incident] = read_incidents(lake, "ticket_triage")
    assert incident["state"] == "open" and incident["action_result"] == "applied"  # recorded and acted on all the same
    assert incident["notification"].startswith("opened: failed after 3 attempts: URLError")
    [run] = instance.get_runs()
    failure = next(e for e in instance.all_logs(run.run_id) if e.dagster_event and e.dagster_event.is_step_failure)
    assert "is recorded, but the owner was not told" in failure.dagster_event.step_failure_data.error.message


def test_a_proposed_action_waits_until_the_decide_action_job_approves_it(loop, registry, lake):
    defs, instance, tick = loop
    day = dt.date(2026, 10, 6)
    row = {
        **evaluation("review_rate_in_band", HOUR, "breached", 0.0015, "breached", HOUR),
        "model": "fraud",
        "metric": "review_rate",
        "cadence": "daily",
        "period": str(day),
        "day": day,
        "version": "v12",
        "breached_since": str(day),
        "comparison": None,
        "threshold": None,
        "band_low": 0.005,
        "band_high": 0.06,
    }
    record_evaluations(lake, "fraud", pa.Table.from_pylist([row], schema=SLO_EVALUATIONS_SCHEMA))
    tick(None)
    fraud = registry.model("fraud")
    [incident] = read_incidents(lake, "fraud")
    [pending] = read_actions(lake, "fraud", "pending")
    assert (
        incident["version"] == "v12"
        and incident["action_result"] == f"pending approval: closedloop approve {pending['action_id']}"
    )
    assert read_serving(lake, fraud)["active_version"] == "v12"  # nothing changes before a person approves
    decided = defs.get_job_def(DECIDE_ACTION_JOB).execute_in_process(
        run_config={
            "ops": {
                "decide": {
                    "config": {
                        "model": "fraud",
                        "action_id": pending["action_id"],
                        "decision": "approve",
                        "who": "alice@example.com",
                    }
                }
            }
        },
        instance=instance,
    )
    assert decided.success
    assert read_serving(lake, fraud)["active_version"] == "v11"
    [applied] = read_actions(lake, "fraud")
    assert (applied["state"], applied["decided_by"]) == ("applied", "alice@example.com")
    # What status prints no longer waits for an approval that came.
    [summary] = incident_summaries(lake, ["fraud"])
    assert summary["action_result"] == f"applied by alice@example.com at {applied['decided_at']:%Y-%m-%d %H:%M}"


def test_the_sensor_reads_only_partitions_written_since_its_cursor(loop, lake, monkeypatch):
    _, _, tick = loop
    record(lake, evaluation("p95_latency_ceiling", HOUR, "breached", 12_600.0, "breached", HOUR))
    _, cursor = tick(None)
    read = []
    original = lake.read_files
    monkeypatch.setattr(
        "closedloop.core.lake.Lake.read_files",
        staticmethod(lambda paths, schema: read.extend(paths) or original(paths, schema)),
    )
    later = HOUR + dt.timedelta(days=3)
    record(lake, evaluation("p95_latency_ceiling", later, "ok", 2_000.0, "recovered", HOUR))
    requests, _ = tick(cursor)
    assert [p.parent.name for p in read if "slo_evaluations" in str(p)] == [f"date={later.date()}"]
    assert len(requests) == 1


def test_failed_runs_are_reported_to_the_webhook(registry, webhook_server):
    url, handler = webhook_server
    defs = build_definitions(registry)
    instance = dg.DagsterInstance.ephemeral()
    # A decision on an action that does not exist fails the run.
    result = defs.get_job_def(DECIDE_ACTION_JOB).execute_in_process(
        run_config={
            "ops": {
                "decide": {
                    "config": {
                        "model": "fraud",
                        "action_id": "act_missing",
                        "decision": "approve",
                        "who": "bob@example.com",
                    }
                }
            }
        },
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    context = dg.build_run_status_sensor_context(
        sensor_name=RUN_FAILURE_SENSOR,
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(result.run_id),
        resources={"webhook": WebhookResource(url=url)},
    ).for_run_failure()
    defs.get_sensor_def(RUN_FAILURE_SENSOR)(context)
    [(_, message)] = handler.received
    assert message["text"].startswith(":x: closedloop run failed: decide_action")
    assert result.run_id in json.dumps(message["blocks"])


def drift_day(lake, day: dt.date, errors: dict[str, tuple[str, float, float]]):
    """fraud's day drift report: merchant_id and amount judged, those in ``errors`` past their limit."""
    rows = []
    for column in ("merchant_id", "amount"):
        metric, value, limit = errors.get(column, ("psi", 0.01, 0.25))
        status = "error" if column in errors else "ok"
        rows.append(
            {
                "day": day, "column": column, "version": "all", "window": "day", "metric": metric, "value": value,
                "threshold": limit, "severity": value / limit, "status": status, "rows": 20_000,
            }
        )  # fmt: skip
    lake.write_partition("fraud", "drift", day, pa.Table.from_pylist(rows, schema=REPORT_SCHEMA))


def test_a_second_input_drifting_inside_an_open_incident_is_told_and_each_input_recovers_alone(
    loop, registry, lake, webhook_server
):
    url, handler = webhook_server
    _, _, tick = loop
    fraud = registry.model("fraud")
    [slo] = [s for s in fraud.slos if s.name == "inputs_within_drift_limits"]  # <= 0: not one drifting input
    merchants = ("new_category_share", 0.4, 0.2)
    nulls = ("missing_rate_delta", 0.2, 0.05)
    days = [dt.date(2026, 9, 16) + dt.timedelta(days=i) for i in range(4)]
    faults = [{"merchant_id": merchants}, {"merchant_id": merchants, "amount": nulls}, {"amount": nulls}, {}]
    cursor, seen = None, []
    for day, errors in zip(days, faults, strict=True):
        drift_day(lake, day, errors)
        record_evaluations(lake, "fraud", evaluate_periods(lake, fraud, [day], [slo], dt.datetime.now(UTC)))
        requests, cursor = tick(cursor, WebhookResource(url=url))
        if day == days[1]:
            [both] = [s for s in slo_status(lake, fraud) if s["slo"] == slo.name]
        seen.append(
            [
                (r.tags["closedloop/transition"], r.run_config["ops"]["open_or_close_incident"]["config"]["subject"])
                for r in requests
            ]
        )
    assert seen == [
        [("breached", "merchant_id")],
        [("breached", "amount")],  # the nulls open their own incident while merchant_id's is open
        [("recovered", "merchant_id")],  # only merchant_id's closes
        [("recovered", "amount")],
    ]
    assert both["state"] == "breached" and [(t["subject"], t["state"]) for t in both["subjects"]] == [
        ("amount", "breached"),
        ("merchant_id", "breached"),
    ]
    incidents = {i["subject"]: i for i in read_incidents(lake, "fraud")}
    assert {s: (i["opened"], i["closed"]) for s, i in incidents.items()} == {
        "merchant_id": (str(days[0]), str(days[2])),
        "amount": (str(days[1]), str(days[3])),
    }
    assert incidents["amount"]["incident_id"] == f"fraud/inputs_within_drift_limits[amount]/{days[1]}"
    assert incidents["amount"]["detail"] == "amount: missing_rate_delta +0.2, limit 0.05"
    told = [m["text"] for _, m in handler.received]
    assert told[1] == (
        ":warning: [warn] fraud: SLO inputs_within_drift_limits breached for amount: drifting_inputs = 1"
        " (amount: missing_rate_delta +0.2, limit 0.05)"
    )
    assert len(told) == 4 and told[2].startswith(
        ":white_check_mark: fraud: SLO inputs_within_drift_limits recovered for merchant_id"
    )
    assert tick(None)[0] == []  # a lost cursor re-launches nothing


def test_each_version_of_a_per_version_slo_opens_and_closes_its_own_incident(loop, registry, lake):
    _, _, tick = loop
    hours = [HOUR + dt.timedelta(hours=i) for i in range(3)]

    def versioned(period, version, state, value, change, since):
        return {
            **evaluation("p95_latency_ceiling", period, state, value, change, since),
            "subject": version,
            "version": version,
        }

    record(
        lake,
        versioned(hours[0], "v3", "breached", 9_000.0, "breached", hours[0]),
        versioned(hours[0], "v4", "ok", 1_000.0, None, None),
    )
    record(
        lake,
        versioned(hours[1], "v3", "breached", 9_000.0, None, hours[0]),
        versioned(hours[1], "v4", "breached", 8_000.0, "breached", hours[1]),
    )
    record(
        lake,
        versioned(hours[2], "v3", "ok", 1_000.0, "recovered", hours[0]),
        versioned(hours[2], "v4", "breached", 8_000.0, None, hours[1]),
    )
    tick(None)
    state = {i["subject"]: i["state"] for i in read_incidents(lake, "ticket_triage")}
    assert state == {"v3": "closed", "v4": "open"}


def test_concurrent_attempts_at_one_transition_act_once_and_tell_the_owner_once(registry, lake):
    """Eight runs handle the same breach at once (two backfills, a rerun, the daemon and the CLI): one
    incident, one runbook action, one message."""
    import threading

    from closedloop.control.incidents import OPENED, apply_transition, transitions
    from closedloop.control.runbook import carry_out, notify
    from closedloop.control.webhook import Delivery

    record(lake, evaluation("p95_latency_ceiling", HOUR, "breached", 12_600.0, "breached", HOUR))
    [row] = transitions(lake, "ticket_triage")[0]
    triage = registry.model("ticket_triage")
    sent, start = [], threading.Barrier(8)

    def post(message: dict) -> Delivery:
        sent.append(message)
        return Delivery(True, 1, 200)

    def attempt() -> None:
        start.wait()
        change = apply_transition(lake, triage, row, dt.datetime.now(UTC))
        if change is not None and change.change == OPENED:
            incident = carry_out(lake, triage, change.incident, dt.datetime.now(UTC))
            notify(lake, incident, change.change, lambda route: post, registry.alerts, dt.datetime.now(UTC))

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(read_incidents(lake, "ticket_triage")) == 1
    assert [a["type"] for a in read_actions(lake, "ticket_triage")] == ["fallback"]
    assert len(sent) == 1


@pytest.fixture
def failing_webhook(request, webhook_server, dead_webhook_url):
    """A webhook that fails the way ``request.param`` says (refuses connections, answers 500, or never
    answers within the timeout), and the URL of one that works: (failing URL, working URL, receiver)."""
    import http.server
    import threading

    url, handler = webhook_server
    if request.param == "refused":
        yield dead_webhook_url, url, handler
    elif request.param == "500":
        broken = type("Broken", (handler,), {"status": 500, "received": []})
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), broken)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{httpd.server_address[1]}/hook", url, handler
        httpd.shutdown()
        httpd.server_close()
    else:
        answer = threading.Event()

        class Stalling(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                answer.wait()  # until the test is over: every attempt times out

            def log_message(self, *args):
                pass

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stalling)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{httpd.server_address[1]}/hook", url, handler
        answer.set()
        httpd.shutdown()
        httpd.server_close()


def told_long_ago(lake, model: str) -> None:
    """Make the incident's last attempt to tell its owner an hour old, as if the time had passed."""
    from closedloop.control.incidents import record_incident

    [incident] = read_incidents(lake, model)
    record_incident(lake, {**incident, "notified_at": incident["notified_at"] - dt.timedelta(hours=1)})


@pytest.mark.parametrize("failing_webhook", ["refused", "500", "timeout"], indirect=True)
def test_a_message_that_did_not_reach_the_owner_is_sent_again_once_the_webhook_recovers(loop, lake, failing_webhook):
    down, up, receiver = failing_webhook
    _, _, tick = loop
    failing = WebhookResource(url=down, retries=1, backoff_seconds=0.01, timeout_seconds=0.2)
    record(lake, evaluation("p95_latency_ceiling", HOUR, "breached", 12_600.0, "breached", HOUR))
    [first], cursor = tick(None, failing)
    assert first.tags["run_success"] == "False"  # the run log says the owner was not told
    [incident] = read_incidents(lake, "ticket_triage")
    assert (incident["state"], incident["action_result"]) == ("open", "applied")  # recorded and acted on all the same
    assert incident["notification"].startswith("opened: failed after 2 attempts: ")
    assert (incident["undelivered"], incident["delivery_failures"]) == ("opened", 1)

    working = WebhookResource(url=up)
    assert tick(cursor, working)[0] == []  # the next tick comes too soon after the failure: it backs off
    told_long_ago(lake, "ticket_triage")
    [again], cursor = tick(cursor, working)
    assert again.run_key == f"ticket_triage/p95_latency_ceiling/{HOUR.isoformat()}:breached:redelivery 1"
    assert again.tags["run_success"] == "True"
    [(_, message)] = receiver.received
    assert message["text"].startswith(":rotating_light: [page] ticket_triage: SLO p95_latency_ceiling breached")
    [incident] = read_incidents(lake, "ticket_triage")
    assert incident["notification"].endswith("; opened: delivered (1 attempt)")
    assert (incident["undelivered"], incident["delivery_failures"]) == (None, 0)
    assert len(read_actions(lake, "ticket_triage")) == 1  # the action was not taken again
    told_long_ago(lake, "ticket_triage")
    assert tick(cursor, working)[0] == []  # delivered: nothing more to send


def test_rerunning_a_failed_incident_run_sends_what_was_not_delivered(loop, lake, dead_webhook_url, webhook_server):
    url, receiver = webhook_server
    defs, instance, tick = loop
    record(lake, evaluation("p95_latency_ceiling", HOUR, "breached", 12_600.0, "breached", HOUR))
    [failed], _ = tick(None, WebhookResource(url=dead_webhook_url, retries=0))
    rerun = defs.get_job_def(INCIDENT_JOB).execute_in_process(
        run_config=failed.run_config, instance=instance, resources={"lake": defs.resources["lake"],
        "webhook": WebhookResource(url=url)}
    )  # fmt: skip
    assert rerun.success and len(receiver.received) == 1
    [incident] = read_incidents(lake, "ticket_triage")
    assert incident["undelivered"] is None and len(read_actions(lake, "ticket_triage")) == 1


def test_status_lists_the_owners_not_told_yet(loop, lake, dead_webhook_url, capsys, monkeypatch):
    from orchestration import cli

    monkeypatch.setenv("CLOSEDLOOP_LAKE", str(lake.root))
    monkeypatch.setenv("CLOSEDLOOP_LANDING", str(lake.landing))
    _, _, tick = loop
    record(lake, evaluation("p95_latency_ceiling", HOUR, "breached", 12_600.0, "breached", HOUR))
    tick(None, WebhookResource(url=dead_webhook_url, retries=0))
    assert cli.main(["status", "--model", "ticket_triage"]) == 0
    out = capsys.readouterr().out
    assert "owners not told yet: 1" in out
    assert f"ticket_triage/p95_latency_ceiling/{HOUR.isoformat()}: the opened message failed 1 time" in out
