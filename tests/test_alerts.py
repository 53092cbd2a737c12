"""Alert routes, acknowledgements, silences and reminders, through the sensors and jobs, on real local webhooks.

The registry here is the tests' own with an ``alerts`` block: page incidents go to the pager
route, the support team's to theirs, the rest to CLOSEDLOOP_WEBHOOK_URL; page incidents left
alone are reminded of after an hour.
"""

import datetime as dt
import json
import os
import re

import dagster as dg
import pytest
import yaml

from closedloop.control.alerts import (
    AlertError,
    acknowledge,
    add_silence,
    read_acknowledgements,
    read_silences,
)
from closedloop.control.incidents import read_incidents, record_incident
from closedloop.core.lake import Lake
from closedloop.registry import load_registry
from orchestration import cli
from orchestration.definitions import build_definitions
from orchestration.runbook_jobs import INCIDENT_JOB, RENOTIFY_JOB
from orchestration.sensors import INCIDENT_SENSOR, REMINDER_SENSOR, reminder_run_requests
from tests.helpers import HOUR, TEST_REGISTRY, tick_sensor, triage_evaluation
from tests.helpers import record_triage_evaluations as record

UTC = dt.UTC
P95 = "p95_latency_ceiling"
P95_INCIDENT = f"ticket_triage/{P95}/{HOUR.isoformat()}"
ALERTS = {
    "renotify_after": "1h",
    "routes": [
        {"name": "pager", "url_env": "PAGER_URL", "match": {"severity": "page"}},
        {"name": "support", "url_env": "SUPPORT_URL", "match": {"owner": "team:support-ml"}},
    ],
}


@pytest.fixture
def alerting(tmp_path, monkeypatch):
    """The tests' registry with the alerts block above, on a temporary lake (the command line reads it too)."""
    document = yaml.safe_load(TEST_REGISTRY.read_text())
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump({**document, "alerts": ALERTS, "landing": "landing", "lake": "lake"}))
    monkeypatch.setenv("CLOSEDLOOP_CONFIG", str(path))
    return load_registry(path)


@pytest.fixture
def alake(alerting):
    return Lake(root=alerting.lake, landing=alerting.landing)


@pytest.fixture
def loop(alerting):
    """Tick the incident sensor or the reminder sensor once and run what it asks for, on one instance."""
    defs = build_definitions(alerting)
    instance = dg.DagsterInstance.ephemeral()
    sensors = {INCIDENT_JOB: defs.get_sensor_def(INCIDENT_SENSOR), RENOTIFY_JOB: defs.get_sensor_def(REMINDER_SENSOR)}

    def tick(job: str, cursor: str | None = None) -> tuple[list, str | None]:
        return tick_sensor(defs, instance, sensors[job], job, cursor)

    return tick


@pytest.fixture
def pager(webhook_servers, monkeypatch):
    """The pager route's webhook (PAGER_URL) on a local server; CLOSEDLOOP_WEBHOOK_URL is unset."""
    url, handler = webhook_servers()
    monkeypatch.setenv("PAGER_URL", url)
    monkeypatch.delenv("CLOSEDLOOP_WEBHOOK_URL", raising=False)
    return handler


def a_warning(slo: str, owner: str, period: dt.datetime) -> dict:
    return {**triage_evaluation(slo, period, "breached", 0.8, "breached", period), "severity": "warn", "owner": owner}


def slos_told(handler) -> list[str]:
    """The SLO each message a webhook received was about, in order."""
    return [re.search(r"SLO (\w+)", message["text"]).group(1) for _, message in handler.received]


def hours_ago(lake: Lake, identifier: str, hours: float) -> dict:
    """Make the incident's last message ``hours`` old, as if that much time had passed since."""
    [incident] = [i for i in read_incidents(lake, "ticket_triage") if i["incident_id"] == identifier]
    told = dt.datetime.now(UTC) - dt.timedelta(hours=hours)
    return record_incident(lake, {**incident, "notified_at": told, "opened_at": told})


def test_each_incident_goes_through_the_first_route_that_takes_it(alake, loop, pager, webhook_servers, monkeypatch):
    support_url, support = webhook_servers()
    monkeypatch.setenv("SUPPORT_URL", support_url)
    record(
        alake,
        triage_evaluation(P95, HOUR, "breached", 12_600.0, "breached", HOUR),  # page: the pager
        a_warning("auc_7d_floor", "team:support-ml", HOUR),  # support's warning: their route
        a_warning("reviews_arriving", "team:llm-platform", HOUR),  # nobody's route: the default
    )
    requests, _ = loop(INCIDENT_JOB)
    assert len(requests) == 3
    assert (slos_told(pager), slos_told(support)) == ([P95], ["auc_7d_floor"])
    told = {i["slo"]: i["notification"] for i in read_incidents(alake, "ticket_triage")}
    assert told == {
        P95: "opened: route pager: delivered (1 attempt)",
        "auc_7d_floor": "opened: route support: delivered (1 attempt)",
        "reviews_arriving": "opened: route default: no webhook configured (set CLOSEDLOOP_WEBHOOK_URL)",
    }
    # The message tells whoever is paged how to stop the reminders.
    [(_, message)] = pager.received
    assert f"closedloop ack {P95_INCIDENT} --who YOU" in message["blocks"][2]["elements"][0]["text"]


def test_a_route_whose_variable_is_unset_is_recorded_not_crashed_on(alake, loop, monkeypatch):
    monkeypatch.delenv("PAGER_URL", raising=False)
    record(alake, triage_evaluation(P95, HOUR, "breached", 12_600.0, "breached", HOUR))
    [request], _ = loop(INCIDENT_JOB)
    assert request.tags["run_success"] == "True"
    [incident] = read_incidents(alake, "ticket_triage")
    assert incident["notification"] == "opened: route pager: no webhook configured (set PAGER_URL)"


def test_a_page_incident_left_alone_is_reminded_of_once_per_period_and_never_twice(alerting, alake, loop, pager):
    record(alake, triage_evaluation(P95, HOUR, "breached", 12_600.0, "breached", HOUR))
    loop(INCIDENT_JOB)
    assert len(pager.received) == 1
    assert loop(RENOTIFY_JOB)[0] == []  # just told: nothing due

    hours_ago(alake, P95_INCIDENT, 1.5)
    [request], _ = loop(RENOTIFY_JOB)
    assert request.run_key == f"{P95_INCIDENT}:reminder 1" and request.tags["run_success"] == "True"
    assert len(pager.received) == 2
    reminder = pager.received[-1][1]["text"]
    assert reminder.startswith(
        ":rotating_light: [page] ticket_triage: SLO p95_latency_ceiling still breached, unacknowledged (reminder 1)"
    )
    [incident] = read_incidents(alake, "ticket_triage")
    assert incident["renotifications"] == 1
    assert incident["notification"] == (
        "opened: route pager: delivered (1 attempt); reminder 1: route pager: delivered (1 attempt)"
    )
    # A tick right after, a restart (no cursor to lose: the lake says who was told when), or the same
    # run launched again: nothing more is sent.
    assert loop(RENOTIFY_JOB)[0] == []
    assert loop(INCIDENT_JOB)[0] == []
    again = build_definitions(alerting).get_job_def(RENOTIFY_JOB)
    assert again.execute_in_process(run_config=request.run_config, instance=dg.DagsterInstance.ephemeral()).success
    assert len(pager.received) == 2

    # Another period alone: the second reminder, keyed by its own number.
    hours_ago(alake, P95_INCIDENT, 1.1)
    [second], _ = loop(RENOTIFY_JOB)
    assert second.run_key == f"{P95_INCIDENT}:reminder 2" and len(pager.received) == 3


def test_an_acknowledged_incident_is_not_reminded_of_but_its_recovery_is_told(alerting, alake, loop, pager):
    record(alake, triage_evaluation(P95, HOUR, "breached", 12_600.0, "breached", HOUR))
    loop(INCIDENT_JOB)
    now = dt.datetime.now(UTC)
    acked = acknowledge(alake, alerting.models, P95_INCIDENT, who="alice@example.com", now=now)
    assert (acked["acknowledged_by"], acked["acknowledged_at"]) == ("alice@example.com", now)
    [audit] = read_acknowledgements(alake, "ticket_triage")
    assert (audit["incident_id"], audit["who"]) == (P95_INCIDENT, "alice@example.com")
    # Acknowledging again keeps the first acknowledgement.
    again = acknowledge(alake, alerting.models, P95_INCIDENT, who="bob@example.com", now=now + dt.timedelta(hours=1))
    assert again["acknowledged_by"] == "alice@example.com" and len(read_acknowledgements(alake, "ticket_triage")) == 1

    hours_ago(alake, P95_INCIDENT, 5)
    assert loop(RENOTIFY_JOB)[0] == []
    assert (
        reminder_run_requests(alerting, build_definitions(alerting).resources["lake"], now + dt.timedelta(days=2)) == []
    )
    assert len(pager.received) == 1

    record(alake, triage_evaluation(P95, HOUR + dt.timedelta(hours=6), "ok", 2_300.0, "recovered", HOUR))
    loop(INCIDENT_JOB)
    assert pager.received[-1][1]["text"].startswith(
        ":white_check_mark: ticket_triage: SLO p95_latency_ceiling recovered"
    )
    [closed] = read_incidents(alake, "ticket_triage")
    assert closed["state"] == "closed" and closed["acknowledged_by"] == "alice@example.com"


def test_acknowledging_refuses_an_unknown_or_closed_incident(alerting, alake, loop):
    now = dt.datetime.now(UTC)
    for identifier in ("ticket_triage/p95_latency_ceiling/2026-01-01", "nope", "weather/p95/2026-01-01"):
        with pytest.raises(AlertError, match="no incident|is not an incident id"):
            acknowledge(alake, alerting.models, identifier, who="a@b.io", now=now)
    record(alake, triage_evaluation(P95, HOUR, "breached", 12_600.0, "breached", HOUR))
    record(alake, triage_evaluation(P95, HOUR + dt.timedelta(hours=1), "ok", 2_300.0, "recovered", HOUR))
    loop(INCIDENT_JOB)
    with pytest.raises(AlertError, match="closed at .* nothing left to acknowledge"):
        acknowledge(alake, alerting.models, P95_INCIDENT, who="a@b.io", now=now)
    assert read_acknowledgements(alake, "ticket_triage") == []


def test_a_silence_holds_back_messages_but_not_records_or_actions(alerting, alake, loop, pager):
    now = dt.datetime.now(UTC)
    until = now + dt.timedelta(hours=2)
    triage = alerting.model("ticket_triage")
    silence = add_silence(
        alake, triage, slo=None, until=until, who="carol@example.com", why="LLM vendor migration", now=now
    )
    record(alake, triage_evaluation(P95, HOUR, "breached", 12_600.0, "breached", HOUR))
    [request], cursor = loop(INCIDENT_JOB)
    assert request.tags["run_success"] == "True"
    assert pager.received == []
    [incident] = read_incidents(alake, "ticket_triage")
    assert (incident["state"], incident["action_result"], incident["silenced"]) == (
        "open",
        "applied",
        silence["silence_id"],
    )
    assert incident["notification"] == (
        f"opened: silenced until {until:%Y-%m-%d %H:%M} UTC by carol@example.com: LLM vendor migration"
    )
    # While the silence lasts, no reminder either; once it is over, the incident still open is told again.
    hours_ago(alake, P95_INCIDENT, 3)
    assert loop(RENOTIFY_JOB)[0] == []
    lake = build_definitions(alerting).resources["lake"]
    [after] = reminder_run_requests(alerting, lake, until + dt.timedelta(minutes=1))
    assert after.run_key == f"{P95_INCIDENT}:reminder 1"
    # The recovery inside the window is recorded, not told.
    record(alake, triage_evaluation(P95, HOUR + dt.timedelta(hours=1), "ok", 2_300.0, "recovered", HOUR))
    loop(INCIDENT_JOB, cursor)
    [closed] = read_incidents(alake, "ticket_triage")
    assert closed["state"] == "closed" and closed["notification"].endswith("; closed: " + incident["notification"][8:])
    assert pager.received == []
    [kept] = read_silences(alake, "ticket_triage")
    assert (kept["who"], kept["why"], kept["slo"], kept["until"]) == (
        "carol@example.com",
        "LLM vendor migration",
        None,
        until,
    )


def test_a_silence_on_one_slo_leaves_the_others_told(alerting, alake, loop, pager):
    now = dt.datetime.now(UTC)
    triage = alerting.model("ticket_triage")
    add_silence(
        alake, triage, slo="cost_ceiling", until=now + dt.timedelta(hours=1), who="a@b.io", why="repricing", now=now
    )
    record(
        alake,
        triage_evaluation(P95, HOUR, "breached", 12_600.0, "breached", HOUR),
        triage_evaluation("cost_ceiling", HOUR, "breached", 9.7, "breached", HOUR),
    )
    loop(INCIDENT_JOB)
    assert slos_told(pager) == [P95]
    told = {i["slo"]: i["notification"].split(" until")[0] for i in read_incidents(alake, "ticket_triage")}
    assert told == {P95: "opened: route pager: delivered (1 attempt)", "cost_ceiling": "opened: silenced"}


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"until": dt.timedelta(hours=-1)}, "is not in the future"),
        ({"starts": dt.timedelta(hours=3)}, "is not after the silence starts"),
        ({"slo": "p99_latency"}, "ticket_triage has no SLO 'p99_latency'"),
        ({"why": "  "}, "say why"),
    ],
)
def test_a_silence_that_makes_no_sense_is_refused(alerting, alake, changes, says):
    now = dt.datetime.now(UTC)
    arguments = {"slo": None, "until": now + dt.timedelta(hours=2), "who": "a@b.io", "why": "maintenance", "now": now}
    for key, value in changes.items():
        arguments[key] = now + value if isinstance(value, dt.timedelta) else value
    with pytest.raises(AlertError, match=says):
        add_silence(alake, alerting.model("ticket_triage"), **arguments)
    assert read_silences(alake, "ticket_triage") == []


def test_without_renotify_after_nobody_is_reminded(registry, lake):
    record(lake, triage_evaluation(P95, HOUR, "breached", 12_600.0, "breached", HOUR))
    defs = build_definitions(registry)
    instance = dg.DagsterInstance.ephemeral()
    tick_sensor(defs, instance, defs.get_sensor_def(INCIDENT_SENSOR), INCIDENT_JOB)
    hours_ago(lake, P95_INCIDENT, 48)
    result = defs.get_sensor_def(REMINDER_SENSOR)(dg.build_sensor_context(instance=instance, resources=defs.resources))
    assert isinstance(result, dg.SkipReason) and "reminders are off" in str(result.skip_message)


# The command line: alerts test, ack, silence


def test_alerts_test_posts_through_each_route_and_says_what_answered(
    alerting, pager, dead_webhook_url, monkeypatch, capsys
):
    monkeypatch.setenv("SUPPORT_URL", dead_webhook_url)
    assert cli.main(["alerts", "test", "--json"]) == 1  # not every route answered
    routes = {r["route"]: r for r in json.loads(capsys.readouterr().out)["routes"]}
    assert list(routes) == ["pager", "support", "default"]
    assert (routes["pager"]["ok"], routes["pager"]["status"], routes["pager"]["attempts"]) == (True, 200, 1)
    assert routes["pager"]["takes"] == [
        "fraud/review_rate_in_band",
        "fraud/score_distribution_stable",
        f"ticket_triage/{P95}",
        "ticket_triage/cost_ceiling",
    ]
    assert routes["support"]["ok"] is False and routes["support"]["error"].startswith("URLError")
    assert (routes["default"]["set"], routes["default"]["error"]) == (False, "CLOSEDLOOP_WEBHOOK_URL is not set")
    [(_, message)] = pager.received
    assert message["text"].startswith(":test_tube: closedloop test message through route pager (PAGER_URL)")

    # One model: only the routes its incidents go through; every one answering exits 0.
    monkeypatch.setenv("CLOSEDLOOP_WEBHOOK_URL", os.environ["PAGER_URL"])
    assert cli.main(["alerts", "test", "--model", "fraud"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "route pager (PAGER_URL): fraud/review_rate_in_band, fraud/score_distribution_stable"
    assert lines[1] == "  answered HTTP 200 (1 attempt)"
    assert lines[2] == "route default (CLOSEDLOOP_WEBHOOK_URL): fraud/inputs_within_drift_limits, fraud/auc_30d_floor"
    assert len(lines) == 4 and len(pager.received) == 3


def test_ack_from_the_command_line_records_who_and_refuses_an_unknown_incident(alake, loop, capsys):
    record(alake, triage_evaluation(P95, HOUR, "breached", 12_600.0, "breached", HOUR))
    loop(INCIDENT_JOB)
    capsys.readouterr()  # the incident run's log
    assert cli.main(["ack", "ticket_triage/p95_latency_ceiling/2026-09-17", "--who", "alice@example.com"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line == (
        "closedloop ack: no incident 'ticket_triage/p95_latency_ceiling/2026-09-17'; "
        "the open ones are listed by `closedloop status`"
    )
    assert cli.main(["ack", P95_INCIDENT, "--who", "alice@example.com"]) == 0
    assert capsys.readouterr().out.startswith(f"acknowledged {P95_INCIDENT} by alice@example.com at ")
    assert cli.main(["ack", P95_INCIDENT, "--who", "bob@example.com", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert (answer["changed"], answer["incident"]["acknowledged_by"]) == (False, "alice@example.com")
    assert cli.main(["status", "--model", "ticket_triage"]) == 0
    assert "acknowledged by alice@example.com at " in capsys.readouterr().out


def test_silence_from_the_command_line_refuses_the_past_and_is_listed_by_status(alake, capsys):
    args = ["silence", "--model", "ticket_triage", "--slo", "cost_ceiling", "--reason", "repricing", "--who", "a@b.io"]
    assert cli.main([*args, "--until", "2020-01-01T00:00"]) == 2
    assert "until 2020-01-01T00:00:00+00:00 is not in the future" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main([*args, "--until", "tonight"])
    assert "'tonight' is not an ISO time" in capsys.readouterr().err
    assert read_silences(alake, "ticket_triage") == []

    until = (dt.datetime.now(UTC) + dt.timedelta(hours=3)).replace(second=0, microsecond=0)
    assert cli.main([*args, "--until", until.isoformat(), "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    [kept] = read_silences(alake, "ticket_triage")
    assert (kept["silence_id"], kept["slo"], kept["until"], kept["who"]) == (
        made["silence_id"],
        "cost_ceiling",
        until,
        "a@b.io",
    )
    assert cli.main(["status", "--json"]) == 0
    assert [s["silence_id"] for s in json.loads(capsys.readouterr().out)["silences"]] == [kept["silence_id"]]
