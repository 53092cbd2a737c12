"""What every command shares: user errors, the registry and lake, output as text or JSON, progress bars."""

import argparse
import datetime as dt
import getpass
import json
import sys
from pathlib import Path

from closedloop.core.lake import Lake
from closedloop.core.names import InvalidNameError, checked_day
from closedloop.core.specs import Registry
from closedloop.registry import registry_from_environment

DEMO_DAYS = 60
DEMO_SEED = 7


class UserError(Exception):
    """Something the user can fix; printed as one line."""


def parse_date(value: str) -> dt.date:
    try:
        return checked_day(value)
    except InvalidNameError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_time(value: str) -> dt.datetime:
    """An ISO time (``2026-09-20T18:00``, ``...Z``, ``...+02:00``); without a zone it is UTC."""
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO time: use e.g. 2026-09-20T18:00 (UTC) or 2026-09-20T18:00+02:00"
        ) from None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def load(args: argparse.Namespace) -> Registry:
    """The registry, with every SLO's metric source and business SQL checked (load_registry does)."""
    return registry_from_environment(args.config)


def check_within_partitions(registry: Registry, name: str, start: dt.date, end: dt.date) -> None:
    """Refuse days outside the model's daily partitions, naming the registry key that bounds them."""
    model = registry.model(name)
    if start < model.start_date:
        raise UserError(
            f"{start} is before {name}'s first partition {model.start_date} (models.{name}.start_date in "
            f"{registry.path})"
        )
    if model.end_date is not None and end > model.end_date:
        raise UserError(
            f"{end} is after {name}'s last partition {model.end_date} (models.{name}.end_date in {registry.path})"
        )


def lake_of(registry: Registry) -> Lake:
    return Lake(root=registry.lake, landing=registry.landing)


def emit(payload: dict, as_json: bool, text: str) -> None:
    print(json.dumps(payload, default=str) if as_json else text)


def progress(total: int, description: str, quiet: bool, unit: str = "step"):
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit=unit, disable=quiet, file=sys.stderr, leave=False)


def this_command() -> str:
    """How the user can call this command again (``.venv/bin/closedloop`` inside the project)."""
    invoked = Path(sys.argv[0])
    try:
        return str(invoked.resolve().relative_to(Path.cwd()))
    except ValueError:
        return invoked.name


def who(args: argparse.Namespace) -> str:
    return args.who or f"cli:{getpass.getuser()}"


def incident_lines(incidents: list[dict], matches: dict | None = None) -> list[str]:
    lines = []
    for i in incidents:
        scope = f" {i['version']}" if i["version"] not in (None, "all") and i["subject"] != i["version"] else ""
        slo = f"{i['slo']}[{i['subject']}]" if i["subject"] else i["slo"]
        closed = f"closed {i['closed']}" if i["closed"] else "open"
        line = f"  {i['model']:<14} {i['opened']:<26} {slo:<28} {i['metric']}{scope} = {i['value']:.4g}; {closed}"
        line += f"\n{'':<18}{i['detail']}" if i["subject"] and i["detail"] else ""
        action = i["action"] if i["action"] == "notify" else f"{i['action']} ({i['action_mode']})"
        line += f"\n{'':<18}{action}: {i['action_result'] or 'not carried out yet'}"
        if i.get("acknowledged_by"):
            line += f"\n{'':<18}acknowledged by {i['acknowledged_by']} at {i['acknowledged_at']:%Y-%m-%d %H:%M} UTC"
        elif i.get("silenced") and i["state"] == "open":
            line += f"\n{'':<18}silenced ({i['silenced']})"
        if matches is not None:
            truth = matches.get(i["incident_id"])
            line += f"; matches {truth}" if truth else "; FALSE ALERT (no injected incident)"
        lines.append(line)
    return lines or ["  none"]
