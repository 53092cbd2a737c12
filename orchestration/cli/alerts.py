"""Commands about who hears of incidents: ``alerts test``, ``ack`` and ``silence``, all kept in the lake."""

import argparse
import datetime as dt
import os

from closedloop.control.alerts import AlertError, acknowledge, add_silence, route_plan
from closedloop.control.webhook import post_json, trial_message, webhook_url
from orchestration.cli.common import UserError, emit, lake_of, load, who


def cmd_alerts(args: argparse.Namespace) -> int:
    """Post a test message through every route that applies and say what answered; 1 if any did not."""
    registry = load(args)
    models = [registry.model(args.model)] if args.model else list(registry.models.values())
    results = []
    for route, takes in route_plan(registry.alerts, models, every_route=args.model is None):
        url = webhook_url(os.environ, route.url_env)
        row = {"route": route.name, "url_env": route.url_env, "takes": takes, "set": url is not None}
        if url is not None:
            delivery = post_json(url, trial_message(route, takes), retries=1, backoff=0.2)
            row |= {
                "ok": delivery.ok,
                "status": delivery.status,
                "attempts": delivery.attempts,
                "error": delivery.error,
            }
        else:
            row |= {"ok": False, "status": None, "attempts": 0, "error": f"{route.url_env} is not set"}
        results.append(row)
    lines = []
    for row in results:
        lines.append(f"route {row['route']} ({row['url_env']}): " + (", ".join(row["takes"]) or "takes no SLO here"))
        if not row["set"]:
            answer = f"not sent: {row['url_env']} is not set (export {row['url_env']}=<the webhook URL>)"
        else:
            tries = f"{row['attempts']} attempt{'s' if row['attempts'] != 1 else ''}"
            answer = (
                f"answered HTTP {row['status']} ({tries})" if row["ok"] else f"failed after {tries}: {row['error']}"
            )
        lines.append(f"  {answer}")
    emit({"routes": results}, args.json, "\n".join(lines))
    return 0 if all(row["ok"] for row in results) else 1


def cmd_ack(args: argparse.Namespace) -> int:
    registry = load(args)
    now = dt.datetime.now(dt.UTC)
    try:
        incident = acknowledge(lake_of(registry), registry.models, args.incident_id, who=who(args), now=now)
    except AlertError as exc:
        raise UserError(str(exc)) from None
    first = incident["acknowledged_at"] == now
    by = f"by {incident['acknowledged_by']} at {incident['acknowledged_at']:%Y-%m-%d %H:%M} UTC"
    text = (
        f"acknowledged {incident['incident_id']} {by}: no more reminders; its recovery will still be told"
        if first
        else f"{incident['incident_id']} was acknowledged already, {by}; nothing changed"
    )
    emit({"incident": incident, "changed": first}, args.json, text)
    return 0


def cmd_silence(args: argparse.Namespace) -> int:
    registry = load(args)
    model = registry.model(args.model)
    now = dt.datetime.now(dt.UTC)
    try:
        silence = add_silence(
            lake_of(registry),
            model,
            slo=args.slo,
            until=args.until,
            starts=args.starts,
            who=who(args),
            why=args.reason,
            now=now,
        )
    except AlertError as exc:
        raise UserError(f"{exc}; nothing was silenced") from None
    scope = f"{model.name} SLO {args.slo}" if args.slo else f"every SLO of {model.name}"
    text = (
        f"silenced {scope} from {silence['starts']:%Y-%m-%d %H:%M} until {silence['until']:%Y-%m-%d %H:%M} UTC "
        f"({silence['silence_id']}, by {silence['who']}: {silence['why']}); its SLOs are still evaluated and its "
        "incidents still recorded and acted on, but nobody is messaged"
    )
    emit(silence, args.json, text)
    return 0
