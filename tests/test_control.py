"""Runbook actions change the serving file atomically and leave an audit row; proposals wait."""

import datetime as dt
import json

import pytest

from closedloop.control.serving import (
    ControlError,
    approve,
    changed_serving,
    default_serving,
    read_actions,
    read_serving,
    reject,
    request_action,
)
from closedloop.core.names import InvalidNameError
from closedloop.core.specs import RunbookAction

UTC = dt.UTC
NOW = dt.datetime(2026, 10, 8, 6, 0, tzinfo=UTC)
LATER = NOW + dt.timedelta(minutes=30)


def test_serving_path_is_under_the_lake_and_validated(lake):
    assert lake.serving_path("fraud") == lake.root / "serving" / "fraud.json"
    with pytest.raises(InvalidNameError):
        lake.serving_path("../fraud")


def test_default_serving_is_the_latest_released_version(registry):
    assert default_serving(registry.model("fraud")) == {
        "model": "fraud",
        "active_version": "v12",
        "weights": {"v12": 1.0},
        "fallback": False,
        "threshold": 0.5,
        "calibrator": None,
    }


def test_auto_rollback_changes_the_file_and_writes_an_audit_row(registry, lake):
    fraud = registry.model("fraud")
    row = request_action(
        lake, fraud, RunbookAction(type="rollback", mode="auto"), why="fraud/x/2026-10-08", who="sensor", now=NOW
    )
    serving = json.loads(lake.serving_path("fraud").read_text())
    assert serving["active_version"] == "v11" and serving["weights"] == {"v11": 1.0}
    assert row["state"] == "applied" and json.loads(row["before"])["active_version"] == "v12"
    assert json.loads(row["after"]) == serving
    [audit] = read_actions(lake, "fraud")
    assert (audit["requested_by"], audit["why"], audit["decided_at"]) == ("sensor", "fraud/x/2026-10-08", NOW)
    # No stray temporary files beside the control file.
    assert [p.name for p in lake.serving_path("fraud").parent.iterdir()] == ["fraud.json"]
    with pytest.raises(ControlError, match="no earlier version"):
        request_action(lake, fraud, RunbookAction(type="rollback", mode="auto"), why="again", who="sensor", now=LATER)


def test_a_proposed_dial_waits_for_approval(registry, lake):
    fraud = registry.model("fraud")
    dial = RunbookAction(type="dial", mode="propose", params={"weights": {"v11": 0.9, "v12": 0.1}})
    pending = request_action(lake, fraud, dial, why="fraud/score/2026-10-08", who="sensor", now=NOW)
    assert pending["state"] == "pending" and not lake.serving_path("fraud").exists()
    assert [a["action_id"] for a in read_actions(lake, "fraud", "pending")] == [pending["action_id"]]
    applied = approve(lake, fraud, pending["action_id"], who="alice@example.com", now=LATER)
    assert read_serving(lake, fraud)["weights"] == {"v11": 0.9, "v12": 0.1}
    assert (applied["state"], applied["decided_by"], applied["decided_at"]) == ("applied", "alice@example.com", LATER)
    assert [a["state"] for a in read_actions(lake, "fraud")] == ["applied"]  # the row changed, no duplicate
    with pytest.raises(ControlError, match="applied, not pending"):
        approve(lake, fraud, pending["action_id"], who="bob@example.com", now=LATER)


def test_a_rejected_proposal_changes_nothing(registry, lake):
    triage = registry.model("ticket_triage")
    pending = request_action(lake, triage, RunbookAction(type="fallback"), why="i", who="sensor", now=NOW)
    rejected = reject(lake, triage, pending["action_id"], who="bob@example.com", now=LATER)
    assert rejected["state"] == "rejected" and not lake.serving_path("ticket_triage").exists()
    with pytest.raises(ControlError, match="no action"):
        approve(lake, triage, "act_missing", who="bob@example.com", now=LATER)


def test_fallback_and_notify(registry, lake):
    triage = registry.model("ticket_triage")
    request_action(lake, triage, RunbookAction(type="fallback", mode="auto"), why="p95", who="sensor", now=NOW)
    assert read_serving(lake, triage)["fallback"] is True
    note = request_action(lake, triage, RunbookAction(type="notify", mode="auto"), why="auc", who="sensor", now=LATER)
    assert note["before"] == note["after"] and len(read_actions(lake, "ticket_triage")) == 2


def test_bad_actions_are_refused_before_they_are_recorded(registry, lake):
    fraud = registry.model("fraud")
    with pytest.raises(ControlError, match="v99"):
        changed_serving(fraud, default_serving(fraud), "dial", {"weights": {"v99": 1.0}})
    with pytest.raises(ControlError, match="v7"):
        request_action(lake, fraud, RunbookAction(type="rollback", params={"to": "v7"}), why="x", who="me", now=NOW)
    with pytest.raises(ControlError, match="needs a fitted calibrator"):
        request_action(lake, fraud, RunbookAction(type="recalibrate"), why="x", who="me", now=NOW)
    assert read_actions(lake, "fraud") == []


def test_runbook_params_are_checked_when_the_registry_loads():
    with pytest.raises(ValueError, match=r"takes params \['method', 'window_days'\], not \['windows'\]"):
        RunbookAction(type="recalibrate", params={"windows": 30})
    with pytest.raises(ValueError, match="isotonic or platt"):
        RunbookAction(type="recalibrate", params={"method": "beta"})
    with pytest.raises(ValueError, match="whole number of days"):
        RunbookAction(type="recalibrate", params={"window_days": 0})
    assert RunbookAction(type="recalibrate", params={"method": "platt", "window_days": 14}).params["method"] == "platt"


def test_a_recalibration_sets_the_calibrator_and_threshold_and_a_rollback_drops_them(registry):
    fraud = registry.model("fraud")
    calibrator = {
        "id": "v12_20261101T060000",
        "version": "v12",
        "method": "isotonic",
        "path": "/lake/fraud/calibrators/x.json",
    }
    after = changed_serving(fraud, default_serving(fraud), "recalibrate", {"calibrator": calibrator, "threshold": 0.21})
    assert (after["calibrator"], after["threshold"]) == (calibrator, 0.21)
    rolled = changed_serving(fraud, after, "rollback", {})
    assert (rolled["active_version"], rolled["calibrator"], rolled["threshold"]) == ("v11", None, 0.5)
    with pytest.raises(ControlError, match="fitted to v12 but fraud serves v11"):
        changed_serving(fraud, rolled, "recalibrate", {"calibrator": calibrator, "threshold": 0.21})
