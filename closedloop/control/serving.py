"""Runbook actions: changes to the serving control file, each with an audit row.

``<lake>/serving/<model>.json`` is what the model's service reads: the active version, traffic
weights per version, the fallback flag (kill switch), the threshold and the calibrator. Every
change replaces the file atomically and appends an ``actions`` row (who, when, why, before,
after). An action in ``propose`` mode is recorded as pending and changes nothing until a person
approves it (``approve``) or rejects it (``reject``); ``auto`` applies it at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc

from closedloop.core.lake import Lake
from closedloop.core.specs import ModelSpec, RunbookAction

SUPPORTED_ACTIONS = ("notify", "rollback", "dial", "fallback", "recalibrate")

ACTIONS_SCHEMA = pa.schema(
    [
        ("action_id", pa.string()),
        ("model", pa.string()),
        ("type", pa.string()),
        ("params", pa.string()),  # JSON
        ("mode", pa.string()),  # auto, propose
        ("state", pa.string()),  # pending, applied, rejected
        ("why", pa.string()),  # e.g. the incident id
        ("requested_by", pa.string()),
        ("requested_at", pa.timestamp("us", tz="UTC")),
        ("decided_by", pa.string()),
        ("decided_at", pa.timestamp("us", tz="UTC")),
        ("before", pa.string()),  # the serving file before (JSON), when applied
        ("after", pa.string()),  # the serving file after (JSON), when applied
        ("day", pa.date32()),  # the day it was requested: its lake partition
    ]
)


class ControlError(ValueError):
    """An action that cannot be carried out; the message says why."""


def default_serving(model: ModelSpec) -> dict:
    """The serving state before any action: the latest released version takes all traffic."""
    latest = model.versions_by_release[-1]
    return {"model": model.name, "active_version": latest, "weights": {latest: 1.0}, "fallback": False,
            "threshold": model.threshold(latest), "calibrator": None}  # fmt: skip


def read_serving(lake: Lake, model: ModelSpec) -> dict:
    """The serving file, or the default state when no action has written it yet."""
    path = lake.serving_path(model.name)
    return json.loads(path.read_text()) if path.exists() else default_serving(model)


def write_serving(lake: Lake, model: ModelSpec, serving: Mapping) -> None:
    """Replace the serving file atomically: the service never reads half a file."""
    lake.write_file(lake.serving_path(model.name), (json.dumps(serving, indent=2, sort_keys=True) + "\n").encode())


def changed_serving(model: ModelSpec, serving: Mapping, action_type: str, params: Mapping) -> dict:
    """The serving state after an action (pure): what each runbook action means for the file."""
    after = json.loads(json.dumps(serving))
    if action_type == "notify":
        return after
    if action_type == "rollback":
        target = params.get("to") or _previous_version(model, serving["active_version"])
        if target not in model.versions:
            raise ControlError(f"cannot roll {model.name} back to {target!r}; versions: {list(model.versions)}")
        # A calibrator is fitted to one version's scores: the version rolled back to serves without it.
        return {
            **after,
            "active_version": target,
            "weights": {target: 1.0},
            "threshold": model.threshold(target),
            "calibrator": None,
        }
    if action_type == "dial":
        weights = {str(v): float(w) for v, w in dict(params.get("weights") or {}).items()}
        unknown = sorted(set(weights) - set(model.versions))
        if not weights or unknown or abs(sum(weights.values()) - 1.0) > 1e-6:
            raise ControlError(f"dial weights {weights} must name versions of {list(model.versions)} and sum to 1")
        return {**after, "weights": weights}
    if action_type == "fallback":
        return {**after, "fallback": bool(params.get("enabled", True))}
    if action_type == "recalibrate":
        calibrator, threshold = params.get("calibrator"), params.get("threshold")
        if not isinstance(calibrator, Mapping) or not isinstance(threshold, float | int):
            raise ControlError(
                "a recalibrate action needs a fitted calibrator and its threshold (params.calibrator, "
                "params.threshold); "
                "the incident job fits them from matured labels (closedloop.evaluation.recalibration)"
            )
        if calibrator.get("version") != serving["active_version"]:
            raise ControlError(
                f"the calibrator was fitted to {calibrator.get('version')} but {model.name} serves "
                f"{serving['active_version']}"
            )
        return {**after, "calibrator": dict(calibrator), "threshold": float(threshold)}
    raise ControlError(f"action {action_type!r} is not supported; supported: {list(SUPPORTED_ACTIONS)}")


def _previous_version(model: ModelSpec, active: str) -> str:
    versions = model.versions_by_release
    position = versions.index(active) if active in versions else len(versions)
    if position == 0:
        raise ControlError(f"{model.name} {active} has no earlier version to roll back to")
    return versions[position - 1]


def action_id(model: str, action_type: str, why: str, requested_at: dt.datetime) -> str:
    """A short stable id to type in ``closedloop approve ACTION_ID``."""
    digest = hashlib.sha256(f"{model}|{action_type}|{why}|{requested_at.isoformat()}".encode()).hexdigest()
    return f"act_{digest[:10]}"


def request_action(
    lake: Lake, model: ModelSpec, action: RunbookAction, *, why: str, who: str, now: dt.datetime
) -> dict:
    """Record an action and, in ``auto`` mode, apply it; in ``propose`` mode it waits, pending."""
    changed_serving(
        model, read_serving(lake, model), action.type, action.params
    )  # refuse bad params now, not at approval
    row = {
        "action_id": action_id(model.name, action.type, why, now),
        "model": model.name,
        "type": action.type,
        "params": json.dumps(action.params, sort_keys=True),
        "mode": action.mode,
        "state": "pending",
        "why": why,
        "requested_by": who,
        "requested_at": now,
        "decided_by": None,
        "decided_at": None,
        "before": None,
        "after": None,
        "day": now.date(),
    }
    if action.mode == "auto":
        return _apply(lake, model, row, who, now)
    _record(lake, model.name, row)
    return row


def _apply(lake: Lake, model: ModelSpec, row: Mapping, who: str, now: dt.datetime) -> dict:
    before = read_serving(lake, model)
    after = changed_serving(model, before, row["type"], json.loads(row["params"]))
    if after != before:
        write_serving(lake, model, after)
    applied = {**row, "state": "applied", "decided_by": who, "decided_at": now,
               "before": json.dumps(before, sort_keys=True), "after": json.dumps(after, sort_keys=True)}  # fmt: skip
    _record(lake, model.name, applied)
    return applied


def _record(lake: Lake, model: str, row: Mapping) -> None:
    lake.upsert_partition(
        model, "actions", row["day"], pa.Table.from_pylist([dict(row)], schema=ACTIONS_SCHEMA), ("action_id",)
    )


def read_actions(lake: Lake, model: str, state: str | None = None) -> list[dict]:
    """The model's audit log in request order, optionally only ``pending``, ``applied`` or ``rejected`` rows."""
    rows = []
    for path in lake.partition_files(model, "actions"):
        table = Lake.read_files([path], ACTIONS_SCHEMA)
        rows += (table if state is None else table.filter(pc.equal(table["state"], state))).to_pylist()
    return sorted(rows, key=lambda r: (r["requested_at"], r["action_id"]))


def _pending(lake: Lake, model: ModelSpec, action_id: str) -> dict:
    for row in read_actions(lake, model.name):
        if row["action_id"] == action_id:
            if row["state"] != "pending":
                raise ControlError(f"action {action_id} of {model.name} is {row['state']}, not pending")
            return row
    raise ControlError(f"no action {action_id!r} for {model.name}")


def approve(lake: Lake, model: ModelSpec, action_id: str, *, who: str, now: dt.datetime) -> dict:
    """Apply a pending action to the serving file as it is now; the audit row records before and after."""
    return _apply(lake, model, _pending(lake, model, action_id), who, now)


def reject(lake: Lake, model: ModelSpec, action_id: str, *, who: str, now: dt.datetime) -> dict:
    """Close a pending action without touching the serving file."""
    rejected = {**_pending(lake, model, action_id), "state": "rejected", "decided_by": who, "decided_at": now}
    _record(lake, model.name, rejected)
    return rejected
