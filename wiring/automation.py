"""Declarative automation: late labels re-evaluate the earlier days they belong to.

A labels partition (arrival day A) feeds the outcomes of prediction days A - maturity .. A. When
it lands, those outcomes are re-materialized, then their ``eval_stats`` and every
``rolling_eval`` window that holds them, all requested in the same tick of the automation
sensor, without anyone launching a backfill by hand. Only the days whose labels can still change are watched:
the latest ``maturity_days + 2`` partitions (the labels of yesterday land after midnight, when
today's partition already exists, and must still reach the day ``maturity_days`` before them).

The conditions differ from ``AutomationCondition.eager()`` where eager would not do this:
- outcomes react to a *labels* update even when the run that landed it also materialized
  outcomes (the daily pipeline run does, for its own day only; eager ignores such updates), and
  not to today's hourly predictions refresh;
- a labels partition that has not landed yet (today's) does not block outcomes: those labels
  are simply not known yet. A missing predictions partition still blocks;
- ``eval_stats`` and ``rolling_eval`` follow a dependency requested in the same tick even when
  the daily run has just materialized them (it saw the earlier days before their late labels),
  and never request a partition only because it is new: the daily run makes each new day.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from closedloop.core.specs import ModelSpec

SENSOR_NAME = "closedloop_automation"


def late_label_window(model: ModelSpec) -> dg.AutomationCondition:
    """True for the latest partitions whose outcomes a labels arrival can still change."""
    return dg.AutomationCondition.in_latest_time_window(dt.timedelta(days=model.labels.maturity_days + 2))


def outcomes_condition(model: ModelSpec) -> dg.AutomationCondition:
    """Re-materialize a prediction day's outcomes when a labels partition it depends on lands."""
    labels = dg.AssetSelection.assets(dg.AssetKey([model.name, "labels"]))
    labels_landed = dg.AutomationCondition.any_deps_match(dg.AutomationCondition.newly_updated()).allow(labels)
    return (
        late_label_window(model)
        & labels_landed.with_label("labels_landed").since_last_handled()
        & ~dg.AutomationCondition.any_deps_missing().ignore(labels)
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("late_labels")


def downstream_condition(model: ModelSpec) -> dg.AutomationCondition:
    """Follow re-materialized outcomes over the same latest partitions (eager, without its missing trigger).

    A dependency requested in this tick always requests the partition too, even one the daily run
    has just materialized: that run saw the earlier days before their late labels.
    """
    deps_requested = dg.AutomationCondition.any_deps_match(dg.AutomationCondition.will_be_requested())
    return (
        late_label_window(model)
        & (
            dg.AutomationCondition.any_deps_updated().since_last_handled()
            | deps_requested.with_label("any_deps_requested")
        )
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("follow_outcomes")


def build_automation_sensor() -> dg.AutomationConditionSensorDefinition:
    """Evaluates every asset's automation condition; running by default, as the schedules are."""
    return dg.AutomationConditionSensorDefinition(
        SENSOR_NAME,
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Re-evaluates earlier days when late labels land (outcomes, eval_stats, rolling_eval).",
    )
