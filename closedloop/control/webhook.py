"""Telling an incident's owner: a Slack-compatible JSON message posted to a webhook.

Delivery never raises: a webhook that is down must not stop the incident from being recorded
or the runbook action from running, so the caller gets a ``Delivery`` (ok, attempts, error)
to record and show instead.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from closedloop.core.specs import DEFAULT_WEBHOOK_VARIABLE, AlertRoute

WEBHOOK_ENVIRONMENT_VARIABLE = DEFAULT_WEBHOOK_VARIABLE


@dataclass(frozen=True)
class Delivery:
    """How posting went: ``ok`` after a 2xx answer, else the last ``error``; ``attempts`` made."""

    ok: bool
    attempts: int
    status: int | None = None
    error: str | None = None


def webhook_url(environ: Mapping[str, str] = os.environ, variable: str = WEBHOOK_ENVIRONMENT_VARIABLE) -> str | None:
    """The webhook URL in ``variable`` (a route's ``url_env``, by default ``CLOSEDLOOP_WEBHOOK_URL``);
    None (nobody is messaged) when unset or empty."""
    return environ.get(variable) or None


def _bound(incident: Mapping) -> str:
    if incident.get("band_low") is not None:
        return f"in [{incident['band_low']:g}, {incident['band_high']:g}]"
    return f"{incident['comparison']} {incident['threshold']:g}"


def incident_message(incident: Mapping, reminder: int = 0) -> dict:
    """A Slack-compatible message (``text`` plus ``blocks``) for an incident opened or closed, naming
    its subject (a version, an input column) and the figure behind the value; with ``reminder``, the
    reminder of that number for an incident still open that nobody acknowledged."""
    opened = incident["state"] == "open"
    value = "no data" if incident.get("value") is None else f"{incident['value']:.4g}"
    icon = ":rotating_light:" if incident["severity"] == "page" else ":warning:"
    subject = incident.get("subject")
    about = f" for {subject}" if subject else ""
    headline = (
        f"{icon} [{incident['severity']}] {incident['model']}: SLO {incident['slo']} breached{about}"
        if opened
        else f":white_check_mark: {incident['model']}: SLO {incident['slo']} recovered{about}"
    )
    if opened and reminder:
        headline = (
            f"{icon} [{incident['severity']}] {incident['model']}: SLO {incident['slo']} still breached{about}, "
            f"unacknowledged (reminder {reminder})"
        )
    context = f"incident {incident['incident_id']}"
    if opened:
        context += f" · acknowledge: closedloop ack {incident['incident_id']} --who YOU"
    version = incident.get("version")
    scope = f" ({version})" if version not in (None, "all") else ""
    lines = [
        f"*{incident['metric']}*{scope} = {value} (SLO: {_bound(incident)}) since {incident['opened']}",
        f"Owner: {incident['owner']} · Action: {incident['action']} ({incident['action_mode']})"
        + (f": {incident['action_result']}" if incident.get("action_result") else "")
        + ("" if opened else f" · Closed: {incident['closed']}"),
    ]
    if incident.get("detail"):
        lines.append(incident["detail"])
    return {
        "text": f"{headline}: {incident['metric']}{scope} = {value}"
        + (f" ({incident['detail']})" if subject and incident.get("detail") else ""),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{headline}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }


def trial_message(route: AlertRoute, takes: list[str]) -> dict:
    """What ``closedloop alerts test`` posts through a route: which incidents would come this way."""
    headline = f":test_tube: closedloop test message through route {route.name} ({route.url_env})"
    what = "; ".join(takes) if takes else "no incident of these models (the default route: run failures)"
    return {
        "text": f"{headline}: {what}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{headline}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"Incidents sent this way: {what}"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "nothing is wrong: this is a test"}]},
        ],
    }


def run_failure_message(job: str, run_id: str, error: str, model: str | None) -> dict:
    """A Slack-compatible message for a failed closedloop run (a pipeline, an incident job, ...)."""
    headline = f":x: closedloop run failed: {job}" + (f" ({model})" if model else "")
    return {
        "text": f"{headline}: {error}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{headline}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": error}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"run {run_id}"}]},
        ],
    }


def post_json(
    url: str,
    payload: Mapping,
    *,
    timeout: float = 5.0,
    retries: int = 3,
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """POST ``payload`` as JSON; retry ``retries`` times on errors, timeouts, 429 and 5xx, waiting
    ``backoff``, then twice as long each time. Other 4xx answers are final (retrying cannot help)."""
    body = json.dumps(payload).encode()
    error, status = None, None
    for attempt in range(1, retries + 2):
        request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return Delivery(True, attempt, response.status)
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code} {exc.reason}"
            if exc.code != 429 and exc.code < 500:
                return Delivery(False, attempt, status, error)
        except (urllib.error.URLError, OSError) as exc:
            status, error = None, f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        if attempt <= retries:
            sleep(backoff * 2 ** (attempt - 1))
    return Delivery(False, retries + 1, status, error)
