"""What is served and the commands that change it: ``serving``, ``actions``, ``approve``/``reject``,
``rollback`` and ``fallback``, every change audited."""

import argparse
import datetime as dt
import json

from closedloop.control.serving import ControlError, approve, read_actions, read_serving, reject, request_action
from closedloop.control.status import action_owner
from closedloop.core.specs import RunbookAction
from orchestration.cli.common import UserError, emit, lake_of, load, who


def _action_line(row: dict) -> str:
    return (
        f"{row['action_id']}  {row['model']:<14} {row['type']:<12} {row['mode']:<8} {row['state']:<9} "
        f"{row['requested_at']:%Y-%m-%d %H:%M}  {row['why']}"
    )


def cmd_actions(args: argparse.Namespace) -> int:
    registry = load(args)
    models = [registry.model(args.model).name] if args.model else list(registry.models)
    rows = [row for name in models for row in read_actions(lake_of(registry), name, args.state)]
    lines = [_action_line(row) for row in rows] or [f"no {args.state or ''} actions".replace("  ", " ")]
    emit({"actions": rows}, args.json, "\n".join(lines))
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    registry = load(args)
    lake = lake_of(registry)
    models = [registry.model(args.model).name] if args.model else list(registry.models)
    owner = action_owner(lake, models, args.action_id)
    if owner is None:
        raise UserError(f"no action {args.action_id!r} for {', '.join(models)}; list them with `closedloop actions`")
    decide = approve if args.command == "approve" else reject
    try:
        row = decide(lake, registry.model(owner), args.action_id, who=who(args), now=dt.datetime.now(dt.UTC))
    except ControlError as exc:
        raise UserError(str(exc)) from None
    text = f"{row['state']}: {_action_line(row)}"
    if row["state"] == "applied":
        text += f"\nserving file {lake.serving_path(owner)}: {row['after']}"
    emit(row, args.json, text)
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    registry = load(args)
    model = registry.model(args.model)
    action = RunbookAction(type="rollback", mode="auto", params={"to": args.to} if args.to else {})
    try:
        row = request_action(lake_of(registry), model, action, why=args.why, who=who(args), now=dt.datetime.now(dt.UTC))
    except ControlError as exc:
        raise UserError(str(exc)) from None
    before, after = json.loads(row["before"]), json.loads(row["after"])
    text = f"{model.name}: {before['active_version']} -> {after['active_version']} (audit row {row['action_id']})"
    emit(row, args.json, text)
    return 0


def serving_line(name: str, state: dict) -> str:
    """One model's serving file in a line: what ``serving`` and ``status`` print."""
    weights = ", ".join(f"{version} {weight:.0%}" for version, weight in sorted(state["weights"].items()))
    fallback = "ON: requests go to the fallback" if state["fallback"] else "off"
    calibrator = "none" if state["calibrator"] is None else "fitted"
    return (
        f"{name:<14} active {state['active_version']}  threshold {state['threshold']}  weights {weights}  "
        f"fallback {fallback}  calibrator {calibrator}"
    )


def cmd_serving(args: argparse.Namespace) -> int:
    registry = load(args)
    lake = lake_of(registry)
    models = [registry.model(args.model)] if args.model else list(registry.models.values())
    states = {model.name: read_serving(lake, model) for model in models}
    lines = [f"{serving_line(name, state)}  ({lake.serving_path(name)})" for name, state in states.items()]
    emit({"serving": states}, args.json, "\n".join(lines))
    return 0


def cmd_fallback(args: argparse.Namespace) -> int:
    registry = load(args)
    model = registry.model(args.model)
    action = RunbookAction(type="fallback", mode="auto", params={"enabled": args.state == "on"})
    try:
        row = request_action(lake_of(registry), model, action, why=args.why, who=who(args), now=dt.datetime.now(dt.UTC))
    except ControlError as exc:
        raise UserError(str(exc)) from None
    after = json.loads(row["after"])
    text = f"{model.name}: fallback {'on' if after['fallback'] else 'off'} (audit row {row['action_id']})"
    emit(row, args.json, text)
    return 0
